"""Outcomes route to their data set by their landing folder (issue 21 §2), whatever
$RISK_APP_DATASET says, and the book and backtest run without the data set typed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.jobs import backtest_job, labeled_book_job, outcomes_job
from pipelines.resources import build_resources
from pipelines.sensors import outcome_landing_sensor
from risk_app.data.validate import validate_applications
from risk_app.outcomes.backtest import recorded_backtests
from risk_app.outcomes.ingest import outcome_files
from risk_app.outcomes.routing import outcomes_landing_dir
from risk_app.policy.grades import assign_grades
from risk_app.storage.scores import ScoredBatch, record_scored_batch

UCI = load_spec("uci_credit_card")


@pytest.fixture
def instance(
    risk_app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    monkeypatch.delenv("RISK_APP_DATASET", raising=False)  # german_credit by default
    monkeypatch.setenv("RISK_APP_LANDING_STABLE_SECONDS", "0")
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as test_instance:
        yield test_instance


def _score_uci(n: int = 40) -> pd.DataFrame:
    """A scored batch of `uci_credit_card` in the ledger (real rows, made-up scores), 2025-01."""
    frame = pd.read_csv(UCI.data_path, dtype=str).iloc[:n].copy()
    if UCI.id_column not in frame.columns:
        frame.insert(0, UCI.id_column, [f"uci-{i}" for i in range(n)])
    valid = validate_applications(frame, source="uci.csv", spec=UCI).valid
    p = np.full(len(valid), 0.2)
    scores = pd.DataFrame(
        {
            "application_id": valid[UCI.id_column].astype(str).to_numpy(),
            "probability_of_default": p,
            "risk_grade": assign_grades(p),
            "decision": np.array(["approve"] * len(valid), dtype=object),
            "model_version": "uci_credit_card/1",
            "scored_at": pd.Series(
                [pd.Timestamp("2025-01-15", tz="UTC")] * len(p), dtype="datetime64[ns, UTC]"
            ),
        }
    )
    applications = valid.drop(columns=[c for c in (UCI.target.column, "default") if c in valid.columns])
    record_scored_batch(
        ScoredBatch(
            batch_id="uci-2025-01", model_version="uci_credit_card/1", dataset=UCI.name,
            source_file="uci-2025-01.csv", scores=scores, applications=applications,
        )
    )  # fmt: skip
    return valid


def _job(name: str) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[outcomes_job, labeled_book_job, backtest_job],
        resources=build_resources(),
    )
    return defs.resolve_job_def(name)


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    result = outcome_landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_an_outcome_file_of_another_data_set_routes_by_its_folder(instance: dg.DagsterInstance) -> None:
    valid = _score_uci()
    folder = outcomes_landing_dir() / UCI.name
    first = _tick(instance, None)  # makes one folder per known data set
    assert folder.is_dir() and first.run_requests == []
    assert "landing_outcomes/<" in str(first.skip_reason) and UCI.name in str(first.skip_reason)
    path = folder / "outcomes_2025-01.csv"
    pd.DataFrame(
        {
            UCI.id_column: valid[UCI.id_column].astype(str).to_numpy(),
            UCI.target.column: valid[UCI.target.column].astype(str).to_numpy(),
            "observation_date": "2025-06-30",
        }
    ).to_csv(path, index=False)
    path.with_name(path.name + ".done").touch()

    files = _tick(instance, first.cursor)
    (request,) = files.run_requests
    assert request.run_config["ops"]["outcomes"]["config"]["dataset"] == UCI.name
    # Run from the partition alone, as a re-materialization in the UI does: the folder says the data set.
    result = _job("outcomes_job").execute_in_process(
        instance=instance, partition_key=request.partition_key, raise_on_error=False
    )
    assert result.success
    taken = outcome_files(UCI.name)
    assert len(taken) == 1 and int(taken["n_accepted"].iloc[0]) == len(valid)

    books = _tick(instance, files.cursor)
    backtests = [r for r in books.run_requests if r.job_name == "backtest_job"]
    assert [r.partition_key for r in backtests] == [f"{UCI.name}/2025-01"]
    assert f"{UCI.name}/2025-01" in instance.get_dynamic_partitions("vintages")
    # Neither the book nor the backtest needs the data set typed.
    book = _job("labeled_book_job").execute_in_process(instance=instance, raise_on_error=False)
    assert book.success
    meta = book.asset_materializations_for_node("labeled_book")[0].metadata
    assert UCI.name in meta["dataset"].value and meta["with_outcome"].value == len(valid)
    back = _job("backtest_job").execute_in_process(
        instance=instance, partition_key=f"{UCI.name}/2025-01", raise_on_error=False
    )
    assert back.success
    assert set(recorded_backtests(UCI.name)["vintage"]) == {"2025-01"}
