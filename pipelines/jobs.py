"""Jobs: training (ingest → register) and scoring (a batch of new applications)."""

from __future__ import annotations

import dagster as dg

from pipelines.ops import (
    promote_version,
    record_unaudited_alias_move,
    release_scoring_batch,
    rollback_to_previous_champion,
)

TRAINING_GROUPS = ("ingest", "validation", "preparation", "training", "evaluation", "registry")

training_job = dg.define_asset_job(
    name="training_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest, validate, prepare, fine-tune, evaluate and register a risk model.",
    # One process: the DuckDB file takes one writer, and training wants every core.
    executor_def=dg.in_process_executor,
)

rechoose_policy_job = dg.define_asset_job(
    name="rechoose_policy_job",
    # credit_policy and what follows it in training (evaluation, packaging, registration,
    # promotion), not the fine-tuning before it nor the scoring partitions after it.
    selection=dg.AssetSelection.assets("credit_policy").downstream()
    & dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Re-choose the credit policy without retraining: credit_policy and downstream (evaluation, "
    "a new registered version carrying the new policy); the fine-tuned model is reused.",
    executor_def=dg.in_process_executor,
)

scoring_job = dg.define_asset_job(
    name="scoring_job",
    selection=dg.AssetSelection.groups("scoring"),
    description="Validate and batch-score a file of applications with the champion model.",
    executor_def=dg.in_process_executor,
)


outcomes_job = dg.define_asset_job(
    name="outcomes_job",
    selection=dg.AssetSelection.assets("outcomes"),
    description="Take in one outcome file (a partition per file): validate, quarantine, record once.",
    executor_def=dg.in_process_executor,
)

overrides_job = dg.define_asset_job(
    name="overrides_job",
    selection=dg.AssetSelection.assets("overrides"),
    description="Take in one analyst override file (a partition per file): validate against the "
    "scoring ledger, quarantine, record once.",
    executor_def=dg.in_process_executor,
)

labeled_book_job = dg.define_asset_job(
    name="labeled_book_job",
    selection=dg.AssetSelection.assets("labeled_book"),
    description="Rebuild the labeled book: scored applications joined with their outcomes.",
    executor_def=dg.in_process_executor,
)

backtest_job = dg.define_asset_job(
    name="backtest_job",
    selection=dg.AssetSelection.assets("backtest"),
    description="Backtest one vintage: predicted PD vs realized default rate per grade.",
    executor_def=dg.in_process_executor,
)


@dg.job(description="Make a registered version champion from the launchpad; the reason is audited.")
def promote_version_job() -> None:
    promote_version()


@dg.job(description="Roll the champion back to the previous one from the launchpad; the reason is audited.")
def rollback_champion_job() -> None:
    rollback_to_previous_champion()


@dg.job(description="Record a champion alias moved outside risk-app (MLflow's UI) and fail, so it is seen.")
def unaudited_alias_move_job() -> None:
    record_unaudited_alias_move()


@dg.job(description="Release a scoring batch held for drift, with a reason; then it counts in the book.")
def release_scoring_batch_job() -> None:
    release_scoring_batch()
