"""Every asset materializes end to end on a small sample, with the numbers adding up."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.assets import ALL_ASSETS, dataset_spec, raw_applications, validated_applications
from pipelines.checks import ALL_CHECKS
from pipelines.resources import build_resources
from risk_app.storage.warehouse import query

pytestmark = pytest.mark.slow


@pytest.fixture
def sample_file(risk_app_home: Path) -> Path:
    """200 real applications plus two broken rows, to exercise quarantine."""
    frame = pd.read_csv(load_spec("german_credit").data_path).sample(200, random_state=0)
    broken = frame.head(2).copy()
    broken["age_in_years"] = [12, 130]
    path = risk_app_home / "sample.csv"
    pd.concat([frame, broken]).to_csv(path, index=False)
    return path


def test_all_assets_materialize_on_a_small_sample(
    sample_file: Path, tiny_qwen2: Path, risk_app_home: Path
) -> None:
    output = risk_app_home / "outputs" / "scores.parquet"
    run_config = {
        "ops": {
            "raw_applications": {"config": {"path": str(sample_file)}},
            "augmented_training_examples": {"config": {"enabled": True, "copies_per_row": 1}},
            "fine_tuned_model": {"config": {"method": "lora", "epochs": 1, "max_length": 128}},
        }
    }
    resources = build_resources()
    # Partitioned assets (scoring per landing file, outcomes, backtests) run per partition, so
    # one run takes every unpartitioned asset, then the scoring group runs for one landing file.
    partitioned = [a for a in ALL_ASSETS if a.partitions_def is not None]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*partitioned),
        run_config=run_config,
        resources=resources,
        raise_on_error=True,
        instance=instance,
    )
    assert result.success
    instance.add_dynamic_partitions("landing_files", ["sample.csv-000000000000"])
    scoring_config = {
        "ops": {
            "scoring_batch": {"config": {"input_path": str(sample_file)}},
            "scored_applications": {"config": {"output_path": str(output), "reason_codes": 2}},
        }
    }
    scoring_run = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=dg.AssetSelection.groups("scoring"),
        run_config=scoring_config,
        resources=resources,
        raise_on_error=True,
        instance=instance,
        partition_key="sample.csv-000000000000",
    )

    materialized = {
        e.asset_key.to_user_string()
        for run in (result, scoring_run)
        for e in run.get_asset_materialization_events()
    }
    expected = {
        a.key.to_user_string()
        for asset in ALL_ASSETS
        if asset not in partitioned or asset.partitions_def.name == "landing_files"
        for a in asset.specs
    }
    assert expected <= materialized

    counts = result.asset_materializations_for_node("validated_applications")[0].metadata
    assert counts["rows_in"].value == 202
    assert counts["rows_valid"].value + counts["rows_quarantined"].value == 202
    assert counts["rows_quarantined"].value == 2

    examples = query("select * from risk.augmented_training_examples")
    assert examples.loc[examples["augmented"], "split"].eq("train").all()

    comparison = result.output_for_node("model_comparison")
    assert list(comparison["model"]) == ["llm:lora", "logistic", "lightgbm"]
    assert comparison["roc_auc"].between(0, 1).all()

    # One record flowed through the stages; the card names the packaged version.
    record = result.output_for_node("champion_model")
    assert record.registration.version == 1 and record.registration.promoted
    assert record.registration.model_name == "german_credit"
    assert record.dataset.rows["test"] > 0 and record.training.config.method == "lora"
    card = result.asset_materializations_for_node("packaged_model")[0].metadata["model_card"].value
    assert record.artifact.version in card

    scored = pd.read_parquet(output)
    assert len(scored) == 200  # the two broken rows are quarantined, not scored
    assert {"application_id", "probability_of_default", "risk_grade", "decision", "model_version"} <= set(
        scored
    )
    declined = scored["decision"] == "decline"
    assert scored.loc[declined, "reason_1"].notna().any()

    checks = {
        e.check_name: e.passed
        for run in (result, scoring_run)
        for e in run.get_asset_check_evaluations()
    }
    assert (
        checks["contract_passes"] and checks["quarantine_rate_below_threshold"] and checks["promotion_rule"]
    )
    assert "scoring_drift" in checks


def test_scoring_job_runs_twice_on_files_with_different_columns(
    risk_app_home: Path, tiny_qwen2: Path
) -> None:
    """A labelled batch, then an unlabelled one: the warehouse table follows the new columns."""
    from risk_app import workflow
    from risk_app.finetune.config import TrainConfig

    frame = pd.read_csv(load_spec("german_credit").data_path).sample(160, random_state=3)
    train_path = risk_app_home / "train.csv"
    frame.to_csv(train_path, index=False)
    validation = workflow.ingest_and_validate(train_path)
    examples = workflow.prepare_examples(validation.valid)
    record = workflow.train_run(
        validation.valid,
        examples,
        TrainConfig(epochs=1, max_length=64),
        baselines=("logistic",),
        progress=False,
    )
    # The drift check compares each batch with the training data in the warehouse.
    dg.materialize(
        [dataset_spec, raw_applications, validated_applications],
        run_config={"ops": {"raw_applications": {"config": {"path": str(train_path)}}}},
        resources=build_resources(),
    )
    scoring_group = dg.AssetSelection.groups("scoring")
    for name, data in (
        ("labelled.csv", frame.head(20)),
        ("unlabelled.csv", frame.tail(20).drop(columns="creditability")),
    ):
        path = risk_app_home / name
        data.to_csv(path, index=False)
        scores = path.with_suffix(".scores.parquet")
        config = {
            "ops": {
                "scoring_batch": {"config": {"input_path": str(path)}},
                "scored_applications": {
                    "config": {"output_path": str(scores), "model": record.artifact.path}
                },
            }
        }
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("landing_files", [f"{name}-000000000000"])
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            selection=scoring_group,
            run_config=config,
            resources=build_resources(),
            instance=instance,
            partition_key=f"{name}-000000000000",
        )
        assert result.success
        assert len(pd.read_parquet(scores)) == 20
