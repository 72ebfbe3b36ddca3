"""The run stages: one record flows fine-tune → policy → evaluate → package, and every
report agrees with it; a stage re-runs without retraining."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from risk_app import workflow
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.metric_table import rounded_metric
from risk_app.finetune.config import TrainConfig
from risk_app.policy.credit import PolicyConfig
from risk_app.registry.artifact import load_risk_model, read_fit_rows
from risk_app.run import stages
from risk_app.run.evaluate import evaluate_run
from risk_app.run.record import RunRecord


def _run(path: Path, policy: PolicyConfig | None = None, **train: object) -> tuple[RunRecord, object, object]:
    validation = workflow.ingest_and_validate(path)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=96, seed=7, **train)  # type: ignore[arg-type]
    record = workflow.train_run(
        validation.valid, examples, config, policy, source=str(path), baselines=("logistic",), progress=False
    )
    return record, validation, examples


def test_saved_model_reproduces_the_recorded_test_metrics(small_file: Path, tiny_qwen2: Path) -> None:
    record, _, examples = _run(small_file)
    model = load_risk_model(record.need("artifact").path)
    assert model.calibrator.kind == "platt"
    assert model.threshold == pytest.approx(record.need("policy").threshold)
    test = examples[examples["split"] == "test"]
    p = model.predict_texts(test["text"].tolist())
    y = test["default"].to_numpy()
    # The loaded artifact gives the very PDs the run was evaluated on.
    evaluation = record.need("evaluation")
    assert roc_auc_score(y, p) == pytest.approx(evaluation.test.roc_auc, abs=1e-6)
    assert brier_score_loss(y, p) == pytest.approx(evaluation.test.brier, abs=1e-6)
    # Calibrated on validation: the mean PD sits near the validation default rate, not near 0.5.
    val_rate = examples.loc[examples["split"] == "validation", "default"].mean()
    assert abs(float(np.mean(p)) - val_rate) < 0.15
    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card")
    assert "PD calibration (fitted on validation):** platt" in card
    assert record.need("artifact").version in card
    assert "Fields left out of the text:** none" in card and "epochs=1" in card
    # The artifact names the applications it was trained and validated on, and no test row.
    fit = read_fit_rows(record.need("artifact").path)
    assert fit is not None and model.metadata["fit_rows"]["rows"]["train"] == (fit["split"] == "train").sum()
    for split in ("train", "validation"):
        expected = set(examples.loc[examples["split"] == split, "source_application_id"].astype(str))
        assert set(fit.loc[fit["split"] == split, "application_id"]) == expected
    assert not set(fit["application_id"]) & set(test["application_id"].astype(str))


def test_record_is_saved_after_each_stage_and_reloads(small_file: Path, tiny_qwen2: Path) -> None:
    record, _, _ = _run(small_file)
    again = RunRecord.load(record.run_dir)
    assert again == record
    assert again.training.trainable_parameter_names  # what trained comes back in the result
    assert again.training.method_params.r > 0  # the typed Config with its defaults, not {}
    assert again.dataset.name == "german_credit" and again.dataset.rows["test"] > 0


def test_policy_and_evaluation_rerun_without_retraining(small_file: Path, tiny_qwen2: Path) -> None:
    record, validation, examples = _run(small_file)
    weights = Path(record.need("training").trained_dir) / stages.WEIGHTS_FILE
    before = weights.stat().st_mtime_ns
    capped = stages.choose_credit_policy(record, PolicyConfig(max_decline_rate=0.2))
    assert capped.evaluation is None and capped.artifact is None  # later stages are stale now
    assert capped.need("policy").validation.approval_rate >= 0.8 - 1e-9
    capped = evaluate_run(capped, validation.valid, examples, baselines=("logistic",))
    assert capped.need("evaluation").test.threshold == pytest.approx(capped.need("policy").threshold)
    assert weights.stat().st_mtime_ns == before


def test_credit_policy_caps_the_validation_decline_rate(small_file: Path, tiny_qwen2: Path) -> None:
    record, _, examples = _run(small_file, PolicyConfig(max_decline_rate=0.2))
    model = load_risk_model(record.need("artifact").path)
    val = examples[examples["split"] == "validation"]
    declined = model.predict_texts(val["text"].tolist()) >= model.threshold
    assert declined.mean() <= 0.2


def test_a_stage_that_has_not_run_is_named(small_file: Path, tiny_qwen2: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid)
    record = stages.start_run(validation.valid, examples, source=str(small_file))
    with pytest.raises(RiskAppError, match="the training stage has not run yet"):
        stages.choose_credit_policy(record)


def test_unknown_method_fails_before_any_training(small_file: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid)
    with pytest.raises(ConfigError, match="registered"):
        workflow.train_run(validation.valid, examples, TrainConfig(method="magic"))


def test_policy_config_rejects_unknown_keys_and_bad_values() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        PolicyConfig.model_validate({"calibraton": "platt"})
    with pytest.raises(ValidationError):
        PolicyConfig(max_decline_rate=1.5)
    # The policy no longer lives in TrainConfig.
    with pytest.raises(ValidationError):
        TrainConfig.model_validate({"calibration": "platt"})


@pytest.mark.slow  # slow: scheduled first (tests/conftest.py)
def test_a_killed_run_resumes_to_the_same_model(small_file: Path, tiny_qwen2: Path) -> None:
    from risk_app.finetune.events import on_epoch_end

    class Killed(KeyboardInterrupt):
        pass

    def kill_after_first_epoch(record) -> None:  # noqa: ANN001
        if record["epoch"] == 1:
            raise Killed

    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=2, max_length=64, seed=7, patience=0)
    whole = workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False)
    with pytest.raises(Killed), on_epoch_end(kill_after_first_epoch):
        workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False,
                           run_id="killed-run")  # fmt: skip
    assert stages.resumable_run("killed-run") is not None  # what a Dagster retry looks for
    resumed = workflow.resume_run("killed-run", progress=False)
    assert stages.resumable_run("killed-run") is None  # finished: a retry must start a new run
    assert [e.epoch for e in resumed.training.history] == [1, 2]
    assert resumed.training.best_val_auc == pytest.approx(whole.training.best_val_auc, rel=1e-6)
    assert resumed.evaluation.test.roc_auc == pytest.approx(whole.evaluation.test.roc_auc, rel=1e-6)
    # Packaged, not registered: resuming again re-runs nothing (registration is the caller's).
    assert workflow.resume_run("killed-run", progress=False).artifact == resumed.artifact


def test_training_is_tracked_in_mlflow_epoch_by_epoch(small_file: Path, tiny_qwen2: Path) -> None:
    from mlflow import MlflowClient

    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=2, max_length=64, seed=7, patience=0)
    record = workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False)
    client = MlflowClient()
    run = client.get_run(record.training.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.source.name"] == "risk-app"
    history = client.get_metric_history(run.info.run_id, "epoch_val_auc")
    assert [m.step for m in history] == [1, 2]
    # Rounded as the reports round them (issue 21 §5).
    expected = [rounded_metric("val_auc", e.val_auc) for e in record.training.history]
    assert [m.value for m in history] == expected
    assert run.data.params["train.epochs"] == "2"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
