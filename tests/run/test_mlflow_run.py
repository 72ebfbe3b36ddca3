"""MLflow as its users expect it (issue 21 §5): one run per trained model, a version with a few
rounded tags and one JSON artifact, a run name that fits, the run's metrics rounded as the
metric table says; promotion reads the JSON artifact."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from risk_app import workflow
from risk_app.evaluate.metric_table import rounded_metric
from risk_app.finetune.config import TrainConfig
from risk_app.registry import mlflow_registry as reg
from risk_app.registry.mlflow_store import facts_path, read_version_facts, version_metrics
from risk_app.registry.promotion import PromotionRule
from risk_app.run.register import promote_run, register_run
from risk_app.run.render import mlflow_run_name
from tests.scoring.doubles import save_double_artifact

MODEL = "german_credit"
MAX_VERSION_TAGS = 15


def _registered(path: Path) -> tuple[object, MlflowClient]:
    validation = workflow.ingest_and_validate(path)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=64, seed=7, patience=0)
    record = workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False)
    return promote_run(register_run(record, model_name=MODEL), actor="test"), MlflowClient()


def test_one_run_per_trained_model_with_a_short_name(small_file: Path, tiny_qwen2: Path) -> None:
    record, client = _registered(small_file)
    training, registration = record.need("training"), record.need("registration")
    trained = client.get_run(training.mlflow_run_id)
    runs = client.search_runs([reg.configure_mlflow()])
    assert [r.info.run_id for r in runs] == [training.mlflow_run_id]  # no second, registration run
    assert registration.mlflow_run_id == training.mlflow_run_id
    mv = client.get_model_version(MODEL, str(registration.version))
    assert mv.run_id == training.mlflow_run_id and mv.source.startswith("models:/")
    # The run holds the training curve and the model, the report and the facts beside it.
    assert [m.step for m in client.get_metric_history(trained.info.run_id, "epoch_val_auc")] == [1]
    artifacts = {a.path for a in client.list_artifacts(trained.info.run_id)}
    assert {"report", "registration"} <= artifacts
    assert trained.data.metrics["test_roc_auc"] == round(record.need("evaluation").test.roc_auc, 4)
    # Still training's status and duration: registration does not stretch the run.
    assert trained.info.status == "FINISHED" and trained.info.end_time is not None
    name = trained.data.tags["mlflow.runName"]
    assert name == mlflow_run_name(record.run_id) and len(name) <= 20 and not name[:8].isdigit()
    assert trained.data.tags["run_id"] == record.run_id  # the full id stays findable
    [dataset] = trained.inputs.dataset_inputs
    assert dataset.dataset.name == "german_credit"


def test_version_has_few_rounded_tags_and_one_json_artifact(small_file: Path, tiny_qwen2: Path) -> None:
    record, client = _registered(small_file)
    registration, evaluation = record.need("registration"), record.need("evaluation")
    mv = client.get_model_version(MODEL, str(registration.version))
    tags = mv.tags or {}
    assert registration.promoted and tags["promotion_decision"] == "promoted"
    assert len(tags) <= MAX_VERSION_TAGS, sorted(tags)
    assert [k for k in tags if k.startswith("metric.")] == ["metric.roc_auc"]
    assert tags["metric.roc_auc"] == repr(round(evaluation.test.roc_auc, 4))
    facts = read_version_facts(mv)
    assert facts == json.loads(mlflow.artifacts.load_text(f"runs:/{mv.run_id}/{facts_path(mv.source)}"))
    # Everything else, at full precision: what promotion reads.
    assert facts["metrics"]["test_ks"] == evaluation.test.ks
    assert facts["metrics"]["logistic_roc_auc"] == evaluation.baselines["logistic"].roc_auc
    assert facts["tags"]["policy_id"] == record.need("policy").policy_id
    assert version_metrics(client, mv)["ks"] == evaluation.test.ks
    # The run's metrics are rounded as the reports round them.
    metrics = client.get_run(mv.run_id).data.metrics
    assert metrics and all(value == rounded_metric(key, value) for key, value in metrics.items())
    assert metrics["test_n"] == float(evaluation.test.n)


def test_two_versions_of_one_run_keep_their_own_facts(risk_app_home: Path) -> None:
    """A policy chosen again registers a second version from the same run: each version's
    numbers stay its own (JSON facts), and promotion reads a metric that is no tag."""
    client, name = reg._client(), "facts_model"
    run_id = client.create_run(reg.configure_mlflow(), run_name="lora-abc123").info.run_id
    client.set_terminated(run_id, "FINISHED")
    trained = client.get_run(run_id).info
    infos = []
    for policy, ks in (("a", 0.30), ("b", 0.35)):
        folder = save_double_artifact(risk_app_home / policy, version=f"double-{policy}", n_train=99)
        metrics = {"roc_auc": 0.7, "brier": 0.2, "ks": ks}
        infos.append(reg.register_model_version(
            folder, metrics=metrics, params={"policy": {"objective": policy}}, model_name=name,
            mlflow_run_id=run_id,
        ))  # fmt: skip
    assert [i.run_id for i in infos] == [run_id, run_id]
    assert len(client.search_runs([reg.configure_mlflow()])) == 1
    after = client.get_run(run_id)
    assert (after.info.status, after.info.end_time) == ("FINISHED", trained.end_time)
    assert after.data.params["policy.objective"] == "a"  # a param keeps its first value ...
    second = client.get_model_version(name, "2")
    assert read_version_facts(second)["params"]["policy.objective"] == "b"  # ... each version its own
    assert version_metrics(client, second)["ks"] == 0.35 and "metric.ks" not in (second.tags or {})
    rule = PromotionRule(metric="ks", guards=[])
    assert reg.promote_if_better(name, "1", rule).promote
    decision = reg.promote_if_better(name, "2", rule)
    assert decision.promote and "ks 0.3500 vs champion 0.3000" in decision.reason


def test_run_names_fit_the_run_name_column() -> None:
    assert mlflow_run_name("20261207T153000Z-lora-3f9a1c") == "lora-3f9a1c"
    assert mlflow_run_name("freeze-dagster-023f7d770d99") == "freeze-023f7d77"  # as Dagster shows it
    assert mlflow_run_name("killed-run") == "killed-run"


def test_rounded_metric_follows_the_metric_table() -> None:
    assert rounded_metric("test_roc_auc", 0.812345678) == 0.8123
    assert rounded_metric("logistic_n", 150.0) == 150.0
    assert rounded_metric("val_bad_rate_approved", 0.0712345) == 0.0712
    # Not in the table: 4 significant digits, whole numbers kept (parameter counts).
    assert rounded_metric("learning_rate", 0.0000512345) == 0.00005123
    assert rounded_metric("train_total_params", 494032768.0) == 494032768.0
    assert rounded_metric("train_wall_seconds", 62.53412) == 62.53
