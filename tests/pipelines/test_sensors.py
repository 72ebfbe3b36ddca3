"""Sensors say in their own words why they requested nothing; the champion alias watch flags an
alias moved outside risk-app (as MLflow's UI does) once, with a red run and an audit line."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.definitions import defs
from pipelines.sensors import champion_alias_watch, landing_folder_sensor, outcome_landing_sensor
from risk_app.registry.alias_audit import DETECTED_ACTOR, champion_alias_states, unaudited_alias_moves
from risk_app.registry.audit import append_audit_record, read_audit_log
from risk_app.registry.mlflow_registry import configure_mlflow, set_champion


def _skip(result: dg.SensorResult) -> str:
    assert result.run_requests == [] and result.skip_reason is not None
    return result.skip_reason.skip_message


def test_the_landing_sensor_says_why_it_requested_nothing(
    risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(risk_app_home.parent)
    landing = risk_app_home / "landing"
    where = f"{risk_app_home.name}/landing"
    empty = _skip(landing_folder_sensor(dg.build_sensor_context(cursor=None)))
    assert empty.startswith(f"no files in {where} yet (it takes .csv/.parquet/.pq files")

    for name in ("a.csv", "b.csv"):
        pd.DataFrame({"x": [1]}).to_csv(landing / name, index=False)
    first = landing_folder_sensor(dg.build_sensor_context(cursor=None))
    assert _skip(first) == (
        f"no new complete files in {where} (2 still being copied: a.csv, b.csv; a file counts as "
        "complete with a '.done' marker or after 30 s unchanged)"
    )
    (landing / "a.csv.done").touch()
    second = landing_folder_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert len(second.run_requests) == 1 and second.skip_reason is None
    third = landing_folder_sensor(dg.build_sensor_context(cursor=second.cursor))
    assert _skip(third) == (
        f"no new complete files in {where} (1 still being copied: b.csv; a file counts as complete "
        "with a '.done' marker or after 30 s unchanged; 1 already taken)"
    )


def test_the_outcome_sensor_says_why_it_requested_nothing(risk_app_home: Path) -> None:
    reason = _skip(outcome_landing_sensor(dg.build_sensor_context(cursor=None)))
    assert reason.startswith("no outcome files in ") and reason.endswith(
        ", and no vintage of german_credit, uci_credit_card has new outcomes since its last backtest"
    )


@pytest.fixture
def registry(risk_app_home: Path) -> MlflowClient:
    """A real local MLflow registry with model `book`, versions 1 and 2, version 1 champion (audited)."""
    configure_mlflow()
    client = MlflowClient()
    client.create_registered_model("book")
    for _ in range(2):
        source = risk_app_home / "artifact"
        source.mkdir(exist_ok=True)
        client.create_model_version("book", source=str(source))
    set_champion("book", 1, reason="first review, ticket MR-1", actor="analyst")
    return client


def test_an_alias_moved_in_mlflow_gives_one_red_run_and_an_audit_line(registry: MlflowClient) -> None:
    quiet = champion_alias_watch(dg.build_sensor_context(cursor=None))
    assert _skip(quiet) == "champion of book is version 1, as audited"

    registry.set_registered_model_alias("book", "champion", "2")
    first = champion_alias_watch(dg.build_sensor_context(cursor=quiet.cursor))
    (request,) = first.run_requests
    job = defs.resolve_job_def("unaudited_alias_move_job")
    assert dg.validate_run_config(job, request.run_config)
    # The next tick, before the run has recorded it, does not ask again.
    again = champion_alias_watch(dg.build_sensor_context(cursor=first.cursor))
    assert _skip(again) == "the move of book's champion is already flagged, its run records it"

    result = job.execute_in_process(run_config=request.run_config, raise_on_error=False)
    assert not result.success  # red in the UI
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "champion of book is version 2, but the audit log's last move set version 1" in message
    last = read_audit_log()[-1]
    assert last["action"] == "unaudited_alias_move" and last["actor"] == DETECTED_ACTOR
    assert (last["from_version"], last["to_version"]) == ("1", "2")

    after = champion_alias_watch(dg.build_sensor_context(cursor=again.cursor))
    assert _skip(after).startswith(
        "champion of book is version 2, moved outside risk-app and already recorded as such at "
    )
    # A second run of the same request records nothing more and does not fail.
    rerun = job.execute_in_process(run_config=request.run_config, raise_on_error=False)
    assert rerun.success and read_audit_log()[-1] == last

    # The library underneath (one test: an MLflow registry takes ~10 s of migrations to create).
    (state,) = champion_alias_states("book")
    assert not state.unaudited and state.audited_action == "unaudited_alias_move"
    assert unaudited_alias_moves() == []

    registry.set_registered_model_alias("book", "champion", "1")  # and back, in MLflow's UI
    (moved,) = unaudited_alias_moves()
    assert (moved.model_name, moved.audited, moved.champion) == ("book", "2", "1")
    assert moved.sentence().startswith(
        "champion of book is version 1, but the audit log's last move set version 2 (unaudited_alias_move at "
    )

    # risk-app's own move puts it right: the audit log explains the alias again.
    set_champion("book", 2, reason="version 2 reviewed after all, MR-2")
    assert unaudited_alias_moves("book") == []
    # A move announced in the audit log but not yet made (a killed process) is not an outside move.
    append_audit_record("set_champion", "book", from_version="2", to_version="1", reason="in flight")
    (pending,) = champion_alias_states("book")
    assert pending.in_flight and not pending.unaudited and "not finished yet" in pending.sentence()
    # Removing the alias in the UI is an outside move as well.
    registry.delete_registered_model_alias("book", "champion")
    (removed,) = unaudited_alias_moves("book")
    assert removed.champion is None and "no version (the alias was removed)" in removed.sentence()


def test_the_alias_watch_is_defined_stopped_and_targets_its_job() -> None:
    sensor = defs.resolve_sensor_def("champion_alias_watch")
    assert sensor.job_name == "unaudited_alias_move_job"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
