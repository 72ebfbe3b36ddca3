"""Data assets: ingest a file, validate it against the contract, serialize, split, augment."""

import dagster as dg
import pandas as pd

from pipelines.configs import AugmentationConfig, IngestConfig, PreparationConfig
from pipelines.metadata import table, user_errors, validation_counts
from risk_app import workflow
from risk_app.augment.config import AugmentConfig
from risk_app.augment.pipeline import augment_training_examples
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications


@dg.asset(group_name="ingest", kinds={"pandas", "duckdb"})
@user_errors
def raw_applications(context: dg.AssetExecutionContext, config: IngestConfig) -> dg.Output[pd.DataFrame]:
    """Loan applications as read from a CSV or Parquet file, one row per application."""
    frame = load_applications(config.path)
    frame["source_file"] = str(config.path)
    return dg.Output(
        frame, metadata={"source_file": config.path, "rows": len(frame), "columns": frame.shape[1]}
    )


@dg.multi_asset(
    outs={
        "valid_applications": dg.AssetOut(
            group_name="validation",
            kinds={"pandas", "duckdb"},
            description="Rows that pass the LoanApplication contract.",
        ),
        "quarantined_applications": dg.AssetOut(
            group_name="validation",
            kinds={"pandas", "duckdb"},
            description="One row per failed check, with file, row, column, check and offending value.",
        ),
    },
)
@user_errors
def validated_applications(raw_applications: pd.DataFrame):  # noqa: ANN201 - dagster multi-output
    """Validate lazily (every failure in one pass) and quarantine failing rows with reasons."""
    source = str(raw_applications["source_file"].iloc[0]) if len(raw_applications) else "<empty>"
    result = validate_applications(raw_applications.drop(columns="source_file"), source=source)
    summary = result.summary()
    counts = validation_counts(result)
    yield dg.Output(result.valid, output_name="valid_applications", metadata=counts)
    yield dg.Output(
        result.quarantine,
        output_name="quarantined_applications",
        metadata={
            **counts,
            "failures": len(result.quarantine),
            "summary": dg.MetadataValue.json(summary),
            "sample": table(result.quarantine),
        },
    )


@dg.asset(group_name="preparation", kinds={"pandas", "duckdb"})
@user_errors
def training_examples(valid_applications: pd.DataFrame, config: PreparationConfig) -> dg.Output[pd.DataFrame]:
    """Each application as text (one template) with its stratified, seeded 70/15/15 split."""
    examples = workflow.prepare_examples(
        valid_applications, seed=config.seed, exclude_fields=config.exclude_fields
    )
    by_split = examples.groupby("split")["default"].agg(["size", "mean"]).reset_index()
    by_split.columns = ["split", "rows", "default_rate"]
    return dg.Output(
        examples,
        metadata={
            "rows": len(examples),
            "splits": table(by_split),
            "example_text": dg.MetadataValue.text(examples["text"].iloc[0]),
            "exclude_fields": dg.MetadataValue.json(list(config.exclude_fields)),
        },
    )


@dg.asset(group_name="preparation", kinds={"nlpaug", "duckdb"})
@user_errors
def augmented_training_examples(
    training_examples: pd.DataFrame, valid_applications: pd.DataFrame, config: AugmentationConfig
) -> dg.Output[pd.DataFrame]:
    """The training split plus nlpaug-augmented copies; validation and test are untouched."""
    if not config.enabled:
        return dg.Output(training_examples, metadata={"augmented_rows": 0, "enabled": False})
    settings = AugmentConfig(**config.model_dump())
    result = augment_training_examples(training_examples, valid_applications, settings)
    examples = pd.DataFrame(result.examples)
    return dg.Output(
        result.frame,
        metadata={
            "enabled": True,
            **result.counts,
            **{f"augmenter_{name}": n for name, n in result.per_augmenter.items()},
            "before_after": table(examples, max_rows=5) if not examples.empty else "none",
        },
    )
