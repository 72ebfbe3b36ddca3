"""The override ledger in Dagster: the landing sensor takes each complete file once, the
`overrides` asset records it with the deployment's reason codes (re-running it adds nothing),
and `override_monitoring` with its check warns when an override rate is above the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import ALL_ASSETS
from pipelines.assets.overrides import override_monitoring
from pipelines.checks import override_rates_within_limit
from pipelines.jobs import overrides_job
from pipelines.resources import RiskAppSettings, build_resources
from pipelines.sensors import override_landing_sensor
from risk_app.overrides import store
from risk_app.overrides.ingest import add_override_file, overrides_landing_dir
from tests.outcomes.conftest import german_rows, record_batch

BATCH = "e" * 64


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def _job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=ALL_ASSETS, jobs=[overrides_job], resources=build_resources()
    ).resolve_job_def("overrides_job")


def test_a_landed_override_file_is_taken_once_through_the_sensor(
    risk_app_home: Path, instance: dg.DagsterInstance
) -> None:
    valid = german_rows(6)
    record_batch(valid, "2025-03-15", [0.3] * 6, [True, False] * 3, batch_id=BATCH)
    empty = override_landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert empty.run_requests == [] and empty.skip_reason is not None
    assert empty.skip_reason.skip_message.startswith("no override files in ")

    landed = overrides_landing_dir() / "overrides_2025-03.csv"
    pd.DataFrame(
        {
            "application_id": ["app-0", "app-1", "app-5"],
            "batch_id": BATCH,
            "model_decision": ["decline", "approve", "decline"],  # app-5 was approved: quarantined
            "analyst_decision": ["approve", "decline", "approve"],
            "reason_code": ["verified_income", "adverse_information", "other"],
            "analyst": "AN-3",
            "decided_at": "2025-03-16 09:00",
        }
    ).to_csv(landed, index=False)
    landed.with_name(landed.name + ".done").touch()
    tick = override_landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
    (request,) = tick.run_requests
    assert request.partition_key.startswith("overrides_2025-03.csv-")
    assert [r.partitions_def_name for r in tick.dynamic_partitions_requests] == ["override_files"]
    for partitions in tick.dynamic_partitions_requests:
        instance.add_dynamic_partitions(partitions.partitions_def_name, list(partitions.partition_keys))
    job = _job()
    assert dg.validate_run_config(job, request.run_config)

    first = job.execute_in_process(
        run_config=request.run_config, instance=instance, partition_key=request.partition_key
    )
    metadata = first.asset_materializations_for_node("overrides")[0].metadata
    assert (
        metadata["rows_in"].value,
        metadata["rows_accepted"].value,
        metadata["rows_quarantined"].value,
    ) == (3, 2, 1)
    again = job.execute_in_process(
        run_config=request.run_config, instance=instance, partition_key=request.partition_key
    )
    assert (
        again.asset_materializations_for_node("overrides")[0].metadata["status"].value == "already_recorded"
    )
    assert len(store.read_rows(store.OVERRIDES)) == 2
    later = override_landing_sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor))
    assert later.run_requests == []  # taken once


def test_override_monitoring_warns_above_the_limit(risk_app_home: Path, instance: dg.DagsterInstance) -> None:
    valid = german_rows(6)
    record_batch(valid, "2025-03-15", [0.3] * 6, [True, False] * 3, batch_id=BATCH)
    path = risk_app_home / "o.csv"
    pd.DataFrame(
        {
            "application_id": ["app-1"], "batch_id": BATCH, "model_decision": "approve",
            "analyst_decision": "decline", "reason_code": "affordability", "analyst": "AN-3",
            "decided_at": "2025-03-16",
        }
    ).to_csv(path, index=False)  # fmt: skip
    add_override_file(path, "german_credit")
    settings = RiskAppSettings(max_override_rate=0.2, override_min_decisions=3)
    result = dg.materialize(
        [override_monitoring, override_rates_within_limit],
        resources={**build_resources(), "settings": settings},
        instance=instance,
    )
    metadata = result.asset_materializations_for_node("override_monitoring")[0].metadata
    assert metadata["over_limit"].value == 3  # 1 of 3 approvals (33%) per grade, reason and analyst
    assert metadata["limit"].value.startswith("german_credit: override rates above 20%: high-side grade")
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == metadata["limit"].value


def test_the_override_ledger_is_wired_into_the_definitions() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("overrides")).group_name == "overrides"
    sensor = defs.resolve_sensor_def("override_landing_sensor")
    assert {j.name for j in sensor.jobs} == {"overrides_job"}
    # The reason codes are a launchpad setting, with the contract's defaults.
    assert "verified_income" in build_resources()["settings"].override_reason_codes
