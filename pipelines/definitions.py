"""Dagster entry point: `dagster dev` from the repo root loads these definitions."""

import dagster as dg

import pipelines._quiet  # noqa: F401 - first: sets the libraries' log levels before they are imported
from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.federated import federated_training_job
from pipelines.jobs import (
    backtest_job,
    labeled_book_job,
    outcomes_job,
    overrides_job,
    promote_version_job,
    rechoose_policy_job,
    release_scoring_batch_job,
    rlhf_retraining_job,
    rollback_champion_job,
    scoring_job,
    training_job,
    unaudited_alias_move_job,
)
from pipelines.resources import build_resources
from pipelines.schedules import weekly_retraining
from pipelines.sensors import (
    champion_alias_watch,
    landing_folder_sensor,
    outcome_landing_sensor,
    override_landing_sensor,
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[
        training_job,
        rlhf_retraining_job,
        rechoose_policy_job,
        scoring_job,
        outcomes_job,
        overrides_job,
        labeled_book_job,
        backtest_job,
        promote_version_job,
        release_scoring_batch_job,
        rollback_champion_job,
        unaudited_alias_move_job,
        federated_training_job,
    ],
    schedules=[weekly_retraining],
    sensors=[landing_folder_sensor, outcome_landing_sensor, override_landing_sensor, champion_alias_watch],
    resources=build_resources(),
)
