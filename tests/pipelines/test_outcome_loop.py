"""SIMULATION (tests only): a lender's year through Dagster, and every count adds up.

A built-in data set becomes a simulated lender (`risk_app.outcomes.simulation`): dated
applications in monthly batches, scored by the champion, whose true labels come back as outcome
files three months later. The column that ranks the data set's outcomes best on its own is
hidden from the model (the simulation's config, chosen from the data) but not from the
simulated analysts (`risk_app.overrides.simulation`), who override the champion's decisions
with it every month through the override landing folder and sensor. Each simulated month the
outcome sensor takes the new files in and brings the book and the vintage backtests up to date;
the weekly schedule trains the first model on the history file; in month 6 an analyst retrains
with rlhf from the override ledger (`rlhf_retraining_job`: reward from the overrides, PPO, the
guard) and promotes it, so the vintages it decides are backtested; in month 12 the weekly
schedule retrains on the book. Small batches, one epoch: CI-sized.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.jobs import (
    backtest_job,
    labeled_book_job,
    outcomes_job,
    overrides_job,
    promote_version_job,
    rlhf_retraining_job,
    scoring_job,
    training_job,
)
from pipelines.resources import build_resources
from pipelines.schedules import weekly_retraining
from pipelines.sensors import landing_folder_sensor, outcome_landing_sensor, override_landing_sensor
from risk_app import paths
from risk_app.outcomes.backtest import recorded_backtests
from risk_app.outcomes.book import book_counts, labeled_book
from risk_app.outcomes.ingest import outcome_files, outcomes_landing_dir
from risk_app.outcomes.routing import vintage_key
from risk_app.outcomes.simulation import Simulation, build_simulation, release_outcomes
from risk_app.overrides.ingest import overrides_landing_dir
from risk_app.overrides.simulation import AnalystConfig, informative_columns, simulate_overrides
from risk_app.run.stages import EXAMPLES_FILE
from risk_app.storage.scores import scoring_ledger

pytestmark = pytest.mark.slow

# One epoch on short texts; the decline cap keeps most loans booked, so outcomes come back.
TRAINING_OVERRIDES = {
    "fine_tuned_model": {"config": {"epochs": 1, "max_length": 64, "batch_size": 16}},
    "credit_policy": {"config": {"max_decline_rate": 0.3}},
}
RLHF_MONTH, WEEKLY_MONTH = 5, 11
ANALYSTS = AnalystConfig(informed=True, override_rate=0.15)
# rlhf's own settings, CI-sized; the evidence gate is opened so that PPO runs in the loop (the
# validation guard still decides whether it is kept).
RLHF_RETRAIN = {
    "split": "out_of_time",
    "training": {"epochs": 1, "max_length": 64, "batch_size": 16},
    "rlhf": {
        "min_feedback_pairs": 8, "max_reward_p_value": 1.0, "reward": {"max_length": 64},
        "ppo": {"epochs": 1, "updates_per_batch": 2},
    },
    "credit_policy": {"max_decline_rate": 0.3},
}  # fmt: skip
JOB_NAMES = (
    "training_job",
    "scoring_job",
    "outcomes_job",
    "overrides_job",
    "labeled_book_job",
    "backtest_job",
    "rlhf_retraining_job",
    "promote_version_job",
)


@pytest.fixture(autouse=True)
def _fresh_jobs() -> Iterator[None]:
    _JOBS.clear()
    yield
    _JOBS.clear()


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Simulation:
    # The model is not given the column that ranks the outcomes best; the analysts see it.
    hidden = informative_columns("german_credit", n=1)
    simulation = build_simulation(
        tmp_path / "simulation", months=12, per_month=30, history_rows=120, hidden_columns=hidden
    )
    monkeypatch.setenv("RISK_APP_DATASET", str(simulation.spec_path))
    monkeypatch.setenv("RISK_APP_TRAINING_DATA", str(simulation.history_path))
    monkeypatch.setenv("RISK_APP_LANDING_STABLE_SECONDS", "0")
    return simulation


def _definitions() -> dg.Definitions:
    """The project's assets, checks and jobs with resources under this test's RISK_APP_HOME."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[
            training_job,
            scoring_job,
            outcomes_job,
            overrides_job,
            labeled_book_job,
            backtest_job,
            rlhf_retraining_job,
            promote_version_job,
        ],  # fmt: skip
        resources=build_resources(),
    )


_JOBS: dict[str, dg.JobDefinition] = {}


def _job(name: str) -> dg.JobDefinition:
    """A job of this test's definitions (built once per test: resources follow RISK_APP_HOME)."""
    if name not in _JOBS:
        _JOBS.update({job: _definitions().resolve_job_def(job) for job in JOB_NAMES})
    return _JOBS[name]


def _run(instance: dg.DagsterInstance, job: str, config: dict[str, Any], partition: str | None = None):
    result = _job(job).execute_in_process(
        run_config=config, instance=instance, partition_key=partition, raise_on_error=False
    )
    assert result.success, f"{job} {partition or ''} failed"
    return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def _train(instance: dg.DagsterInstance, when: dt.datetime) -> tuple[Any, dg.RunRequest, bool]:
    request = weekly_retraining(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    config = _merge(request.run_config, {"ops": TRAINING_OVERRIDES})
    result = _run(instance, "training_job", config)
    promoted = bool(result.asset_materializations_for_node("champion_model"))
    return result.output_for_node("registered_model"), request, promoted


def _score_month(instance: dg.DagsterInstance, sim: Simulation, month: str, cursor: str | None) -> str | None:
    """The month's applications land; the landing sensor has the champion score them in Dagster."""
    landed = paths.landing_dir() / sim.applications_path(month).name
    landed.write_bytes(sim.applications_path(month).read_bytes())
    landed.with_name(landed.name + ".done").touch()
    result = landing_folder_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    (request,) = result.run_requests
    _run(instance, "scoring_job", request.run_config, request.partition_key)
    return result.cursor


def _override_month(
    instance: dg.DagsterInstance, sim: Simulation, month: str, cursor: str | None
) -> str | None:
    """The analysts' overrides of the month land; the override sensor has them taken in."""
    path = simulate_overrides(sim, month, ANALYSTS, overrides_landing_dir())
    result = override_landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    (request,) = result.run_requests
    run = _run(instance, "overrides_job", request.run_config, request.partition_key)
    metadata = run.asset_materializations_for_node("overrides")[0].metadata
    rows = len(pd.read_csv(path))
    # Every simulated override is a valid one: taken in whole, nothing quarantined.
    assert (metadata["rows_in"].value, metadata["rows_accepted"].value) == (rows, rows)
    return result.cursor


def _rlhf_retrain(instance: dg.DagsterInstance, sim: Simulation) -> Any:
    """An analyst retrains with rlhf from the override ledger and promotes the new version."""
    config = {**RLHF_RETRAIN, "dataset": str(sim.spec_path)}
    result = _run(instance, "rlhf_retraining_job", config)
    record = result.output_for_node("registered_model")
    registration = record.need("registration")
    if not registration.promoted:
        reason = "RLHF retrain from the analysts' overrides, reviewed"
        promote = {"version": registration.version, "model_name": registration.model_name, "reason": reason}
        _run(instance, "promote_version_job", {"ops": {"promote_version": {"config": promote}}})
    return record


def _sensor_tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, list[dg.RunRequest]]:
    """One evaluation of the outcome sensor, with its partitions added and its runs executed."""
    result = outcome_landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for request in result.run_requests:
        run = _run(instance, request.job_name, request.run_config, request.partition_key)
        # Blocking accounting check and the backtest check ran (the latter may warn, not fail).
        evaluations = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
        if request.job_name == "labeled_book_job":
            assert evaluations == {"outcome_accounting": True}
        if request.job_name == "backtest_job":
            assert "backtest_within_intervals" in evaluations
    return result.cursor, result.run_requests


def _assert_accounting(sim: Simulation, released: list[str]) -> None:
    """scored = with outcome + pending + declined; outcome rows in = accepted + quarantined."""
    book = labeled_book(sim.spec)
    counts = book_counts(book)
    ledger = scoring_ledger()
    assert counts["scored"] == int(ledger.loc[ledger["dataset"] == sim.spec.name, "n_scored"].sum())
    assert counts["scored"] == counts["with_outcome"] + counts["pending"] + counts["declined"]
    files = outcome_files(sim.spec.name)
    assert (files["n_in"] == files["n_accepted"] + files["n_quarantined"]).all()
    assert (files["n_quarantined"] == 1).all()  # the simulation's one unknown id per file
    assert counts["with_outcome"] == int(files["n_accepted"].sum())
    booked = book.loc[book["booked_decision"] == "approve"]  # the model's approvals less high-side overrides
    assert counts["pending"] == int((~booked["vintage"].isin(released)).sum())
    assert not book.loc[book["status"] == "declined", "outcome_default"].notna().any()


def test_a_simulated_year_closes_the_loop(
    sim: Simulation, instance: dg.DagsterInstance, tiny_qwen2: Path
) -> None:
    start = dt.datetime(2025, 1, 6, 3, tzinfo=dt.UTC)  # the first Monday of the year
    first, request, promoted = _train(instance, start)
    assert request.tags["training_source"] == "file" and promoted and first.registration.version == 1
    cursor: str | None = None
    scoring_cursor: str | None = None
    override_cursor: str | None = None
    released: list[str] = []
    rlhf_version: int | None = None
    for index, month in enumerate(sim.months):
        scoring_cursor = _score_month(instance, sim, month, scoring_cursor)
        override_cursor = _override_month(instance, sim, month, override_cursor)
        if index >= sim.lag_months:
            vintage = sim.months[index - sim.lag_months]
            release_outcomes(sim, vintage, outcomes_landing_dir())
            released.append(vintage)
        cursor, file_runs = _sensor_tick(instance, cursor)  # outcome files in
        cursor, book_runs = _sensor_tick(instance, cursor)  # book and backtests up to date
        assert [r.job_name for r in file_runs] == (["outcomes_job"] if index >= sim.lag_months else [])
        if index >= sim.lag_months:
            backtests = {r.partition_key for r in book_runs if r.job_name == "backtest_job"}
            assert backtests == {vintage_key(sim.spec.name, released[-1])}
        _assert_accounting(sim, released)
        backtested = set(recorded_backtests(sim.spec.name)["vintage"])
        assert backtested == set(released)
        if index == RLHF_MONTH:
            record = _rlhf_retrain(instance, sim)
            _assert_rlhf_from_the_ledger(record, sim, released)
            rlhf_version = record.need("registration").version
        if index == WEEKLY_MONTH:
            when = start + dt.timedelta(weeks=4 * index + 4)
            record, request, _ = _train(instance, when)
            assert request.tags["training_source"] == "book"
            assert record.dataset.source.startswith(f"labeled book of {sim.spec.name}")
            assert record.dataset.vintages["test"] == [released[-1]]
            assert record.dataset.vintages["validation"] == [released[-2]]
            assert "champion" in record.evaluation.baselines

    # The RLHF model decided the months after its retrain, and their vintages were backtested.
    summary = recorded_backtests(sim.spec.name)
    rlhf_vintages = set(sim.months[RLHF_MONTH + 1 : 12 - sim.lag_months])
    decided = summary.loc[summary["model_version"].astype(str).str.endswith(f"/{rlhf_version}"), "vintage"]
    assert rlhf_vintages and set(decided) == rlhf_vintages, summary[["vintage", "model_version"]]
    # Each released vintage was backtested through Dagster, one partition per vintage.
    materialized = instance.get_materialized_partitions(dg.AssetKey("backtest"))
    assert materialized == {vintage_key(sim.spec.name, m) for m in sim.months[: 12 - sim.lag_months]}
    assert instance.get_materialized_partitions(dg.AssetKey("outcomes")) == set(
        instance.get_dynamic_partitions("outcome_files")
    )
    # Re-running an outcome partition adds nothing: files are taken in exactly once.
    key = sorted(instance.get_dynamic_partitions("outcome_files"))[0]
    config = {"ops": {"outcomes": {"config": {"dataset": str(sim.spec_path)}}}}
    again = _run(instance, "outcomes_job", config, key)
    assert again.asset_materializations_for_node("outcomes")[0].metadata["status"].value == "already_recorded"
    _assert_accounting(sim, released)
    # The champion's latest backtest shows beside its model card.
    latest = instance.get_latest_materialization_event(dg.AssetKey("backtest"))
    card = latest.asset_materialization.metadata["champion_model_card"].value
    assert "## Backtest" in card and sim.spec.name in card
    summary = recorded_backtests(sim.spec.name)
    assert set(summary["light"]) <= {"green", "amber", "red"}
    assert (summary.groupby(["vintage", "model_version"])["n"].sum() > 0).all()


def _assert_rlhf_from_the_ledger(record: Any, sim: Simulation, released: list[str]) -> None:
    """The retrain was rlhf on the book, its reward learnt from the analysts' overrides, PPO ran."""
    training = record.need("training")
    assert training.config.method == "rlhf"
    assert record.dataset.source.startswith(f"labeled book of {sim.spec.name}")
    assert record.dataset.vintages["test"] == [released[-1]]
    book = labeled_book(sim.spec)
    overrides = int(book["override_side"].notna().sum())
    verdict = training.ppo_guard
    assert verdict is not None and verdict.feedback.startswith(
        f"override ledger of {sim.spec.name}, {overrides} override pair(s)"
    )
    assert any("ppo_epoch" in (epoch.model_extra or {}) for epoch in training.history)
    # The model never read the hidden column (the analysts did).
    texts = pd.read_parquet(Path(record.run_dir) / EXAMPLES_FILE)["text"]
    labels = [sim.spec.label(column) for column in sim.spec.exclude]
    assert labels and not any(texts.str.contains(f"{label}:", regex=False).any() for label in labels)
    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "RLHF guard" in card


def test_the_outcome_sensor_takes_complete_files_once_with_valid_run_config(
    risk_app_home: Path, instance: dg.DagsterInstance
) -> None:
    landing = outcomes_landing_dir()
    (landing / "outcomes_2025-01.csv").write_text("application_id,creditability,observation_date\n")
    (landing / ".uploading.csv").write_text("partial")
    first = outcome_landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert first.run_requests == []  # no marker, and not yet stable for 30 s: still being copied?
    (landing / "outcomes_2025-01.csv.done").touch()
    second = outcome_landing_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    (request,) = second.run_requests
    assert request.job_name == "outcomes_job" and request.partition_key.startswith("outcomes_2025-01.csv-")
    assert dg.validate_run_config(_job("outcomes_job"), request.run_config)
    assert [r.partitions_def_name for r in second.dynamic_partitions_requests] == ["outcome_files"]
    third = outcome_landing_sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor))
    assert third.run_requests == []


def test_the_outcome_loop_is_wired_into_the_definitions() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in ("outcomes", "labeled_book", "backtest"):
        assert graph.get(dg.AssetKey(key)).group_name == "outcomes"
    assert {k.name for k in graph.asset_check_keys} >= {"outcome_accounting", "backtest_within_intervals"}
    sensor = defs.resolve_sensor_def("outcome_landing_sensor")
    assert {j.name for j in sensor.jobs} == {"outcomes_job", "labeled_book_job", "backtest_job"}
    # The launchpad refuses reject inference other than "none", naming the allowed value.
    bad = {"ops": {"raw_applications": {"config": {"source": "book", "reject_inference": "parceling"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="none"):
        dg.validate_run_config(defs.resolve_job_def("training_job"), bad)
