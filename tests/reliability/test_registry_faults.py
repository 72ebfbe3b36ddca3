"""Registry records under faults: kill -9 in registration and promotion, two promotions at once,
a corrupt download, no pickle on load, no telemetry.

Each test ends by reading MLflow and the audit log: one version per training run, every version
decided once, the champion alias where the last audit line says, every audit line naming the
champion its decision was really made against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mlflow
import pytest

from risk_app.registry import mlflow_registry as reg
from risk_app.registry.audit import read_audit_log
from risk_app.registry.reconcile import reconcile_registry, register_and_decide
from risk_app.storage.locks import file_lock
from tests.reliability.conftest import KILLED, child_env, run_child, start_child

NAME = reg.DEFAULT_MODEL_NAME
# slow: scheduled first (tests/conftest.py)
pytestmark = [pytest.mark.usefixtures("mlflow_store"), pytest.mark.slow]


def _artifact(home: Path, version: str, seed: int = 0) -> Path:
    from tests.scoring.doubles import save_double_artifact

    return save_double_artifact(home / f"artifact_{version}", version=version, seed=seed, n_train=120)


def _register(home: Path, key: str, auc: float, seed: int = 0) -> str:
    artifact = _artifact(home, key, seed)
    return register_and_decide(artifact, run_key=key, metrics={"roc_auc": auc, "brier": 0.2}).version


def _champion() -> str | None:
    mv = reg._alias_version(reg._client(), NAME, reg.CHAMPION)
    return str(mv.version) if mv is not None else None


def _versions() -> list[Any]:
    return reg._existing(reg._client(), NAME)[0]


REGISTER_IN_CHILD = """
from risk_app.registry import mlflow_registry as reg
from risk_app.registry.reconcile import register_and_decide
{patch}
register_and_decide({artifact!r}, run_key="run-1", metrics={{"roc_auc": 0.7, "brier": 0.2}})
"""


def test_kill_inside_the_mlflow_run_ends_it_killed_and_registers_once(risk_app_home: Path) -> None:
    artifact = _artifact(risk_app_home, "run-1")
    patch = 'kill_after(reg, "log_run_contents")'
    child = run_child(REGISTER_IN_CHILD.format(patch=patch, artifact=str(artifact)), risk_app_home)
    assert child.returncode == KILLED, child.stderr[-2000:]
    client = reg._client()
    runs = client.search_runs([reg.configure_mlflow()])
    assert [r.info.status for r in runs] == ["RUNNING"]  # what a kill -9 leaves behind
    assert _versions() == [] if client.search_registered_models() else True

    # The next start (here: the retry) ends the orphan KILLED and registers the run once.
    outcome = register_and_decide(artifact, run_key="run-1", metrics={"roc_auc": 0.7, "brier": 0.2})
    statuses = sorted(r.info.status for r in client.search_runs([reg.configure_mlflow()]))
    assert statuses == ["FINISHED", "KILLED"]
    assert [str(v.version) for v in _versions()] == [outcome.version] == ["1"]
    actions = [r["action"] for r in read_audit_log()]
    assert actions == ["reconcile", "recommend"]


def test_kill_between_registration_and_decision_is_reconciled(risk_app_home: Path) -> None:
    artifact = _artifact(risk_app_home, "run-1")
    patch = 'kill_before(reg, "decide_and_record")'
    child = run_child(REGISTER_IN_CHILD.format(patch=patch, artifact=str(artifact)), risk_app_home)
    assert child.returncode == KILLED, child.stderr[-2000:]
    [orphan] = _versions()
    assert "promotion_decision" not in (orphan.tags or {}) and read_audit_log() == []

    again = register_and_decide(artifact, run_key="run-1", metrics={"roc_auc": 0.7, "brier": 0.2})
    assert again.reused and again.version == "1" and again.decision.promote
    [version] = _versions()
    assert version.tags["promotion_decision"] == "recommended"
    [line] = read_audit_log()
    assert (line["action"], line["to_version"], line["reconciled"]) == ("recommend", "1", True)
    assert reconcile_registry().changed is False  # nothing left to repair


def _promotion_killed_before_the_alias_moves(home: Path) -> tuple[str, str]:
    """Version 1 champion; a child promoting version 2 killed after the audit intent and before
    the alias moved. Returns (first, second)."""
    first = _register(home, "run-1", 0.70)
    reg.promote_if_better(NAME, first)
    second = _register(home, "run-2", 0.75, seed=1)
    code = f"""
from risk_app.registry import mlflow_registry as reg
kill_before(reg, "_make_champion")
reg.promote_if_better(reg.DEFAULT_MODEL_NAME, {second!r})
"""
    child = run_child(code, home)
    assert child.returncode == KILLED, child.stderr[-2000:]
    return first, second


def test_kill_between_audit_intent_and_alias_move_is_completed(risk_app_home: Path) -> None:
    first, second = _promotion_killed_before_the_alias_moves(risk_app_home)
    last = read_audit_log()[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("promote", first, second)
    assert _champion() == first  # the kill came before the alias moved

    report = reconcile_registry()
    assert report.completed_moves == [second] and _champion() == second
    assert read_audit_log()[-1]["action"] == "reconcile"
    assert reconcile_registry().changed is False


def test_two_promotions_at_once_each_decided_against_the_champion_it_replaced(
    risk_app_home: Path,
) -> None:
    v1 = _register(risk_app_home, "run-1", 0.70)
    reg.promote_if_better(NAME, v1)
    v2 = _register(risk_app_home, "run-2", 0.75, seed=1)
    v3 = _register(risk_app_home, "run-3", 0.80, seed=2)
    code = """
from risk_app.registry import mlflow_registry as reg
print(reg.promote_if_better(reg.DEFAULT_MODEL_NAME, {version!r}).reason)
"""
    # Hold the lock while both start, so they really contend for it.
    with file_lock(reg.registry_lock_path(NAME)):
        children = [start_child(code.format(version=v), risk_app_home) for v in (v2, v3)]
    results = [(c.wait(timeout=180), c.communicate()[1]) for c in children]
    assert all(rc == 0 for rc, _ in results), [err[-1500:] for _, err in results]

    assert _champion() == v3  # the best one wins whatever the order
    champion = None
    for line in read_audit_log():
        if line["action"] in {"promote", "reject"}:
            # The decision's own champion is the alias holder when it was made.
            assert line["from_version"] == champion == line["details"]["champion_version"]
            if line["action"] == "promote":
                champion = line["to_version"]
    assert champion == v3


def _weights_artifact(home: Path) -> Path:
    folder = _artifact(home, "w1")
    (folder / "weights.safetensors").write_bytes(b"weights v1" * 100)
    meta = json.loads((folder / "risk_model.json").read_text())
    from risk_app.registry.artifact import sha256_file

    meta["weights"] = {"file": "weights.safetensors", "sha256": sha256_file(folder / "weights.safetensors")}
    (folder / "risk_model.json").write_text(json.dumps(meta))
    return folder


def test_corrupt_download_is_evicted_and_a_repaired_store_recovers(risk_app_home: Path) -> None:
    artifact = _weights_artifact(risk_app_home)
    version = register_and_decide(artifact, run_key="w1", metrics={"roc_auc": 0.7}).version
    cached = reg.resolve_model(version).local_artifact_dir
    good = (cached / "weights.safetensors").read_bytes()
    (cached / "weights.safetensors").write_bytes(b"bit rot")
    assert (reg.resolve_model(version).local_artifact_dir / "weights.safetensors").read_bytes() == good

    [stored] = list((risk_app_home / "mlflow" / "artifacts").rglob("weights.safetensors"))
    stored.write_bytes(b"corrupt in the store")
    cached_dir = risk_app_home / "mlflow" / "cache"
    import shutil

    shutil.rmtree(cached_dir)
    with pytest.raises(reg.RiskAppError, match="checksum mismatch.*registry's copy is corrupt"):
        reg.resolve_model(version)
    assert not list(cached_dir.rglob("weights.safetensors"))  # the bad copy was not kept
    stored.write_bytes(good)  # the store is repaired
    assert (reg.resolve_model(version).local_artifact_dir / "weights.safetensors").read_bytes() == good


def test_registered_model_loads_without_unpickling(
    risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scoring.doubles import german_credit, install_double_loader

    version = _register(risk_app_home, "run-1", 0.7)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}"))
    assert not list(local.glob("python_model.pkl"))
    assert "model_code_path" in (local / "MLmodel").read_text()

    install_double_loader(monkeypatch)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    rows = german_credit().head(5).drop(columns=["source_row", "default", "creditability"], errors="ignore")
    assert pyfunc.predict(rows)["probability_of_default"].between(0, 1).all()


def test_mlflow_telemetry_is_off_by_default(risk_app_home: Path) -> None:
    code = """
import mlflow.telemetry
from risk_app.registry import mlflow_registry
mlflow_registry.configure_mlflow()
print(os.environ["MLFLOW_DISABLE_TELEMETRY"], mlflow.telemetry.get_telemetry_client())
"""
    env = {k: v for k, v in child_env(risk_app_home).items() if not k.startswith(("PYTEST", "CI"))}
    env.pop("MLFLOW_DISABLE_TELEMETRY", None)
    import subprocess
    import sys

    from tests.reliability.conftest import PRELUDE

    out = subprocess.run([sys.executable, "-c", PRELUDE + code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["true", "None"], out.stderr[-1500:]
    assert os.environ.get("MLFLOW_DISABLE_TELEMETRY") == "true"


def test_reconcile_ignores_audit_lines_about_another_store(risk_app_home: Path) -> None:
    from risk_app.registry.audit import append_audit_record

    # The audit log lives outside MLflow and survives a switch of tracking store.
    append_audit_record("promote", NAME, from_version=None, to_version="7", reason="older store")
    version = _register(risk_app_home, "run-1", 0.7)
    assert reconcile_registry().changed is False
    assert _champion() is None and version == "1"


def test_a_dagster_rollback_first_completes_a_move_a_kill_interrupted(risk_app_home: Path) -> None:
    """The launchpad's ops reconcile before they move the champion, as the CLI does: the move a
    killed process left half done is completed first, so the rollback withdraws that version."""
    import dagster as dg

    from pipelines.definitions import defs

    first, _ = _promotion_killed_before_the_alias_moves(risk_app_home)
    assert _champion() == first
    config = {"model_name": NAME, "reason": "model-risk ticket MR-1 withdraws it"}
    job = defs.resolve_job_def("rollback_champion_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"rollback_to_previous_champion": {"config": config}}}, instance=instance
        )
    assert result.success
    assert _champion() == first
    actions = [line["action"] for line in read_audit_log()]
    assert actions[-2:] == ["reconcile", "rollback"]
