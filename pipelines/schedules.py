"""Schedules: weekly retraining as new financial data arrives."""

import os

import dagster as dg

from pipelines.jobs import training_job
from risk_app import paths

# Where the weekly run reads its training data: the file the bank's extract job refreshes.
TRAINING_DATA_ENV = "RISK_APP_TRAINING_DATA"


@dg.schedule(
    job=training_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, before analysts start the week.
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=f"Retrain every Monday on ${TRAINING_DATA_ENV} (default: the bundled data); "
    "promotion stays rule-based.",
)
def weekly_retraining(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    path = os.environ.get(TRAINING_DATA_ENV) or str(paths.DEFAULT_DATASET)
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return dg.RunRequest(
        run_key=f"weekly-{week}",
        run_config={"ops": {"raw_applications": {"config": {"path": path}}}},
        tags={"training_data": path, "week": week},
    )
