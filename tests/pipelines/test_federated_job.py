"""`federated_training_job`: the consortium from the launchpad, a round at a time in the event log."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs

pytestmark = pytest.mark.slow


def test_launchpad_refuses_unknown_keys() -> None:
    job = defs.resolve_job_def("federated_training_job")
    config = {"ops": {"train_consortium": {"config": {"rounds": 1, "roundz": 2}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="roundz"):
        job.execute_in_process(run_config=config, instance=dg.DagsterInstance.ephemeral())


@pytest.mark.ray  # one Ray cluster at a time (tests/conftest.py)
def test_federated_training_job_reports_each_round(tiny_qwen2) -> None:
    train = {"method": "lora", "max_length": 48, "batch_size": 16, "device": "cpu"}
    config = {"ops": {"train_consortium": {"config": {
        "lenders": 2, "partition_by": "dirichlet:5", "rounds": 1, "min_lenders": 2, "train": train,
    }}}}  # fmt: skip
    result = defs.resolve_job_def("federated_training_job").execute_in_process(
        run_config=config, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    (round_one,) = [e.event_specific_data.asset_observation.metadata for e in observations]
    assert (
        round_one["status"].value == "aggregated"
        and round_one["lenders_returned"].value == "lender-1, lender-2"
    )
    assert {"val_auc/lender-1", "bytes_sent/lender-2"} <= set(round_one)
    output = result.output_for_node("train_consortium")
    assert output  # the run id of the packaged consortium model
    materialized = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = materialized[0].event_specific_data.metadata
    assert meta["model"].value == "federated:lora" and meta["rounds_completed"].value == 1
    assert 0.0 <= meta["pooled_test_auc"].value <= 1.0
