"""Schedules: weekly retraining as new financial data arrives."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import training_job

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=training_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, before analysts start the week.
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain on the configured data file every Monday; promotion stays rule-based.",
)
