"""Model assets: fine-tune, evaluate beside the baselines, register, promote to champion."""

from typing import Any

import dagster as dg
import pandas as pd

from pipelines.configs import TrainingConfig
from pipelines.metadata import png, scalars, table, user_errors
from pipelines.resources import RiskAppSettings
from risk_app import workflow
from risk_app.finetune.config import TrainConfig


@dg.asset(
    group_name="training",
    kinds={"pytorch", "peft"},
    io_manager_key="fs_io_manager",
    # Only the file name travels, for the model card's data section.
    ins={"raw_applications": dg.AssetIn(metadata={"columns": ["source_file"]})},
)
@user_errors
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    raw_applications: pd.DataFrame,
    valid_applications: pd.DataFrame,
    augmented_training_examples: pd.DataFrame,
) -> dg.Output[dict[str, Any]]:
    """A fine-tuned LLM risk model, saved as a self-describing artifact folder."""
    train_config = TrainConfig.from_dict(config.model_dump())
    context.log.info(f"fine-tuning {train_config.base_model} with method {train_config.method!r}")
    source = str(raw_applications["source_file"].iloc[0]) if len(raw_applications) else ""
    outcome = workflow.train_and_evaluate(
        valid_applications, augmented_training_examples, train_config, data_source=source
    )
    record = workflow.outcome_record(outcome)
    history = pd.DataFrame(outcome.train.history)
    return dg.Output(
        record,
        metadata={
            **scalars(outcome.train.summary()),
            "artifact_dir": dg.MetadataValue.path(str(outcome.artifact_dir)),
            "history": table(history),
            "method_params": dg.MetadataValue.json(record["train_config"]["method_params"]),
            "val_roc_auc": dg.MetadataValue.float(float(outcome.val_metrics["roc_auc"])),
            "threshold": dg.MetadataValue.float(outcome.threshold),
        },
    )


@dg.asset(group_name="evaluation", kinds={"sklearn", "duckdb"})
@user_errors
def model_evaluation(fine_tuned_model: dict[str, Any]) -> dg.Output[pd.DataFrame]:
    """Test metrics of the fine-tuned model side by side with the classical baselines."""
    frame = workflow.metrics_frame(fine_tuned_model)
    report = fine_tuned_model["report"]
    plots = {
        key: png(path, key.replace("_", " "))
        for key, path in report["paths"].items()
        if path.endswith(".png")
    }
    test = fine_tuned_model["test_metrics"]
    return dg.Output(
        frame,
        metadata={
            **scalars({k: v for k, v in test.items() if k != "confusion_matrix"}, prefix="test_"),
            "comparison": table(frame),
            "ece": dg.MetadataValue.float(report["ece"]),
            "top_decile_lift": dg.MetadataValue.float(report["top_decile_lift"]),
            "lift_table": table(pd.read_csv(report["paths"]["lift_table"])),
            "fairness_flags": dg.MetadataValue.json(fine_tuned_model["fairness"].get("flags", [])),
            "model_card": dg.MetadataValue.md(fine_tuned_model["model_card"]),
            **plots,
        },
    )


@dg.asset(group_name="registry", kinds={"mlflow"}, io_manager_key="fs_io_manager", deps=[model_evaluation])
@user_errors
def registered_model(
    fine_tuned_model: dict[str, Any], settings: RiskAppSettings
) -> dg.Output[dict[str, Any]]:
    """A new MLflow model version (alias `challenger`) with the promotion rule's verdict."""
    record = workflow.register_record(
        fine_tuned_model, model_name=settings.model_name, rule=settings.promotion_rule()
    )
    return dg.Output(
        record,
        metadata={
            "model_name": record["name"],
            "version": record["version"],
            "run_id": record["run_id"],
            "promote": record["decision"]["promote"],
            "reason": dg.MetadataValue.text(record["decision"]["reason"]),
        },
    )


@dg.asset(group_name="registry", kinds={"mlflow"}, io_manager_key="fs_io_manager")
@user_errors
def champion_model(registered_model: dict[str, Any]) -> dg.Output[dict[str, Any]]:
    """The version behind alias `champion`; runs only when the blocking promotion check passes."""
    workflow.promote_record(registered_model, actor="dagster")
    return dg.Output(
        {"name": registered_model["name"], "version": registered_model["version"]},
        metadata={"champion_version": registered_model["version"]},
    )
