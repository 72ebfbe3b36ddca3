"""Jobs: training (ingest → register), RLHF retraining from the override ledger, scoring (a batch
of new applications), outcomes and overrides in, and the registry's launchpad actions."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from data_contracts.spec import DEFAULT_DATASET
from pipelines.configs import RlhfRetrainingConfig
from pipelines.ops import (
    promote_version,
    record_unaudited_alias_move,
    release_scoring_batch,
    rollback_to_previous_champion,
)

DATASET_ENV = "RISK_APP_DATASET"  # as the weekly schedule reads it
TRAINING_GROUPS = ("ingest", "validation", "preparation", "training", "evaluation", "registry")

training_job = dg.define_asset_job(
    name="training_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest, validate, prepare, fine-tune, evaluate and register a risk model.",
    # One process: the DuckDB file takes one writer, and training wants every core.
    executor_def=dg.in_process_executor,
)


@dg.config_mapping(config_schema=RlhfRetrainingConfig.to_config_schema())
def _rlhf_retraining(config: RlhfRetrainingConfig) -> dict[str, Any]:
    """The launchpad's typed settings -> the training assets' run config, always rlhf on the book
    with the override ledger as its feedback."""
    if not isinstance(config, RlhfRetrainingConfig):  # Dagster hands over the checked values as a dict
        config = RlhfRetrainingConfig.model_validate(config)
    return config.run_config(config.dataset or os.environ.get(DATASET_ENV) or DEFAULT_DATASET)


rlhf_retraining_job = dg.define_asset_job(
    name="rlhf_retraining_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Retrain with rlhf on the labeled book: a supervised fit, a reward model learnt from the "
    "analysts' overrides in the override ledger (oriented by outcomes where known), then PPO, run only "
    "if the reward ranks validation outcomes better than chance and kept only if validation AUC does not "
    "fall (docs/methods.md). With fewer than min_feedback_pairs overrides it stops before training starts.",
    executor_def=dg.in_process_executor,
    config=_rlhf_retraining,
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
