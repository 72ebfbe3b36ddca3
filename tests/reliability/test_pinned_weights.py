"""Weights pinned out of band (issue 20 §5): the sha256 written on the registry's version record at
registration is checked whenever a version is scored, so weights rewritten together with their
own manifest (sha256 and size updated) are refused, in the registry's store or in the local cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from risk_app.cli.main import app
from risk_app.registry import mlflow_registry as reg
from risk_app.registry.artifact import sha256_file
from risk_app.registry.cache import WEIGHTS_PIN_TAG
from risk_app.registry.reconcile import register_and_decide

pytestmark = pytest.mark.usefixtures("mlflow_store")
GOOD = b"weights v1" * 100
TAMPERED = b"weights x-8" * 100


def _write_weights(folder: Path, data: bytes) -> None:
    """Weights and a manifest that agrees with them: what a careful tamperer writes."""
    (folder / "weights.safetensors").write_bytes(data)
    meta = json.loads((folder / "risk_model.json").read_text())
    sha = sha256_file(folder / "weights.safetensors")
    meta["weights"] = {"file": "weights.safetensors", "sha256": sha, "size": len(data)}
    (folder / "risk_model.json").write_text(json.dumps(meta))


def _registered(home: Path) -> str:
    from tests.scoring.doubles import save_double_artifact

    folder = save_double_artifact(home / "artifact", version="w1", n_train=120)
    _write_weights(folder, GOOD)
    version = register_and_decide(folder, run_key="w1", metrics={"roc_auc": 0.7}, model_name="german_credit")
    return version.version


def test_the_weights_hash_is_pinned_on_the_version_record(risk_app_home: Path) -> None:
    version = _registered(risk_app_home)
    mv = reg._get_version(reg._client(), "german_credit", version)
    assert mv.tags[WEIGHTS_PIN_TAG] == sha256_file(risk_app_home / "artifact" / "weights.safetensors")


def test_weights_rewritten_with_their_manifest_in_the_store_are_refused(risk_app_home: Path) -> None:
    version = _registered(risk_app_home)
    assert reg.resolve_model(version, name="german_credit").local_artifact_dir.is_dir()
    [stored] = list((risk_app_home / "mlflow" / "artifacts").rglob("weights.safetensors"))
    _write_weights(stored.parent, TAMPERED)  # the store's copy: weights and manifest agree
    shutil.rmtree(risk_app_home / "mlflow" / "cache")
    with pytest.raises(reg.RiskAppError, match="pinned when the version was registered"):
        reg.resolve_model(version, name="german_credit")
    assert not list((risk_app_home / "mlflow" / "cache").rglob("weights.safetensors"))  # not kept

    apps = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).head(5).drop(columns=["creditability"]).to_csv(apps)
    result = CliRunner().invoke(app, ["score", "-i", str(apps), "--model", version], terminal_width=400)
    assert result.exit_code != 0
    assert "pinned when the version was registered" in result.output and "Traceback" not in result.output


def test_a_tampered_cached_copy_is_fetched_again_from_the_store(risk_app_home: Path) -> None:
    version = _registered(risk_app_home)
    cached = reg.resolve_model(version, name="german_credit").local_artifact_dir
    _write_weights(cached, TAMPERED)
    again = reg.resolve_model(version, name="german_credit").local_artifact_dir
    assert (again / "weights.safetensors").read_bytes() == GOOD
