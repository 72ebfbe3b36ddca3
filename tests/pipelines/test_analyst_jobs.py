"""Dagster friction an analyst met (issue 21 §6): a job to re-choose the policy without
retraining, a launchpad that keeps the data set of the last run, the model comparison shown."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import model as model_assets
from pipelines.assets.data import dataset_spec
from risk_app.run.record import RunRecord


def test_rechoosing_the_policy_is_a_job_that_does_not_retrain() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def("rechoose_policy_job")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {"credit_policy", "model_evaluation", "packaged_model", "registered_model"} <= selected
    assert not selected & {"fine_tuned_model", "dataset_spec", "scored_applications", "labeled_book"}
    # Every selected asset is unpartitioned: the job runs from the launchpad with no partition.
    assert all(graph.get(dg.AssetKey(name)).partitions_def is None for name in selected)


def test_the_launchpad_keeps_the_data_set_of_the_last_run(
    risk_app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RISK_APP_DATASET", raising=False)
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        resources = {"fs_io_manager": dg.FilesystemIOManager(base_dir=str(risk_app_home / "storage"))}
        first = dg.materialize([dataset_spec], instance=instance, resources=resources)
        assert first.output_for_node("dataset_spec").name == "german_credit"  # nothing typed ever
        typed = {"ops": {"dataset_spec": {"config": {"dataset": "uci_credit_card"}}}}
        dg.materialize([dataset_spec], instance=instance, resources=resources, run_config=typed)
        again = dg.materialize([dataset_spec], instance=instance, resources=resources)
        assert again.output_for_node("dataset_spec").name == "uci_credit_card"


def test_model_comparison_shows_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("lora", {"roc_auc": 0.781234, "brier": 0.171}), ("logistic", {"roc_auc": 0.7702, "brier": 0.18})]
    monkeypatch.setattr(model_assets, "model_rows", lambda record: rows)
    record = RunRecord.model_construct(run_id="run-1")  # model_rows is replaced: only run_id is read
    output = model_assets.model_comparison(record)
    shown = output.metadata["comparison"].value
    assert "| lora " in shown and "| logistic " in shown and "0.7812" in shown and "roc_auc" in shown
    assert list(output.value["model"]) == ["lora", "logistic"]
