"""Scoring assets, one dynamic partition per landing file: validate the batch, score it, record it.

Each partition is one input file pinned by its content hash (`<file name>-<12 hex>`, added by
`landing_folder_sensor`), so the UI lists which files were scored. Materializing a partition
replaces exactly that batch in the warehouse ledger in one transaction
(`risk_app.storage.scores`); other batches are never touched. Frames travel between the steps
through the pickling IO manager, per partition, so two runs at once cannot mix batches.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from data_contracts.spec import DatasetSpec
from pipelines.metadata import table, user_errors, validation_counts
from pipelines.resources import RiskAppSettings
from risk_app import paths, scoring
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.batch_drift import batch_drift
from risk_app.scoring.output import batch_output_path, write_output
from risk_app.storage.scores import BATCH_COLUMNS, ScoredBatch, file_batch_id, record_scored_batch

landing_files = dg.DynamicPartitionsDefinition(name="landing_files")

_KEY = re.compile(r"^(?P<name>.+)-(?P<hash>[0-9a-f]{12})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def landing_partition_key(file_name: str, batch_id: str) -> str:
    """`<file name>-<first 12 hex of its sha256>`: one partition per file content."""
    return f"{_UNSAFE.sub('_', file_name).replace('...', '_')}-{batch_id[:12]}"


class ScoringInputConfig(dg.Config):
    input_path: str = Field(
        default="",
        description="File to score; empty: the landing file named by the partition key.",
    )
    expected_batch_id: str = Field(
        default="",
        description="sha256 the sensor saw; the run fails if the file no longer has it.",
    )
    dataset: str = Field(
        default="", description="Data set name recorded with the batch (default: the data set spec's name)."
    )


class ScoringConfig(dg.Config):
    output_path: str = Field(
        default="",
        description="Scores file (.parquet or .csv); empty: outputs/<file>.<hash>.scores.parquet.",
    )
    overwrite: bool = Field(
        default=False, description="Replace an existing output_path (the default batch-named file always is)."
    )
    model: str = Field(default="champion", description="Model alias, version number or local folder.")
    reason_codes: int = Field(
        default=4, description="Principal reasons listed for each declined application (0 = none)."
    )


def _source(context: dg.AssetExecutionContext, config: ScoringInputConfig) -> Path:
    if config.input_path:
        return Path(config.input_path)
    match = _KEY.match(context.partition_key)
    if match is None:
        raise ConfigError(f"partition {context.partition_key!r}: set scoring_batch.config.input_path")
    return paths.landing_dir() / match["name"]


def _tag(frame: pd.DataFrame, values: tuple[str, str, str]) -> pd.DataFrame:
    out = frame.copy()
    for column, value in zip(BATCH_COLUMNS, values, strict=True):
        out[column] = pd.Series([value] * len(out), index=out.index, dtype="string")
    return out


@dg.multi_asset(
    outs={
        "scoring_applications": dg.AssetOut(
            group_name="scoring",
            kinds={"pandas"},
            io_manager_key="fs_io_manager",
            description="Contract-valid applications of the batch (tagged with its batch_id).",
        ),
        "scoring_quarantine": dg.AssetOut(
            group_name="scoring",
            kinds={"pandas"},
            io_manager_key="fs_io_manager",
            description="Failed checks of the batch; these rows are not scored.",
        ),
    },
    partitions_def=landing_files,
)
@user_errors
def scoring_batch(
    context: dg.AssetExecutionContext, config: ScoringInputConfig, dataset_spec: DatasetSpec
) -> tuple[dg.Output[pd.DataFrame], dg.Output[pd.DataFrame]]:
    """Load and validate one landing file (its content hash checked); the target is optional."""
    source = _source(context, config)
    if not source.is_file():
        raise RiskAppError(f"{source}: no such file to score")
    batch_id = file_batch_id(source)
    if config.expected_batch_id and batch_id != config.expected_batch_id:
        raise RiskAppError(
            f"{source}: content changed since the sensor saw it (sha256 {batch_id[:12]}, "
            f"expected {config.expected_batch_id[:12]}); the new content gets its own partition"
        )
    frame = load_applications(source, dataset_spec)
    result = validate_applications(frame, source=str(source), require_target=False, spec=dataset_spec)
    if file_batch_id(source) != batch_id:
        raise RiskAppError(f"{source}: the file changed while it was read; score it once it is complete")
    tags = (batch_id, config.dataset or dataset_spec.name, str(source.resolve()))
    counts = {"source_file": str(source), "batch_id": batch_id, **validation_counts(result)}
    # Returned, not yielded: `user_errors` can only turn errors into one-line failures when the
    # body runs inside it (a generator would run after the wrapper has returned).
    return (
        dg.Output(_tag(result.valid, tags), output_name="scoring_applications", metadata=counts),
        dg.Output(
            _tag(result.quarantine, tags),
            output_name="scoring_quarantine",
            metadata={**counts, "sample": table(result.quarantine)},
        ),
    )


def _batch_of(applications: pd.DataFrame, quarantine: pd.DataFrame) -> tuple[str, str, str]:
    for frame in (applications, quarantine):
        if len(frame):
            return tuple(str(frame[c].iloc[0]) for c in BATCH_COLUMNS)  # type: ignore[return-value]
    raise RiskAppError("the batch has no rows to score or quarantine")


# Lineage: scores come from the champion (resolved from the registry at run time, so the
# scoring job does not re-run training).
@dg.asset(
    group_name="scoring",
    kinds={"pytorch", "duckdb"},
    deps=["champion_model"],
    partitions_def=landing_files,
    io_manager_key="fs_io_manager",
    # The drift check runs inside the asset, on this partition's batch alone: a separate check
    # on a partitioned asset would load every batch ever scored.
    check_specs=[
        dg.AssetCheckSpec(
            "scoring_drift",
            asset="scored_applications",
            blocking=True,
            description="PSI of every input and of the score against training, judged against the "
            "noise of the batch's size; too few rows is a warning, never a verdict.",
        )
    ],
)
@user_errors
def scored_applications(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    scoring_applications: pd.DataFrame,
    scoring_quarantine: pd.DataFrame,
    dataset_spec: DatasetSpec,
    settings: RiskAppSettings,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    """PD, grade, decision, model version and reason codes; the batch replaces its warehouse rows."""
    batch_id, dataset, source = _batch_of(scoring_applications, scoring_quarantine)
    model_name = settings.registered_name(dataset_spec.name)
    risk_model = scoring.load_model(config.model, model_name=model_name)
    applications = scoring_applications.drop(columns=list(BATCH_COLUMNS))
    context.log.info(f"scoring batch {batch_id[:12]} ({len(applications)} rows) with {risk_model.version}")
    scored = scoring.score_with_reasons(applications, risk_model, top_k=config.reason_codes)
    output = Path(config.output_path) if config.output_path else batch_output_path(source, batch_id)
    n_quarantined = int(scoring_quarantine["row_number"].nunique()) if len(scoring_quarantine) else 0
    record = record_scored_batch(
        ScoredBatch(
            batch_id=batch_id,
            model_version=str(risk_model.version),
            dataset=dataset,
            source_file=source,
            scores=scored,
            applications=applications,
            quarantine=scoring_quarantine.drop(columns=list(BATCH_COLUMNS)),
            partition_key=context.partition_key,
            output_path=str(output),
            origin="dagster",
            n_in=len(applications) + n_quarantined,
        ),
        mode="replace",
    )
    context.log.info(record.message)
    # The batch-named default belongs to this batch alone, so a re-run replaces it.
    write_output(scored, output, overwrite=config.overwrite or not config.output_path)
    grades = scored["risk_grade"].value_counts().sort_index()
    yield dg.Output(
        scored,
        metadata={
            "batch_id": batch_id,
            "warehouse": record.message,
            "rows_scored": len(scored),
            "model_version": str(risk_model.version),
            "output_path": dg.MetadataValue.path(str(output)),
            "decline_rate": dg.MetadataValue.float(
                round(float((scored["decision"] == "decline").mean()), 4) if len(scored) else 0.0
            ),
            "mean_probability_of_default": dg.MetadataValue.float(
                round(float(scored["probability_of_default"].mean()), 4) if len(scored) else 0.0
            ),
            "grades": table(grades.rename_axis("risk_grade").reset_index(name="applications")),
            "sample": table(scored.round({"probability_of_default": 4})),
        },
    )
    yield drift_check(applications, scored, risk_model, settings)


def drift_check(
    applications: pd.DataFrame, scored: pd.DataFrame, risk_model: Any, settings: RiskAppSettings
) -> dg.AssetCheckResult:
    """The batch's drift against the training population the model carries: one sentence, the
    PSI table, warn or fail. Models packaged before they carried it: the score alone."""
    reference = list(getattr(risk_model, "metadata", {}).get("extra", {}).get("reference_scores") or [])
    # Test doubles and older models may carry neither the training rows nor the spec.
    train = getattr(risk_model, "reference_features", lambda: None)()
    spec = getattr(risk_model, "dataset_spec", None)
    report = batch_drift(
        train, applications, spec, reference, scored["probability_of_default"].to_numpy(),
        settings.drift_thresholds(),
    )  # fmt: skip
    return dg.AssetCheckResult(
        check_name="scoring_drift",
        # "Too few rows" is a warning, not a pass: the batch was not judged.
        passed=report.status in ("ok", "warn"),
        severity=dg.AssetCheckSeverity.ERROR if report.status == "fail" else dg.AssetCheckSeverity.WARN,
        description=report.sentence,
        metadata={
            "status": report.status,
            "rows": report.rows,
            "psi": table(report.table.round(4), 25),
        },
    )
