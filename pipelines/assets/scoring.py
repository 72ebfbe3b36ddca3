"""Scoring assets, one dynamic partition per landing file: validate the batch, score it, record it.

Each partition is one input file pinned by its content hash
(`<file name>-<8 hex of the name's sha256>-<12 hex of the content's>`, `risk_app.landing`,
added by `landing_folder_sensor`), so the UI lists which files were scored. A run scores only
the bytes its partition names: the sensor passes `expected_batch_id`, and a re-materialization
from the UI without `input_path` finds the landing file the key names and checks its content
against the key's hash (an explicit `input_path` is the operator's choice, checked against
`expected_batch_id` when given). Materializing a partition replaces exactly that batch in the
warehouse ledger in one transaction (`risk_app.storage.scores`); other batches are never touched.

A file may be larger than memory, so no step holds it whole (`risk_app.scoring.staged`):
`scoring_batch` validates it chunk by chunk into Parquet parts staged under
`<home>/scoring_stage/<partition>/<run id>` and hands on only a small `StagedBatch` (where the
parts are, the counts, the batch's identity); `scored_applications` scores the parts one by
one, records the batch once, publishes the scores atomically, removes the stage and hands on
a `StagedScoring` (outcome, summary, drift verdict). Stages are per run, so two runs at once
cannot mix batches; a failed run's stage stays for re-execution from the failure.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from data_contracts.spec import DatasetSpec
from pipelines.metadata import expected_failure, reconcile_first, table, user_errors, validation_counts
from pipelines.resources import RiskAppSettings
from risk_app import paths
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.batch_drift import BatchDrift
from risk_app.landing import find_landing_file, key_content, landing_key
from risk_app.scoring.batch import policy_of
from risk_app.scoring.service import load_model
from risk_app.scoring.staged import (
    DEFAULT_CHUNK_ROWS,
    StagedBatch,
    StagedScoring,
    prune_stale_stages,
    score_staged,
    stage_folder,
    validate_to_stage,
)
from risk_app.scoring.summary import DRIFT_SAMPLE_ROWS
from risk_app.storage.holds import HoldRequest, hold_batch
from risk_app.storage.scores import BatchRecord, file_batch_id

landing_files = dg.DynamicPartitionsDefinition(name="landing_files")


def landing_partition_key(file_name: str, batch_id: str) -> str:
    """One partition per (file name, content): `risk_app.landing.landing_key`."""
    return landing_key(file_name, batch_id)


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
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS,
        ge=1,
        description="Rows read, validated and (next step) scored at a time: memory follows this, "
        "not the size of the file.",
    )


class ScoringConfig(dg.Config):
    output_path: str = Field(
        default="",
        description="Scores file (.parquet or .csv); "
        "empty: outputs/<file>.<hash>.<model version>.scores.parquet.",
    )
    overwrite: bool = Field(
        default=False, description="Replace an existing output_path (the default batch-named file always is)."
    )
    model: str = Field(default="champion", description="Model alias, version number or local folder.")
    reason_codes: int = Field(
        default=4, description="Principal reasons listed for each declined application (0 = none)."
    )
    drift_sample_rows: int = Field(
        default=DRIFT_SAMPLE_ROWS,
        ge=1,
        description="The drift check judges a seeded random sample of at most this many scored rows "
        "(the whole batch when it is smaller).",
    )


def _source(context: dg.AssetExecutionContext, config: ScoringInputConfig) -> tuple[Path, str]:
    """(the file to score, its sha256), checked against the sensor's hash and the partition key."""
    if not config.input_path:
        if key_content(context.partition_key) is None:
            raise ConfigError(f"partition {context.partition_key!r}: set scoring_batch.config.input_path")
        source, batch_id = find_landing_file(paths.landing_dir(), context.partition_key)
    else:
        source = Path(config.input_path)
        if not source.is_file():
            raise RiskAppError(f"{source}: no such file to score")
        batch_id = file_batch_id(source)
    if config.expected_batch_id and batch_id != config.expected_batch_id:
        raise RiskAppError(
            f"{source}: content changed since the sensor saw it (sha256 {batch_id[:12]}, "
            f"expected {config.expected_batch_id[:12]}); the new content gets its own partition"
        )
    return source, batch_id


@dg.multi_asset(
    outs={
        # Named apart from `scored_applications`: at the lineage graph's fit zoom Dagster cuts
        # long names in the middle, and `scoring_applications` read as that very name.
        "batch_to_score": dg.AssetOut(
            group_name="scoring",
            kinds={"parquet"},
            io_manager_key="fs_io_manager",
            description="Contract-valid applications of the batch, staged as Parquet parts "
            "(the value handed on describes them: folder, counts, batch_id).",
        ),
        "scoring_quarantine": dg.AssetOut(
            group_name="scoring",
            kinds={"parquet"},
            io_manager_key="fs_io_manager",
            description="Failed checks of the batch; these rows are not scored.",
        ),
    },
    partitions_def=landing_files,
)
@user_errors
def scoring_batch(
    context: dg.AssetExecutionContext, config: ScoringInputConfig, dataset_spec: DatasetSpec
) -> tuple[dg.Output[StagedBatch], dg.Output[StagedBatch]]:
    """Validate one landing file chunk by chunk (its content hash checked); the target is optional."""
    source, batch_id = _source(context, config)
    prune_stale_stages()
    batch = validate_to_stage(
        source, dataset_spec, stage_folder(context.partition_key, context.run_id), batch_id=batch_id,
        dataset=config.dataset or dataset_spec.name, chunk_rows=config.chunk_rows,
    )  # fmt: skip
    counts = {
        "source_file": str(source),
        "batch_id": batch_id,
        **validation_counts(batch),
        "chunks": batch.parts,
    }
    # Returned, not yielded: `user_errors` can only turn errors into one-line failures when the
    # body runs inside it (a generator would run after the wrapper has returned).
    return (
        dg.Output(batch, output_name="batch_to_score", metadata=counts),
        dg.Output(
            batch,
            output_name="scoring_quarantine",
            metadata={**counts, "sample": table(batch.quarantine_head)},
        ),
    )


# Lineage: scores come from the champion (resolved from the registry at run time, so the
# scoring job does not re-run training).
@dg.asset(
    group_name="scoring",
    kinds={"pytorch", "duckdb"},
    # scoring_quarantine describes the same staged batch as batch_to_score: lineage only.
    deps=["champion_model", "scoring_quarantine"],
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
        ),
        dg.AssetCheckSpec(
            "scoring_rescored_ids",
            asset="scored_applications",
            description="Warns when most application ids of the batch were already scored by the same "
            "model in another batch (the same applications re-exported with other bytes).",
        ),
    ],
)
@user_errors
def scored_applications(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    batch_to_score: StagedBatch,
    dataset_spec: DatasetSpec,
    settings: RiskAppSettings,
) -> Iterator[dg.Output[StagedScoring] | dg.AssetCheckResult]:
    """PD, grade, decision, model version and reason codes; the batch replaces its warehouse rows."""
    batch = batch_to_score
    reconcile_first(context.log, settings.registered_name(dataset_spec.name))
    risk_model = load_model(config.model, model_name=settings.registered_name(dataset_spec.name))
    policy = policy_of(risk_model)
    context.log.info(
        f"scoring batch {batch.batch_id[:12]} ({batch.n_valid} rows in {batch.parts} chunk(s)) "
        f"with {risk_model.version}: decline when PD >= {policy['policy_cutoff']:.4f} "
        f"(policy {policy['policy_id'] or 'unnamed'}, objective {policy['policy_objective'] or 'unknown'})"
    )
    result = score_staged(
        batch, risk_model, output_path=config.output_path or None,
        # The batch-named default belongs to this batch alone, so a re-run replaces it.
        overwrite=config.overwrite or not config.output_path, reasons=config.reason_codes,
        partition_key=context.partition_key, origin="dagster", mode="replace",
        drift=settings.drift_thresholds(), sample_rows=config.drift_sample_rows,
    )  # fmt: skip
    batch.remove()
    context.log.info(result.outcome.record.message)
    assert result.drift is not None  # asked for above
    held = result.drift.status == "fail"
    if held:
        # A drifted batch is held (recorded, visible, out of the book) until an analyst releases it.
        hold = HoldRequest(
            batch.batch_id, batch.dataset, result.outcome.model_version, batch.source_file,
            context.partition_key, result.drift.sentence,
        )  # fmt: skip
        held_sentence = hold_batch(hold)
    status = {"held": dg.MetadataValue.text(held_sentence if held else "no: released as scored")}
    shown = {**policy, "policy_cutoff": round(float(policy["policy_cutoff"]), 4)}
    yield dg.Output(result, metadata={**scoring_metadata(result), **shown, **status})
    yield drift_result(result.drift, of_rows=result.summary.n_scored)
    yield rescored_result(result.outcome.record)
    if held:
        # The drift sentence as the run's failure, not Dagster's generic check-failed error.
        raise expected_failure(f"{result.drift.sentence} {held_sentence}.", {"batch_id": batch.batch_id})


def rescored_result(record: BatchRecord) -> dg.AssetCheckResult:
    """The `scoring_rescored_ids` check: a warning when most ids were already scored by the model."""
    description = record.rescored_warning or (
        f"{record.rescored_ids} of {record.rows} ids were already scored by {record.model_version}."
    )
    return dg.AssetCheckResult(
        check_name="scoring_rescored_ids",
        passed=not record.mostly_rescored,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "ids_already_scored": record.rescored_ids,
            "rows_scored": record.rows,
            "earlier_batches": ", ".join(b[:12] for b in record.rescored_from) or "none",
        },
    )


def scoring_metadata(result: StagedScoring) -> dict[str, Any]:
    """Counts, rates, grades and the first rows of one scored batch, as the UI shows them."""
    outcome, summary = result.outcome, result.summary
    quarantine = (
        {"quarantine_path": dg.MetadataValue.path(outcome.quarantine_path)} if outcome.quarantine_path else {}
    )
    return {
        "batch_id": outcome.batch_id,
        "warehouse": outcome.record.message,
        "rows_in": outcome.n_in,
        "rows_scored": outcome.n_scored,
        "rows_quarantined": outcome.n_quarantined,
        "ids_already_scored_by_this_model": outcome.record.rescored_ids,
        "chunks": result.chunks,
        "model_version": outcome.model_version,
        "output_path": dg.MetadataValue.path(outcome.output_path),
        **quarantine,
        "decline_rate": dg.MetadataValue.float(round(summary.decline_rate, 4)),
        "mean_probability_of_default": dg.MetadataValue.float(round(summary.mean_probability_of_default, 4)),
        "grades": table(summary.grade_table()),
        "sample": table(summary.head.round({"probability_of_default": 4})),
    }


def drift_result(report: BatchDrift, *, of_rows: int) -> dg.AssetCheckResult:
    """The `scoring_drift` check of a drift report; `of_rows`: the batch's scored rows, when the
    report judged a sample of them."""
    sampled = report.rows < of_rows
    prefix = f"Judged on a random sample of {report.rows} of {of_rows} scored rows. " if sampled else ""
    return dg.AssetCheckResult(
        check_name="scoring_drift",
        # "Too few rows" is a warning, not a pass: the batch was not judged.
        passed=report.status in ("ok", "warn"),
        severity=dg.AssetCheckSeverity.ERROR if report.status == "fail" else dg.AssetCheckSeverity.WARN,
        description=prefix + report.sentence,
        metadata={
            "status": report.status,
            "rows": report.rows,
            "rows_scored": of_rows,
            "psi": table(report.table.round(4), 25),
        },
    )
