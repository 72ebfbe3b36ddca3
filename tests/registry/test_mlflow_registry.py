"""MLflow registry round trip on a real sqlite store: register, promote, audit, resolve, roll back.

One MLflow home is shared by the whole module (creating the sqlite schema takes seconds); tests
that change aliases use their own registered-model names. The artifact folders are test doubles
(tests/scoring/doubles.py): a real sklearn model behind the RiskModel interface.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from risk_app.errors import ConfigError, ModelNotFoundError
from risk_app.registry import mlflow_registry as reg
from risk_app.registry.audit import audit_log_path, read_audit_log
from risk_app.registry.promotion import PromotionRule
from tests.scoring.doubles import (
    german_credit,
    install_double_loader,
    load_double_artifact,
    save_double_artifact,
)

MODEL = "rt_model"
METRICS = {
    "1": {"roc_auc": 0.75, "brier": 0.180, "confusion_matrix": [[1, 2], [3, 4]], "n": 150},
    "2": {"roc_auc": 0.80, "brier": 0.170, "nested": {"ks": 0.4}},
    "3": {"roc_auc": 0.70, "brier": 0.160},
}


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow_shared_home")


@pytest.fixture(autouse=True)
def _use_shared_home(risk_app_home: Path, shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Overrides the per-test home from tests/conftest.py (requested first, so this runs after it).
    monkeypatch.setenv("RISK_APP_HOME", str(shared_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def registered(shared_home: Path) -> Iterator[dict[str, Any]]:
    """Three versions of MODEL: v1 promoted (first), v2 promoted (better), v3 rejected (worse)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISK_APP_HOME", str(shared_home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        infos, decisions, folders = {}, {}, {}
        for i in ("1", "2", "3"):
            folder = save_double_artifact(shared_home / f"artifact_v{i}", version=f"double-{i}", seed=int(i))
            info = reg.register_model_version(
                folder,
                metrics=METRICS[i],
                params={"method": "logistic", "method_params": {"C": 1.0, "note": "x" * 7000}},
                tags={"origin": "test"},
                model_name=MODEL,
                run_name=f"run-{i}",
            )
            infos[i], folders[i] = info, folder
            decisions[i] = reg.promote_if_better(MODEL, info.version, PromotionRule())
        yield {"infos": infos, "decisions": decisions, "folders": folders}


def _audit_for(name: str) -> list[dict[str, Any]]:
    return [r for r in read_audit_log() if r["model_name"] == name]


def test_versions_registered_with_params_metrics_tags(registered: dict[str, Any]) -> None:
    infos = registered["infos"]
    assert [infos[i].version for i in ("1", "2", "3")] == ["1", "2", "3"]
    client = MlflowClient()
    run = client.get_run(infos["1"].run_id)
    assert run.data.params["method_params.C"] == "1.0"
    assert len(run.data.params["method_params.note"]) == 6000  # truncated to MLflow's limit
    assert run.data.metrics == {"roc_auc": 0.75, "brier": 0.18, "n": 150.0}  # no confusion matrix
    assert run.data.tags["method"] == "logistic-double"  # lineage from risk_model.json
    assert run.data.tags["data_hash"] == "sha256:00000001" and run.data.tags["origin"] == "test"
    assert client.get_run(infos["2"].run_id).data.metrics["nested.ks"] == 0.4
    mv = client.get_model_version(MODEL, "2")
    assert float(mv.tags["metric.roc_auc"]) == 0.80 and mv.tags["contract_version"] == "1.0.0"
    assert infos["2"].source.startswith("models:/")


def test_champion_goes_to_better_only(registered: dict[str, Any]) -> None:
    d = registered["decisions"]
    assert d["1"].promote and d["1"].reason == "no current champion"
    assert d["2"].promote and "0.8000 vs champion 0.7500" in d["2"].reason
    assert not d["3"].promote and "not better" in d["3"].reason
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "3"
    v3 = client.get_model_version(MODEL, "3").tags
    assert v3["promotion_decision"] == "rejected" and "0.7000" in v3["promotion_reason"]
    assert client.get_model_version(MODEL, "2").tags["previous_champion"] == "1"

    rows = {r["version"]: r for r in reg.list_versions(MODEL)}
    assert rows["2"]["aliases"] == ["champion"] and rows["3"]["aliases"] == ["challenger"]
    assert rows["1"]["aliases"] == [] and rows["1"]["roc_auc"] == 0.75
    assert rows["3"]["promotion_decision"] == "rejected" and rows["2"]["method"] == "logistic-double"
    assert reg.list_versions("never_registered") == []


def test_audit_log_records_each_decision(registered: dict[str, Any]) -> None:
    lines = _audit_for(MODEL)[:3]
    assert [r["action"] for r in lines] == ["promote", "promote", "reject"]
    assert [(r["from_version"], r["to_version"]) for r in lines] == [(None, "1"), ("1", "2"), ("2", "3")]
    assert all(r["user"] and r["timestamp"] and r["reason"] for r in lines)
    # Each line is standalone JSON (append-only JSON lines).
    raw = audit_log_path().read_text().splitlines()
    assert all(json.loads(line) for line in raw)


def test_resolve_alias_version_and_folder(registered: dict[str, Any]) -> None:
    champ = reg.resolve_model("champion", name=MODEL)
    assert champ.version == "2" and champ.metadata["version"] == "double-2"
    assert (champ.local_artifact_dir / "risk_model.json").is_file()
    assert (champ.local_artifact_dir / "model.pkl").is_file()
    assert reg.resolve_model("challenger", name=MODEL).metadata["version"] == "double-3"
    v1 = reg.resolve_model(1, name=MODEL)
    assert v1.version == "1" and v1.metadata["version"] == "double-1"
    # A second resolve reuses the cached download.
    assert reg.resolve_model("2", name=MODEL).local_artifact_dir == champ.local_artifact_dir
    local = reg.resolve_model(registered["folders"]["3"])
    assert local.local_artifact_dir == registered["folders"]["3"].resolve() and local.version == "double-3"
    # The downloaded copy scores exactly like the original.
    sample = german_credit().head(20)
    np.testing.assert_allclose(
        load_double_artifact(champ.local_artifact_dir).predict_proba(sample),
        load_double_artifact(registered["folders"]["2"]).predict_proba(sample),
    )


def test_unknown_refs_are_clear(registered: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no alias 'staging'") as info:
        reg.resolve_model("staging", name=MODEL)
    assert "versions: 1, 2, 3" in str(info.value) and "champion->v2" in str(info.value)
    with pytest.raises(ModelNotFoundError, match="has no version '9'"):
        reg.resolve_model("9", name=MODEL)
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        reg.resolve_model("champion", name="nope")
    with pytest.raises(ModelNotFoundError, match="no risk model folder"):
        reg.resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="no risk_model.json"):
        reg.register_model_version(tmp_path, metrics={}, model_name=MODEL)
    with pytest.raises(ModelNotFoundError, match="no version '7'"):
        reg.promote_if_better(MODEL, 7)


def test_pyfunc_load_by_alias_predicts(registered: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    install_double_loader(monkeypatch)
    reg.configure_mlflow()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    sample = german_credit().head(10).drop(columns=["source_row", "creditability", "default"])
    out = pyfunc.predict(sample)
    assert list(out.columns) == ["probability_of_default"] and len(out) == 10
    expected = load_double_artifact(registered["folders"]["2"]).predict_proba(sample)
    np.testing.assert_allclose(out["probability_of_default"].to_numpy(), expected)
    assert reg.load_by_alias("champion", name=MODEL).version == "double-2"


def test_manual_set_and_rollback(shared_home: Path) -> None:
    name = "manual_model"
    for i, auc in (("1", 0.7), ("2", 0.6)):
        folder = save_double_artifact(shared_home / f"manual_v{i}", version=f"manual-{i}", seed=10 + int(i))
        reg.register_model_version(folder, metrics={"roc_auc": auc, "brier": 0.2}, model_name=name)
    assert reg.promote_if_better(name, "1").promote
    assert not reg.promote_if_better(name, "2").promote
    assert reg.promote_if_better(name, "1").reason == "version 1 is already the champion"
    client = MlflowClient()

    with pytest.raises(ConfigError, match="reason is required"):
        reg.set_champion(name, "2", reason=" ")
    assert reg.set_champion(name, "2", reason="reviewed by risk committee", actor="alice") == "1"
    with pytest.raises(ConfigError, match="already the champion"):
        reg.set_champion(name, "2", reason="reviewed twice by mistake", actor="alice")
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    aliases = client.get_registered_model(name).aliases
    assert "challenger" not in aliases  # v2 was challenger; a champion is not also the challenger
    v2_tags = client.get_model_version(name, "2").tags
    assert v2_tags["promotion_decision"] == "set_champion" and v2_tags["promoted_by"] == "alice"

    assert reg.rollback_champion(name, reason="complaints about v2", actor="bob") == "1"
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert client.get_model_version(name, "2").tags["promotion_decision"] == "rolled_back"
    with pytest.raises(ModelNotFoundError, match="nothing to roll back to"):
        reg.rollback_champion(name, reason="again")

    actions = [(r["action"], r["from_version"], r["to_version"], r["actor"]) for r in _audit_for(name)]
    assert actions[-2:] == [("set_champion", "1", "2", "alice"), ("rollback", "2", "1", "bob")]
    assert _audit_for(name)[-1]["reason"] == "complaints about v2"


def test_rollback_without_champion(shared_home: Path) -> None:
    folder = save_double_artifact(shared_home / "lonely", version="lonely-1")
    reg.register_model_version(folder, metrics={"roc_auc": 0.7}, model_name="lonely_model")
    with pytest.raises(ModelNotFoundError, match="has no champion"):
        reg.rollback_champion("lonely_model", reason="test")


def test_store_stays_under_home(registered: dict[str, Any], shared_home: Path) -> None:
    assert mlflow.get_tracking_uri() == f"sqlite:///{shared_home.resolve() / 'mlflow' / 'mlflow.db'}"
    experiment = mlflow.get_experiment_by_name("risk_app")
    assert experiment.artifact_location.startswith((shared_home.resolve() / "mlflow").as_uri())
    assert not Path("mlruns").exists()


def test_two_step_promotion_with_extra_artifacts(shared_home: Path, tmp_path: Path) -> None:
    name = "two_step_model"
    folder = save_double_artifact(shared_home / "two_step_v1", version="two-1")
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"\x89PNG fake bytes")
    with pytest.raises(ConfigError, match="extra artifact"):
        reg.register_model_version(
            folder, metrics={}, model_name=name, extra_artifacts=[tmp_path / "nope.png"]
        )
    # Split-prefixed metrics, as the training workflow logs them: promotion reads test_*.
    metrics = {"test_roc_auc": 0.7, "test_brier": 0.2, "val_roc_auc": 0.95}
    info = reg.register_model_version(folder, metrics=metrics, model_name=name, extra_artifacts=[plot])
    client = MlflowClient()
    assert [a.path for a in client.list_artifacts(info.run_id, "report")] == ["report/roc.png"]

    # The verdict is recorded, not acted on (as registration does it, under the registry lock).
    with reg.registry_lock(name):
        decision = reg.decide_and_record(client, name, info.version, PromotionRule(), "dagster")
    assert decision.promote and decision.reason == "no current champion"
    assert client.get_registered_model(name).aliases == {"challenger": 1}
    assert client.get_model_version(name, "1").tags["promotion_decision"] == "recommended"
    assert _audit_for(name)[-1]["action"] == "recommend" and _audit_for(name)[-1]["actor"] == "dagster"

    reg.set_champion(name, info.version, reason=decision.reason, actor="risk-app")
    assert client.get_registered_model(name).aliases == {"champion": 1}
    assert [r["action"] for r in _audit_for(name)] == ["recommend", "set_champion"]
    assert reg.list_versions(name)[0]["roc_auc"] == 0.7

    worse = save_double_artifact(shared_home / "two_step_v2", version="two-2", seed=5)
    v2 = reg.register_model_version(
        worse, metrics={"test_roc_auc": 0.65, "val_roc_auc": 0.99}, model_name=name
    )
    verdict = reg.promote_if_better(name, v2.version)
    assert not verdict.promote and "roc_auc 0.6500 vs champion 0.7000" in verdict.reason
    assert client.get_registered_model(name).aliases == {"champion": 1, "challenger": 2}


def test_audit_log_appends_and_reports_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from risk_app.errors import DataFileError
    from risk_app.registry.audit import append_audit_record

    monkeypatch.setenv("RISK_APP_HOME", str(tmp_path))
    assert read_audit_log() == []
    append_audit_record("set_champion", "m", from_version=None, to_version="1", reason="first", actor="ann")
    append_audit_record("rollback", "m", from_version="1", to_version=None, reason="second")
    records = read_audit_log()
    assert [(r["action"], r["reason"], r["actor"]) for r in records] == [
        ("set_champion", "first", "ann"),
        ("rollback", "second", records[1]["user"]),
    ]
    with audit_log_path().open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(DataFileError, match="line 3 is not valid JSON"):
        read_audit_log()
