"""`freeze` with no decoder layer trained: a head on cached frozen features, end to end.

The trainer routes it to the `frozen_features` objective by lookup; the features are computed
once and cached; the result packages, loads and scores like any method, and the loaded model
(frozen base + trained head) gives the very validation scores training reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from data_contracts.spec import load_spec
from risk_app import paths, workflow
from risk_app.errors import ConfigError
from risk_app.finetune import features
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives.base import OBJECTIVES
from risk_app.finetune.registry import get_method, resolve_method
from risk_app.finetune.trainer import train_classifier
from risk_app.registry.artifact import load_risk_model
from risk_app.run import stages
from tests.finetune.test_method_suite import suite_data


@pytest.fixture
def small_file(risk_app_home: Path) -> Path:
    path = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(240, random_state=1).to_csv(path, index=False)
    return path


def _config(**overrides: object) -> TrainConfig:
    values = {"method": "freeze", "method_params": {"n_trainable_layers": 0}, "epochs": 4,
              "learning_rate": 0.01, "max_length": 64, "patience": 0, "seed": 0, "device": "cpu"}  # fmt: skip
    return TrainConfig(**(values | overrides))  # type: ignore[arg-type]


def test_zero_layers_chooses_the_frozen_features_objective() -> None:
    assert resolve_method("freeze", {"n_trainable_layers": 0}).objective == "frozen_features"
    assert resolve_method("freeze", {"n_trainable_layers": 1}).objective == "supervised"
    assert "frozen_features" in OBJECTIVES


def test_logistic_head_needs_zero_layers() -> None:
    with pytest.raises(ConfigError, match="needs n_trainable_layers=0"):
        get_method("freeze").parse_config({"n_trainable_layers": 1, "head": "logistic"})


def test_head_trains_on_features_computed_once(tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = suite_data()
    calls: list[int] = []
    real = features.extract_features

    def counting(model, tokenizer, texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return real(model, tokenizer, texts, *args, **kwargs)

    monkeypatch.setattr(features, "extract_features", counting)
    first = train_classifier(data.train_texts, data.train_labels, data.val_texts, data.val_labels,
                             _config(), None, progress=False)  # fmt: skip
    n_texts = len(set(data.train_texts + data.val_texts))
    assert sum(calls) == n_texts  # one forward pass per distinct application
    assert first.trainable_parameter_names == ["score.weight"]
    assert len(first.history) == 4 and first.history[-1]["train_loss"] < first.history[0]["train_loss"]
    # Another seed and more epochs: no new forward pass, the cache serves every text.
    again = train_classifier(data.train_texts, data.train_labels, data.val_texts, data.val_labels,
                             _config(seed=1, epochs=6), None, progress=False)  # fmt: skip
    assert sum(calls) == n_texts and len(again.history) == 6
    assert any((paths.home() / "features").rglob("*.npz"))


@pytest.mark.parametrize("head", ["linear", "logistic"])
def test_train_package_load_score_gives_the_training_validation_scores(
    small_file: Path, tiny_qwen2: Path, head: str
) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = _config(epochs=5, method_params={"n_trainable_layers": 0, "head": head})
    record = workflow.train_run(validation.valid, examples, config, source=str(small_file),
                                baselines=("logistic",), progress=False)  # fmt: skip
    expected_names = ["score.weight"] if head == "linear" else ["score.weight", "score.bias"]
    assert record.need("training").trainable_parameter_names == expected_names
    model = load_risk_model(record.need("artifact").path)
    y_val, raw_val, ids = stages.read_predictions(record, "validation")  # the objective's own scores
    valid = validation.valid
    rows = valid.set_index(valid["application_id"].astype(str)).loc[[str(i) for i in ids]]
    scored = model.predict_proba(rows.reset_index(drop=True))  # frozen base + head, then calibration
    expected = model.calibrator.transform(raw_val)
    np.testing.assert_allclose(scored, expected, atol=1e-5)
    assert model.method.name == "freeze" and bool(torch.isfinite(model.model.score.weight).all())
