"""The real path: a genuine risk_app artifact (LoRA on the tiny local Qwen2, untrained), registered
in MLflow, promoted to champion, scored with `score_and_record(model_ref="champion")` and loaded by
plain MLflow users through `mlflow.pyfunc.load_model("models:/...@champion")`.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from risk_app.paths import DEFAULT_DATASET
from risk_app.registry import mlflow_registry as reg
from risk_app.scoring.staged import score_and_record

pytestmark = pytest.mark.slow

artifact = pytest.importorskip(
    "risk_app.registry.artifact", reason="risk_app.registry.artifact not importable"
)


@pytest.fixture
def real_artifact(tmp_path: Path) -> Path:
    from risk_app.finetune.config import TrainConfig
    from risk_app.finetune.registry import get_method

    method = get_method("lora")
    cfg = method.parse_config({})
    train_cfg = TrainConfig(method="lora", base_model="tiny-qwen2", max_length=128)
    model, tokenizer = method.load_base("tiny-qwen2", cfg, train_cfg)
    model = method.prepare(model, cfg)
    return artifact.save_risk_model(
        tmp_path / "lora_artifact",
        method_name="lora",
        method_config=cfg,
        train_config=train_cfg,
        model=model,
        tokenizer=tokenizer,
        threshold=0.5,
        metrics={"roc_auc": 0.61, "brier": 0.25},
        data_hash="sha256:test",
        contract_version="1.0.0",
    )


def test_register_promote_and_score_champion(real_artifact: Path, tmp_path: Path) -> None:
    info = reg.register_model_version(
        real_artifact, metrics={"roc_auc": 0.61, "brier": 0.25}, params={"method": "lora"}, run_name="e2e"
    )
    assert reg.promote_if_better(reg.DEFAULT_MODEL_NAME, info.version).promote
    assert reg.list_versions()[0]["method"] == "lora"  # lineage tag read from risk_model.json

    raw = pd.read_csv(DEFAULT_DATASET, dtype=str).head(12).drop(columns=["creditability"])
    raw.loc[3, "duration_in_month"] = "0"  # out of contract range: quarantined, not scored
    source = tmp_path / "batch.csv"
    raw.to_csv(source, index=False)
    report = score_and_record(
        source, tmp_path / "batch.scored.parquet", model_ref="champion", model_name=reg.DEFAULT_MODEL_NAME
    )
    assert (report.n_in, report.n_scored, report.n_quarantined) == (12, 11, 1)
    assert report.model_version == f"{reg.DEFAULT_MODEL_NAME}/{info.version}"

    scored = pd.read_parquet(tmp_path / "batch.scored.parquet")
    local = artifact.load_risk_model(real_artifact)
    valid_rows = pd.read_csv(source, dtype=str).drop(index=3)
    from risk_app.data.validate import validate_applications

    valid = validate_applications(valid_rows, "batch", require_target=False).valid
    np.testing.assert_allclose(scored["probability_of_default"], local.predict_proba(valid), atol=1e-6)
    assert (scored["model_version"] == report.model_version).all()

    pyfunc = mlflow.pyfunc.load_model(f"models:/{reg.DEFAULT_MODEL_NAME}@champion")
    features = valid.drop(columns=["source_row"])
    out = pyfunc.predict(features)
    np.testing.assert_allclose(out["probability_of_default"], local.predict_proba(valid), atol=1e-6)
