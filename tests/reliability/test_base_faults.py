"""A real artifact (LoRA on the tiny Qwen2, untrained) whose base folder is then tampered with:
a changed file, a truncated weights file, pickled weights in place of safetensors, and a
corrupt artifact. Scoring must refuse each with one line naming the file, and write nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from risk_app.errors import RiskAppError
from risk_app.registry.base_model import PINS_KEY
from risk_app.scoring.staged import score_and_record
from tests.reliability.conftest import applications
from tests.storage.rows import scored_rows_per_batch


@pytest.fixture
def pinned(tiny_qwen2: Path, risk_app_home: Path) -> tuple[Path, Path]:
    """(base folder, artifact trained on it)."""
    from risk_app.finetune.config import TrainConfig
    from risk_app.finetune.registry import get_method
    from risk_app.registry.artifact import save_risk_model

    base = risk_app_home / "my_base"
    shutil.copytree(tiny_qwen2, base)
    method = get_method("lora")
    cfg = method.parse_config({})
    train_cfg = TrainConfig(method="lora", base_model=str(base), max_length=64)
    model, tokenizer = method.load_base(str(base), cfg, train_cfg)
    artifact = save_risk_model(
        risk_app_home / "artifact",
        method_name="lora",
        method_config=cfg,
        train_config=train_cfg,
        model=method.prepare(model, cfg),
        tokenizer=tokenizer,
        threshold=0.5,
        metrics={"roc_auc": 0.6},
        data_hash="sha256:test",
        contract_version="1.0.0",
    )
    return base, artifact


def _tamper_config(base: Path) -> str:
    config = json.loads((base / "config.json").read_text())
    config["rms_norm_eps"] = config.get("rms_norm_eps", 1e-6) * 10
    (base / "config.json").write_text(json.dumps(config))
    return "config.json: base model file changed since this model was trained"


def _truncate_weights(base: Path) -> str:
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return "model.safetensors: truncated or corrupt safetensors file"


def _pickle_weights(base: Path) -> str:
    (base / "model.safetensors").unlink()
    (base / "pytorch_model.bin").write_bytes(b"\x80\x04planted payload")
    return "weights are pickled (pytorch_model.bin)"


def _corrupt_artifact(artifact: Path) -> str:
    weights = artifact / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7] + b"tamper!")
    return "weights.safetensors: checksum mismatch"


def test_pins_record_every_base_file(pinned: tuple[Path, Path]) -> None:
    base, artifact = pinned
    pins = json.loads((artifact / "risk_model.json").read_text())[PINS_KEY]
    assert set(pins["files"]) == {p.name for p in base.iterdir() if p.is_file()}
    assert all(len(digest) == 64 for digest in pins["files"].values())


@pytest.mark.parametrize(
    "fault", [_tamper_config, _truncate_weights, _pickle_weights, _corrupt_artifact], ids=lambda f: f.__name__
)
def test_scoring_refuses_a_changed_or_corrupt_model_in_one_line(
    fault: object, pinned: tuple[Path, Path], risk_app_home: Path
) -> None:
    base, artifact = pinned
    batch = risk_app_home / "batch.csv"
    applications(8).to_csv(batch, index=False)
    expected = fault(artifact if fault is _corrupt_artifact else base)  # type: ignore[operator]
    with pytest.raises(RiskAppError) as raised:
        score_and_record(batch, model_ref=str(artifact), reasons=0)
    message = str(raised.value)
    assert expected in message and "\n" not in message
    assert scored_rows_per_batch() == {}  # nothing recorded
    assert not (risk_app_home / "outputs").exists() or not any((risk_app_home / "outputs").iterdir())


def test_a_hub_base_is_pinned_to_its_revision_and_a_moved_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    from risk_app.registry.base_model import BaseModelChangedError, pin_base_model, verify_base_model

    # A hub cache laid out as huggingface_hub writes it (this machine is offline).
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--acme--tiny"
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    (repo / "snapshots" / sha / "config.json").write_text('{"a": 1}')
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    pins = pin_base_model("acme/tiny")
    assert (pins["kind"], pins["revision"], list(pins["files"])) == ("hub", sha, ["config.json"])
    (repo / "snapshots" / sha / "config.json").write_text('{"a": 2}')
    with pytest.raises(BaseModelChangedError, match="config.json: base model file changed"):
        verify_base_model("acme/tiny", pins)
