"""`fine_tuned_model` with nproc=2: torchrun started through Dagster Pipes reports to the asset."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.assets import ALL_ASSETS
from pipelines.resources import build_resources
from risk_app.run.launch import read_launch_facts

pytestmark = pytest.mark.slow

def test_two_processes_through_pipes_report_logs_and_metadata(tiny_qwen2: Path, risk_app_home: Path) -> None:
    sample = risk_app_home / "sample.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(80, random_state=0).to_csv(sample, index=False)
    run_config = {
        "ops": {
            "raw_applications": {"config": {"path": str(sample)}},
            "fine_tuned_model": {"config": {"epochs": 1, "max_length": 96, "batch_size": 8, "nproc": 2}},
        }
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        ALL_ASSETS,
        selection=dg.AssetSelection.assets("fine_tuned_model").upstream().required_multi_asset_neighbors(),
        run_config=run_config,
        resources=build_resources(),
        instance=instance,
    )
    assert result.success
    record = result.output_for_node("fine_tuned_model")
    events = result.get_asset_materialization_events()
    (event,) = [e for e in events if e.asset_key.to_user_string() == "fine_tuned_model"]
    metadata = event.materialization.metadata
    # Reported by rank 0 through Pipes, next to the metadata the asset renders from the record.
    assert metadata["launch_world_size"].value == 2
    assert metadata["launch_strategy"].value == "ddp"
    assert metadata["run_id"].value == record.run_id
    assert read_launch_facts(record.run_dir)["backend"] == "gloo"
    # Rank 0's epoch line reached the Dagster event log as a Pipes log message.
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(m.startswith("epoch 1: train_loss=") for m in messages), messages[-10:]
