"""A test double for `risk_app.registry.artifact`'s RiskModel, backed by a real sklearn model.

Registry and scoring tests need a risk model folder (risk_model.json + weights) and a loader
for it, but not a fine-tuned LLM: this double fits the logistic baseline on a small sample of
the German credit data, pickles it next to a risk_model.json, and exposes the RiskModel
interface (`metadata`, `threshold`, `version`, `predict_proba(df)`). Its predictions are real
model outputs, so round-trip checks can fail.
"""

from __future__ import annotations

import json
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.evaluate.baselines import fit_baseline, predict_default
from risk_app.paths import DEFAULT_DATASET


@cache
def german_credit() -> pd.DataFrame:
    """The vendored data set, loaded and validated once per test session."""
    return validate_applications(load_applications(DEFAULT_DATASET), str(DEFAULT_DATASET)).valid


class SklearnRiskModel:
    """RiskModel-like: metadata, threshold, version and predict_proba over a sklearn pipeline."""

    def __init__(self, pipeline: Any, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        self.threshold = float(metadata["threshold"])
        self.version = str(metadata["version"])

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return predict_default(self.pipeline, df)


def save_double_artifact(
    out_dir: Path,
    *,
    version: str,
    threshold: float = 0.5,
    n_train: int = 300,
    seed: int = 0,
    method: str = "logistic-double",
) -> Path:
    train = german_credit().sample(n=n_train, random_state=seed)
    pipeline = fit_baseline("logistic", train, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.pkl").write_bytes(pickle.dumps(pipeline))
    metadata = {
        "version": version,
        "threshold": threshold,
        "method": method,
        "data_hash": f"sha256:{seed:08d}",
        "contract_version": "1.0.0",
        "code_version": "test",
    }
    (out_dir / "risk_model.json").write_text(json.dumps(metadata))
    return out_dir


def load_double_artifact(path: str | Path) -> SklearnRiskModel:
    folder = Path(path)
    metadata = json.loads((folder / "risk_model.json").read_text())
    return SklearnRiskModel(pickle.loads((folder / "model.pkl").read_bytes()), metadata)


def install_double_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every caller of `risk_app.registry.artifact.load_risk_model` (scoring, alias lookups,
    the MLflow pyfunc, the champion re-scored in evaluation) load double folders for this test."""
    from risk_app.registry import mlflow_resolve, pyfunc_model
    from risk_app.run import evaluate
    from risk_app.scoring import service

    for module in (evaluate, mlflow_resolve, pyfunc_model, service):
        monkeypatch.setattr(module, "load_risk_model", load_double_artifact)
