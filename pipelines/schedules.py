"""Schedules: weekly retraining on the lender's own labeled book (or a configured file)."""

import os

import dagster as dg

from data_contracts.spec import DEFAULT_DATASET, load_spec
from pipelines.jobs import training_job
from risk_app.outcomes.book import book_ready_for_training

# Where the weekly run reads its training data (the file the bank's extract job refreshes) and
# which data set's spec it follows; both are deployment configuration, not code.
TRAINING_DATA_ENV = "RISK_APP_TRAINING_DATA"
DATASET_ENV = "RISK_APP_DATASET"
# "book", "file", or empty: the labeled book once it holds enough vintages with outcomes.
TRAINING_SOURCE_ENV = "RISK_APP_TRAINING_SOURCE"
WINDOW_ENV = "RISK_APP_TRAINING_WINDOW_MONTHS"


def _training_ops(dataset: str, path: str) -> tuple[dict, str]:
    """The run config's ops and the source chosen: the book by default when it is ready."""
    source = os.environ.get(TRAINING_SOURCE_ENV) or ""
    spec = load_spec(dataset)
    if source == "book" or (not source and book_ready_for_training(spec)):
        window = int(os.environ.get(WINDOW_ENV) or 0)
        ops: dict = {"raw_applications": {"config": {"source": "book", "window_months": window}}}
        if spec.date_column:
            # The challenger is judged on the newest vintage, the one before validates.
            ops["training_examples"] = {"config": {"split": "out_of_time", "test_on": "latest_vintage"}}
        return ops, "book"
    return {"raw_applications": {"config": {"path": path}}}, "file"


@dg.schedule(
    job=training_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, before analysts start the week.
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=f"Retrain every Monday with the spec named by ${DATASET_ENV}: on the labeled book "
    f"(out-of-time test on the newest vintage) once it holds outcomes, else on ${TRAINING_DATA_ENV} "
    "(default: the bundled data); promotion stays rule-based.",
)
def weekly_retraining(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    dataset = os.environ.get(DATASET_ENV) or DEFAULT_DATASET
    path = os.environ.get(TRAINING_DATA_ENV) or ""  # empty: the data set's own bundled file
    week = context.scheduled_execution_time.strftime("%G-W%V")
    ops, source = _training_ops(dataset, path)
    return dg.RunRequest(
        run_key=f"weekly-{dataset}-{week}",
        run_config={"ops": {"dataset_spec": {"config": {"dataset": dataset}}, **ops}},
        tags={
            "dataset": dataset,
            "training_source": source,
            "training_data": "labeled book" if source == "book" else (path or "bundled"),
            "week": week,
        },
    )
