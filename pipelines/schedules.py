"""Schedules: weekly retraining as new financial data arrives."""

import os

import dagster as dg

from pipelines.jobs import training_job
from data_contracts.spec import DEFAULT_DATASET

# Where the weekly run reads its training data (the file the bank's extract job refreshes) and
# which data set's spec it follows; both are deployment configuration, not code.
TRAINING_DATA_ENV = "RISK_APP_TRAINING_DATA"
DATASET_ENV = "RISK_APP_DATASET"


@dg.schedule(
    job=training_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, before analysts start the week.
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=f"Retrain every Monday on ${TRAINING_DATA_ENV} with the spec named by ${DATASET_ENV} "
    "(defaults: the bundled German credit data); promotion stays rule-based.",
)
def weekly_retraining(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    dataset = os.environ.get(DATASET_ENV) or DEFAULT_DATASET
    path = os.environ.get(TRAINING_DATA_ENV) or ""  # empty: the data set's own bundled file
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return dg.RunRequest(
        run_key=f"weekly-{dataset}-{week}",
        run_config={
            "ops": {
                "dataset_spec": {"config": {"dataset": dataset}},
                "raw_applications": {"config": {"path": path}},
            }
        },
        tags={"dataset": dataset, "training_data": path or "bundled", "week": week},
    )
