"""The landing folder under faults: files still being copied, files changed after the sensor saw
them, partitions re-run, two files with the same stem.

The sensor must take only complete files; a partition run must score exactly the bytes the
sensor hashed and replace exactly its own batch in the warehouse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets.data import dataset_spec
from pipelines.assets.scoring import landing_files, scored_applications, scoring_batch
from pipelines.resources import build_resources
from pipelines.sensors import landing_folder_sensor
from risk_app.storage.scores import file_batch_id, scored_rows_per_batch, scoring_ledger
from tests.reliability.conftest import applications

STABLE_S = 30.0


@pytest.fixture
def landing(risk_app_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RISK_APP_LANDING_STABLE_SECONDS", str(STABLE_S))
    folder = risk_app_home / "landing"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Clock:
    """The sensor's notion of now, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import pipelines.sensors as sensors

        self.now = 2_000_000_000.0  # well after any file's mtime
        monkeypatch.setattr(sensors.time, "time", lambda: self.now)

    def tick(self, cursor: str | None, seconds: float = 0.0) -> dg.SensorResult:
        self.now += seconds
        return landing_folder_sensor(dg.build_sensor_context(cursor=cursor))


def test_a_file_still_being_copied_is_not_scored_until_it_is_stable(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    rows = applications(30)
    path = landing / "batch_A.csv"
    rows.head(12).to_csv(path, index=False)  # the copy has written 12 rows so far

    first = clock.tick(None)
    assert first.run_requests == []
    rows.to_csv(path, index=False)  # the copy goes on: size and mtime change
    second = clock.tick(first.cursor, STABLE_S + 1)
    assert second.run_requests == []  # changed since the last look: still settling
    third = clock.tick(second.cursor, STABLE_S + 1)
    [request] = third.run_requests
    full_hash = file_batch_id(path)
    assert request.run_config["ops"]["scoring_batch"]["config"]["expected_batch_id"] == full_hash
    assert request.partition_key == f"batch_A.csv-{full_hash[:12]}"
    assert json.loads(third.cursor)["scored"]["batch_A.csv"][2] == full_hash  # the hash it scored
    assert third.dynamic_partitions_requests[0].partition_keys == [request.partition_key]
    assert clock.tick(third.cursor, STABLE_S + 1).run_requests == []  # once only


def test_a_done_marker_makes_a_file_complete_at_once(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    applications(10).to_parquet(landing / "batch_B.parquet", index=False)
    (landing / ".batch_C.csv.partial").write_text("upload in progress")
    (landing / "batch_B.parquet.done").touch()
    [request] = clock.tick(None).run_requests
    assert request.tags["landing_file"] == "batch_B.parquet"


def _materialize(instance: dg.DagsterInstance, key: str, source: Path, expected: str, model: Path) -> Any:
    run_config = {
        "ops": {
            "scoring_batch": {"config": {"input_path": str(source), "expected_batch_id": expected}},
            "scored_applications": {"config": {"model": str(model), "reason_codes": 0}},
        }
    }
    return dg.materialize(
        [dataset_spec, scoring_batch, scored_applications],
        partition_key=key,
        run_config=run_config,
        resources=build_resources(),
        instance=instance,
        raise_on_error=False,
    )


def test_partitions_score_their_own_bytes_and_replace_only_their_batch(
    landing: Path, double_model: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scoring.doubles import install_double_loader

    install_double_loader(monkeypatch)
    csv, parquet = landing / "batch_A.csv", landing / "batch_A.parquet"
    applications(20, seed=1).to_csv(csv, index=False)
    applications(15, seed=2).to_parquet(parquet, index=False)
    (landing / "batch_A.csv.done").touch()
    (landing / "batch_A.parquet.done").touch()
    requests = Clock(monkeypatch).tick(None).run_requests
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, [r.partition_key for r in requests])
    pinned = {r.tags["landing_file"]: r for r in requests}

    for request in (*requests, requests[0]):  # the first partition re-run
        config = request.run_config["ops"]["scoring_batch"]["config"]
        result = _materialize(
            instance,
            request.partition_key,
            Path(config["input_path"]),
            config["expected_batch_id"],
            double_model,
        )
        assert result.success
    assert scored_rows_per_batch() == {file_batch_id(csv): 20, file_batch_id(parquet): 15}
    assert sorted(scoring_ledger()["partition_key"]) == sorted(r.partition_key for r in requests)
    outputs = sorted(p.name for p in (risk_app_home / "outputs").iterdir())
    assert outputs == sorted(
        f"{name}.{file_batch_id(landing / name)[:12]}.double-v1.scores.parquet"
        for name in ("batch_A.csv", "batch_A.parquet")
    )

    # The file is overwritten after the sensor hashed it: the pinned run refuses the new bytes.
    applications(5, seed=3).to_csv(csv, index=False)
    request = pinned["batch_A.csv"]
    config = request.run_config["ops"]["scoring_batch"]["config"]
    failed = _materialize(instance, request.partition_key, csv, config["expected_batch_id"], double_model)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "content changed since the sensor saw it" in failure.event_specific_data.error.message
    assert sum(scored_rows_per_batch().values()) == 35  # nothing lost, nothing added


def test_csv_outputs_neutralize_formulas_but_parquet_keeps_values(risk_app_home: Path) -> None:
    from risk_app.scoring.output import write_output

    frame = pd.DataFrame(
        {
            "application_id": ["=cmd|' /C calc'!A0", "@SUM(A1)", "+1", "-2", "\tx", "\ry", "ok"],
            "amount": [-5, 1, 2, 3, 4, 5, 6],
        }
    )
    csv = write_output(frame, risk_app_home / "out.csv")
    back = pd.read_csv(csv)
    assert back["application_id"].tolist()[:6] == [
        "'=cmd|' /C calc'!A0",
        "'@SUM(A1)",
        "'+1",
        "'-2",
        "'\tx",
        "'\ry",
    ]
    assert back["amount"].tolist() == [-5, 1, 2, 3, 4, 5, 6]  # numbers stay numbers
    parquet = write_output(frame, risk_app_home / "out.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), frame)
