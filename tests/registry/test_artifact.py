"""Model artifacts: round trip, self-description, adapters-only weights, corruption detected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from risk_app import paths
from risk_app.data.serialize import serialize_frame
from risk_app.errors import ModelNotFoundError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.trainer import train_classifier
from risk_app.registry.artifact import (
    CorruptArtifactError,
    fit_rows_frame,
    load_risk_model,
    read_fit_rows,
    save_risk_model,
)

EXCLUDE = ["personal_status_and_sex", "foreign_worker"]


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # See tests/finetune/conftest.py: one thread is far faster on a busy 2-core machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def trained(tiny_qwen2: Path, tmp_path: Path):  # noqa: ANN201
    frame = pd.read_csv(paths.DEFAULT_DATASET)
    labels = (frame["creditability"] == "bad").astype(int).to_numpy()
    texts = serialize_frame(frame, exclude=EXCLUDE).tolist()
    config = TrainConfig(epochs=1, batch_size=16, max_length=128, method_params={"r": 4})
    result = train_classifier(
        texts[:64], labels[:64], texts[900:940], labels[900:940], config, None, progress=False
    )
    folder = save_risk_model(
        tmp_path / "artifact",
        method_name=result.method_name,
        method_config=result.method_config,
        train_config=config,
        model=result.model,
        tokenizer=result.tokenizer,
        threshold=0.42,
        metrics={"val_auc": result.best_val_auc, "history": result.history},
        data_hash="sha256:abc123",
        contract_version="1.0.0",
        extra={"exclude_fields": EXCLUDE},
    )
    return result, folder, frame.iloc[900:940].reset_index(drop=True), texts[900:940]


def test_round_trip_gives_identical_predictions(trained) -> None:  # noqa: ANN001
    result, folder, frame, texts = trained
    before = predict_proba(result.model, result.tokenizer, texts, max_length=128)
    loaded = load_risk_model(folder)
    np.testing.assert_allclose(loaded.predict_texts(texts), before, rtol=0, atol=1e-7)
    # A DataFrame is serialized with the stored exclusions, giving the same texts.
    np.testing.assert_allclose(loaded.predict_proba(frame), before, rtol=0, atol=1e-7)
    assert loaded.threshold == 0.42 and loaded.method.name == "lora"
    loaded.version = "7"
    assert loaded.version == "7"


def test_metadata_describes_the_model(trained) -> None:  # noqa: ANN001
    _, folder, _, _ = trained
    meta = json.loads((folder / "risk_model.json").read_text())
    assert meta["method"] == "lora" and meta["method_config"]["r"] == 4
    assert meta["base_model"] == "tiny-qwen2" and meta["train_config"]["max_length"] == 128
    assert meta["data_hash"] == "sha256:abc123" and meta["contract_version"] == "1.0.0"
    assert meta["labels"] == {"0": "good", "1": "bad"}
    assert set(meta["library_versions"]) == {"torch", "transformers", "peft"}
    assert meta["code_version"].startswith("0.1.0")
    assert len(meta["weights"]["sha256"]) == 64 and meta["version"].startswith("lora-")
    assert meta["extra"]["exclude_fields"] == EXCLUDE
    assert meta["metrics"]["history"][0]["epoch"] == 1
    assert (folder / "tokenizer" / "tokenizer.json").is_file()


def test_the_artifact_records_the_applications_it_was_fitted_on(trained, tmp_path: Path) -> None:  # noqa: ANN001
    result, folder, _, _ = trained
    assert read_fit_rows(folder) is None  # saved without them: the overlap with any rows is unknown
    assert json.loads((folder / "risk_model.json").read_text())["fit_rows"] is None
    examples = pd.DataFrame(
        {
            "application_id": ["a1", "a2", "a2~aug1", "a3", "a4"],
            "source_application_id": ["a1", "a2", "a2", "a3", "a4"],
            "split": ["train", "train", "train", "validation", "test"],
        }
    )
    rows = fit_rows_frame(examples)  # an augmented copy counts as its source; test rows are not fit rows
    assert rows.to_dict("records") == [
        {"application_id": "a1", "split": "train"},
        {"application_id": "a2", "split": "train"},
        {"application_id": "a3", "split": "validation"},
    ]
    saved = save_risk_model(
        tmp_path / "with_fit_rows", method_name=result.method_name, method_config=result.method_config,
        train_config=TrainConfig(epochs=1, max_length=128, method_params={"r": 4}), model=result.model,
        tokenizer=result.tokenizer, threshold=0.42, metrics={}, data_hash="sha256:abc123",
        contract_version="1.0.0", fit_rows=rows,
    )  # fmt: skip
    described = json.loads((saved / "risk_model.json").read_text())["fit_rows"]
    assert described["file"] == "fit_rows.parquet" and described["rows"] == {"train": 2, "validation": 1}
    pd.testing.assert_frame_equal(read_fit_rows(saved), rows)
    tampered = rows.iloc[:1]
    tampered.to_parquet(saved / "fit_rows.parquet", index=False)
    with pytest.raises(CorruptArtifactError, match="fit_rows.parquet: checksum mismatch"):
        read_fit_rows(saved)


def test_weights_hold_adapters_and_head_not_the_base(trained, tiny_qwen2: Path) -> None:  # noqa: ANN001
    _, folder, _, _ = trained
    from safetensors.torch import load_file

    state = load_file(folder / "weights.safetensors")
    assert all("lora_" in k or ".score." in k for k in state)
    assert not any("embed_tokens" in k for k in state)
    base_bytes = (tiny_qwen2 / "model.safetensors").stat().st_size
    assert (folder / "weights.safetensors").stat().st_size < base_bytes / 5


def test_corrupted_weights_raise_clear_error(trained) -> None:  # noqa: ANN001
    _, folder, _, _ = trained
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match="checksum mismatch"):
        load_risk_model(folder)
    weights.unlink()
    with pytest.raises(CorruptArtifactError, match="weights file is missing"):
        load_risk_model(folder)


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no risk_model.json"):
        load_risk_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        load_risk_model(tmp_path / "missing")
    (tmp_path / "risk_model.json").write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="unreadable"):
        load_risk_model(tmp_path)
