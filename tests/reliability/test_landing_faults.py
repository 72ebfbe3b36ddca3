"""The landing folder under faults: files still being copied, files changed after the sensor saw
them, partitions re-run, two files with the same stem.

The sensor must take only complete files; a partition run must score exactly the bytes the
sensor hashed and replace exactly its own batch in the warehouse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets.data import dataset_spec
from pipelines.assets.scoring import landing_files, scored_applications, scoring_batch
from pipelines.resources import build_resources
from pipelines.sensors import landing_folder_sensor
from risk_app.landing import landing_key
from risk_app.storage.scores import file_batch_id, scoring_ledger
from tests.reliability.conftest import applications
from tests.storage.rows import scored_rows_per_batch

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
    assert request.partition_key == landing_key("batch_A.csv", full_hash)
    assert request.partition_key.startswith("batch_A.csv-") and request.partition_key.endswith(full_hash[:12])
    assert json.loads(third.cursor)["scored"]["batch_A.csv"]["sha256"] == full_hash  # the hash it scored
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


# ----------------------------------------------------------------------- issue 20 §6: hostile uploads


def test_a_done_marker_is_consumed_so_the_next_upload_waits_for_its_own(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    rows = applications(30, seed=5)
    path = landing / "batch_B.csv"
    rows.to_csv(path, index=False)
    (landing / "batch_B.csv.done").touch()
    first = clock.tick(None)
    assert len(first.run_requests) == 1
    assert not (landing / "batch_B.csv.done").exists()  # consumed with the file

    rows.head(7).to_csv(path, index=False)  # the next upload under the same name, half written
    assert clock.tick(first.cursor, 1).run_requests == []


def test_a_marker_older_than_the_file_does_not_make_it_complete(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    marker = landing / "batch_C.csv.done"
    marker.touch()  # left by an earlier upload
    path = landing / "batch_C.csv"
    applications(8, seed=6).to_csv(path, index=False)  # a new upload, half written
    stale = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(marker, ns=(stale, stale))
    first = clock.tick(None)
    assert first.run_requests == []
    applications(30, seed=6).to_csv(path, index=False)
    second = clock.tick(first.cursor, STABLE_S + 1)
    assert second.run_requests == []  # changed since the last look
    [request] = clock.tick(second.cursor, STABLE_S + 1).run_requests
    assert request.tags["risk_app/batch_id"] == file_batch_id(path)  # the whole file


def test_new_content_with_the_same_size_and_mtime_is_scored(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    path = landing / "batch_D.csv"
    frame = applications(20, seed=7)
    frame.to_csv(path, index=False)
    (landing / "batch_D.csv.done").touch()
    first = clock.tick(None)
    [taken] = first.run_requests
    before = path.stat()

    # `cp -p` of another export: other bytes, the same size, the old mtime put back.
    lines = path.read_bytes().split(b"\n")
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"\n".join(lines))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert file_batch_id(path) != taken.tags["risk_app/batch_id"]

    second = clock.tick(first.cursor, STABLE_S + 1)
    [request] = clock.tick(second.cursor, STABLE_S + 1).run_requests
    assert request.tags["risk_app/batch_id"] == file_batch_id(path)
    assert request.partition_key != taken.partition_key



def test_a_touched_file_with_the_same_bytes_is_not_taken_again(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    path = landing / "batch_E.csv"
    applications(10, seed=8).to_csv(path, index=False)
    (landing / "batch_E.csv.done").touch()
    first = clock.tick(None)
    assert len(first.run_requests) == 1
    os.utime(path)  # a new mtime, the same bytes
    second = clock.tick(first.cursor, STABLE_S + 1)
    third = clock.tick(second.cursor, STABLE_S + 1)
    assert second.run_requests == third.run_requests == []
    assert "1 already taken" in third.skip_reason.skip_message


def test_a_symlink_in_the_landing_folder_is_never_followed(
    landing: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    outside = risk_app_home / "elsewhere" / "secret.csv"
    outside.parent.mkdir()
    applications(10, seed=9).to_csv(outside, index=False)
    (landing / "secret.csv").symlink_to(outside)
    (landing / "secret.csv.done").touch()
    inside = landing / "copy.csv"
    applications(5, seed=9).to_csv(inside, index=False)
    (landing / "link_inside.csv").symlink_to(inside)

    first = clock.tick(None)
    second = clock.tick(first.cursor, STABLE_S + 1)
    third = clock.tick(second.cursor, STABLE_S + 1)
    taken = [r.tags["landing_file"] for r in (*first.run_requests, *second.run_requests, *third.run_requests)]
    assert taken == ["copy.csv"]  # regular files only
    skip = clock.tick(third.cursor, STABLE_S + 1).skip_reason.skip_message
    assert "2 symlink(s) ignored (link_inside.csv, secret.csv)" in skip


def test_names_that_flatten_alike_get_their_own_partitions_and_bytes(
    landing: Path, double_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scoring.doubles import install_double_loader

    install_double_loader(monkeypatch)
    clock = Clock(monkeypatch)
    spaced, underscored = landing / "a b.csv", landing / "a_b.csv"
    applications(12, seed=10).to_csv(spaced, index=False)
    applications(9, seed=11).to_csv(underscored, index=False)
    twin = landing / "a;b.csv"
    twin.write_bytes(underscored.read_bytes())  # the same bytes under a third name flattening alike
    for path in (spaced, underscored, twin):
        (landing / f"{path.name}.done").touch()
    requests = {r.tags["landing_file"]: r for r in clock.tick(None).run_requests}
    assert len({r.partition_key for r in requests.values()}) == 3

    # Re-materialized from the UI: the partition alone, no input_path, no expected hash.
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, [r.partition_key for r in requests.values()])
    for name in ("a b.csv", "a_b.csv"):
        result = _rematerialize(instance, requests[name].partition_key, double_model)
        assert result.success
    assert scored_rows_per_batch() == {file_batch_id(spaced): 12, file_batch_id(underscored): 9}

    # The file changes: its old partition refuses the new bytes in one sentence.
    applications(4, seed=12).to_csv(spaced, index=False)
    failed = _rematerialize(instance, requests["a b.csv"].partition_key, double_model)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no longer has the content the partition was made for" in failure.event_specific_data.error.message
    assert sum(scored_rows_per_batch().values()) == 21  # nothing added by the refused run


def _rematerialize(instance: dg.DagsterInstance, key: str, model: Path) -> Any:
    run_config = {"ops": {"scored_applications": {"config": {"model": str(model), "reason_codes": 0}}}}
    return dg.materialize(
        [dataset_spec, scoring_batch, scored_applications],
        partition_key=key,
        run_config=run_config,
        resources=build_resources(),
        instance=instance,
        raise_on_error=False,
    )
