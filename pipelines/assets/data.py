"""Data assets: the data set's spec, ingest, validate against the spec, serialize, split, augment."""

import dagster as dg
import pandas as pd

from data_contracts.spec import DatasetSpec, default_dataset, load_spec
from pipelines.configs import AugmentationConfig, DatasetConfig, IngestConfig, PreparationConfig
from pipelines.metadata import table, user_errors, validation_counts
from risk_app import workflow
from risk_app.augment.config import AugmentConfig
from risk_app.augment.pipeline import augment_training_examples
from risk_app.config_errors import validated
from risk_app.data import examples as data_examples
from risk_app.data.validate import validate_applications
from risk_app.errors import RiskAppError


def _role(spec: DatasetSpec, column: str) -> str:
    """What the spec makes of a column, for the spec's table in the UI."""
    roles = {
        spec.id_column: "id",
        spec.target.column: "target",
        **{c: "excluded" for c in spec.exclude},
        **({spec.date_column: "date"} if spec.date_column else {}),
    }
    if column in roles:
        return roles[column]
    return "feature (protected)" if column in spec.protected_columns else "feature"


@dg.asset(group_name="ingest", kinds={"yaml"}, io_manager_key="fs_io_manager")
@user_errors
def dataset_spec(context: dg.AssetExecutionContext, config: DatasetConfig) -> dg.Output[DatasetSpec]:
    """The data set's declared contract: columns, roles, labels, protected attributes."""
    spec = load_spec(config.dataset or _last_dataset(context) or default_dataset())
    if not config.dataset:
        context.log.info(f"data set {spec.name} (none typed: the last run's, else $RISK_APP_DATASET)")
    columns = pd.DataFrame(
        [
            {"column": name, "type": c.type, "label": c.label, "role": _role(spec, name)}
            for name, c in spec.columns.items()
        ]
    )
    return dg.Output(
        spec,
        metadata={
            "name": spec.name,
            "version": spec.version,
            "spec_hash": spec.hash,
            "target": f"{spec.target.column} ({spec.target.positive!r} = default)",
            "columns": table(columns, max_rows=100),
            "source": dg.MetadataValue.text(spec.source),
            "licence": spec.licence,
            "spec": str(spec.spec_path or spec.name),
        },
    )


def _last_dataset(context: dg.AssetExecutionContext) -> str | None:
    """The spec (name or file) of `dataset_spec`'s latest materialization, if it still loads."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return None
    entry = materialization.metadata.get("spec") or materialization.metadata.get("name")
    ref = str(getattr(entry, "value", entry)) if entry is not None else None
    if not ref:
        return None
    try:
        load_spec(ref)
        return ref
    except RiskAppError:
        context.log.warning(f"the last run's data set {ref!r} no longer loads; using the default")
        return None


@dg.asset(group_name="ingest", kinds={"pandas", "duckdb"})
@user_errors
def raw_applications(config: IngestConfig, dataset_spec: DatasetSpec) -> dg.Output[pd.DataFrame]:
    """Loan applications as read from a CSV or Parquet file, or from the labeled book."""
    source = validated(workflow.TrainingSource, config.model_dump(), "raw_applications config")
    read = workflow.read_training_applications(source, dataset_spec)
    frame = read.frame.assign(source_file=read.source)
    metadata = {"source_file": read.source, "rows": len(frame), "columns": frame.shape[1]}
    if read.book is not None:  # what the book left out and why
        metadata = {
            "source_file": read.source,
            "rows": len(frame),
            "vintages": dg.MetadataValue.json(read.book.vintages),
            **{f"book_{k}": v for k, v in read.book.counts.items()},
            "outside_window": read.book.outside_window,
            "excluded": dg.MetadataValue.md("\n".join(f"- {n}" for n in read.book.notes)),
        }
    return dg.Output(frame, metadata=metadata)


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
def validated_applications(
    raw_applications: pd.DataFrame, dataset_spec: DatasetSpec
) -> tuple[dg.Output[pd.DataFrame], dg.Output[pd.DataFrame]]:
    """Validate lazily (every failure in one pass) and quarantine failing rows with reasons."""
    source = str(raw_applications["source_file"].iloc[0]) if len(raw_applications) else "<empty>"
    result = validate_applications(
        raw_applications.drop(columns="source_file"), source=source, spec=dataset_spec
    )
    summary = result.summary()
    counts = validation_counts(result)
    # Returned, not yielded: `user_errors` turns errors into one-line failures only when the body
    # runs inside it (a generator's body runs after the wrapper has returned).
    return dg.Output(result.valid, output_name="valid_applications", metadata=counts), dg.Output(
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
def training_examples(
    valid_applications: pd.DataFrame, dataset_spec: DatasetSpec, config: PreparationConfig
) -> dg.Output[pd.DataFrame]:
    """Each application as text (the spec's template) with its split: seeded 70/15/15 at random,
    or out of time (by default the newest vintage is the test set, the one before validates)."""
    preparation = data_examples.PreparationConfig.model_validate(config.model_dump())
    examples = data_examples.prepare_training_examples(valid_applications, preparation, spec=dataset_spec)
    by_split = examples.groupby("split")["default"].agg(["size", "mean"]).reset_index()
    by_split.columns = ["split", "rows", "default_rate"]
    return dg.Output(
        examples,
        metadata={
            "rows": len(examples),
            "splits": table(by_split),
            "example_text": dg.MetadataValue.text(examples["text"].iloc[0]),
            "exclude_fields": dg.MetadataValue.json(list(config.exclude_fields)),
            "split": config.split,
        },
    )


@dg.asset(group_name="preparation", kinds={"nlpaug", "duckdb"})
@user_errors
def augmented_training_examples(
    training_examples: pd.DataFrame,
    valid_applications: pd.DataFrame,
    dataset_spec: DatasetSpec,
    config: AugmentationConfig,
) -> dg.Output[pd.DataFrame]:
    """The training split plus nlpaug-augmented copies; validation and test are untouched."""
    if not config.enabled:
        return dg.Output(training_examples, metadata={"augmented_rows": 0, "enabled": False})
    settings = AugmentConfig.from_dict(config.model_dump())  # ranges and names checked, one line
    result = augment_training_examples(training_examples, valid_applications, settings, spec=dataset_spec)
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
