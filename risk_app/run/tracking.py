"""The MLflow run of a trained model: opened before training, one point per epoch as it happens.

`training_run` creates the MLflow run when fine-tuning starts (so its duration is the real
training time and its curves fill in epoch by epoch), names it after the run id without its
time stamp (`mlflow_run_name`), tags it with `risk-app` as its source, records the training data
as the run's dataset input, logs the training and method parameters, and ends it FINISHED,
FAILED or KILLED. Registration later logs the model, the test metrics and the report into this
same run (`register_model_version(mlflow_run_id=...)`): one run per trained model. Logged
numbers are rounded as the metric table says (`rounded_metric`).

The experiment is tagged `mlflow.experimentKind = custom_model_development`, the documented
way to mark a classic ML experiment. MLflow 3.17's UI does not read it to pick the view: the
"GenAI / Model training" switch in its sidebar is kept per browser (GenAI until clicked once;
mlflow/mlflow#24498), so the README gives the one click and a link that opens the runs
(`#/experiments/<id>/runs?workflowType=machine_learning`).

    with training_run(record, config) as tracker, on_epoch_end(tracker.log_epoch):
        train_classifier(...)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from risk_app.evaluate.metric_table import rounded_metric
from risk_app.finetune.config import TrainConfig
from risk_app.registry.mlflow_registry import configure_mlflow
from risk_app.registry.processes import process_tags
from risk_app.run.record import RunRecord
from risk_app.run.render import mlflow_run_name

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML = "custom_model_development"
_PARAM_LIMIT = 6000  # MLflow's limit on a param value's length


@dataclass(frozen=True)
class TrainingTracker:
    """Logs a finished epoch's numbers into the open MLflow run, with the epoch as the step."""

    client: MlflowClient
    mlflow_run_id: str

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        step = int(record.get("epoch", 0))
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"epoch_{key}", rounded_metric(key, float(value)), now, step)
            for key, value in record.items()
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool)
        ]
        self.client.log_batch(self.mlflow_run_id, metrics=metrics)


def _flat_params(values: Mapping[str, Any], prefix: str = "") -> list[Param]:
    params = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            params += _flat_params(value, f"{prefix}{key}.")
        else:
            params.append(Param(f"{prefix}{key}", str(value)[:_PARAM_LIMIT]))
    return params


def _killed_run(client: MlflowClient, experiment_id: str, record: RunRecord) -> str | None:
    """The MLflow run a killed training of `record` opened (the newest, if several), or None.

    Matched on the run's tags in Python: a run id never goes into a filter string."""
    runs = client.search_runs(
        [experiment_id], filter_string="tags.stage = 'training'", order_by=["attributes.start_time DESC"]
    )
    mine = [run for run in runs if run.data.tags.get("run_id") == record.run_id]
    return mine[0].info.run_id if mine else None


def _dataset_input(record: RunRecord) -> DatasetInput:
    """The training data as MLflow's Dataset column shows it: the data set's name, the hash of
    the examples (texts, labels, splits) as its digest, the file it came from."""
    facts = record.dataset
    dataset = Dataset(
        name=facts.name,
        digest=facts.data_hash.removeprefix("sha256:")[:8],
        source_type="local",
        source=json.dumps({"uri": facts.source or facts.name}),
        profile=json.dumps({"rows": facts.rows}),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


@contextmanager
def training_run(
    record: RunRecord, config: TrainConfig, method_params: Mapping[str, Any], *, resume: bool = False
) -> Iterator[TrainingTracker]:
    """An MLflow run open for the length of fine-tuning; ended FAILED/KILLED if training is.

    With `resume`, the MLflow run the killed training opened is reopened (RUNNING again, tagged
    with this process), so the epoch curve of a killed-then-resumed run is one curve in one run."""
    experiment_id = configure_mlflow()
    client = MlflowClient()
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML)
    earlier = _killed_run(client, experiment_id, record) if resume else None
    if earlier is not None:
        client.update_run(earlier, status="RUNNING")
        for key, value in process_tags().items():  # the live process now: reconcile leaves it be
            client.set_tag(earlier, key, value)
        client.set_tag(earlier, "resumed", "true")
        yield from _tracked(client, earlier)
        return
    tags = {
        MLFLOW_RUN_NAME: mlflow_run_name(record.run_id),
        MLFLOW_SOURCE_NAME: "risk-app",
        MLFLOW_SOURCE_TYPE: "LOCAL",
        "run_id": record.run_id,
        "dataset": record.dataset.name,
        "stage": "training",
        **process_tags(),
    }
    run = client.create_run(experiment_id, run_name=tags[MLFLOW_RUN_NAME], tags=tags)
    run_id = run.info.run_id
    client.log_inputs(run_id, datasets=[_dataset_input(record)])
    params = _flat_params({"train": config.model_dump(mode="json"), "method_params": dict(method_params)})
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=params[start : start + 100])
    yield from _tracked(client, run_id)


def _tracked(client: MlflowClient, run_id: str) -> Iterator[TrainingTracker]:
    try:
        yield TrainingTracker(client, run_id)
    except BaseException as exc:
        client.set_terminated(
            run_id, "KILLED" if isinstance(exc, KeyboardInterrupt | SystemExit) else "FAILED"
        )
        raise
    client.set_terminated(run_id, "FINISHED")
