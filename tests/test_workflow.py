"""The training workflow: calibrated PDs, threshold and saved model agree with each other."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from risk_app import paths, workflow
from risk_app.finetune.config import TrainConfig
from risk_app.registry.artifact import load_risk_model


@pytest.fixture
def small_file(risk_app_home: Path) -> Path:
    path = risk_app_home / "apps.csv"
    pd.read_csv(paths.DEFAULT_DATASET).sample(240, random_state=1).to_csv(path, index=False)
    return path


def test_saved_model_reproduces_the_calibrated_test_metrics(small_file: Path, tiny_qwen2: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=96, calibration="platt", seed=7)
    outcome = workflow.train_and_evaluate(validation.valid, examples, config, baselines=("logistic",))

    model = load_risk_model(outcome.artifact_dir)
    assert model.calibrator.kind == "platt"
    assert model.threshold == pytest.approx(outcome.threshold)
    test = examples[examples["split"] == "test"]
    p = model.predict_texts(test["text"].tolist())
    y = test["default"].to_numpy()
    # The loaded artifact gives the very PDs the run was evaluated on.
    assert roc_auc_score(y, p) == pytest.approx(outcome.test_metrics["roc_auc"], abs=1e-6)
    assert brier_score_loss(y, p) == pytest.approx(outcome.test_metrics["brier"], abs=1e-6)
    # Calibrated on validation: the mean PD sits near the validation default rate, not near 0.5.
    val_rate = examples.loc[examples["split"] == "validation", "default"].mean()
    assert abs(float(np.mean(p)) - val_rate) < 0.15
    card = (outcome.artifact_dir / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card")
    assert "PD calibration (fitted on validation):** platt" in card
    assert "Fields left out of the text:** none" in card and "epochs=1" in card


def test_unknown_method_fails_before_any_training(small_file: Path) -> None:
    from risk_app.errors import ConfigError

    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid)
    with pytest.raises(ConfigError, match="registered"):
        workflow.train_and_evaluate(validation.valid, examples, TrainConfig(method="magic"))


def test_protected_attributes_can_be_left_out_of_training_and_scoring(
    small_file: Path, tiny_qwen2: Path
) -> None:
    from data_contracts.loan_application import PROTECTED_COLUMNS
    from risk_app.data.serialize import FIELD_LABELS

    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, exclude_fields=PROTECTED_COLUMNS)
    labels = [FIELD_LABELS[c] for c in PROTECTED_COLUMNS]
    assert not any(label + ":" in text for text in examples["text"] for label in labels)
    outcome = workflow.train_and_evaluate(
        validation.valid, examples, TrainConfig(epochs=1, max_length=96), baselines=("logistic",),
        exclude_fields=PROTECTED_COLUMNS,
    )  # fmt: skip
    model = load_risk_model(outcome.artifact_dir)
    assert set(model.exclude_fields) == set(PROTECTED_COLUMNS)
    card = (outcome.artifact_dir / "MODEL_CARD.md").read_text()
    assert all(f"`{name}`" in card for name in PROTECTED_COLUMNS)
    scored_texts = model.serialize(validation.valid.head(5))
    assert not any(label + ":" in text for text in scored_texts for label in labels)


def test_credit_policy_caps_the_validation_decline_rate(small_file: Path, tiny_qwen2: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=96, seed=7, max_decline_rate=0.2)
    outcome = workflow.train_and_evaluate(validation.valid, examples, config, baselines=("logistic",))
    model = load_risk_model(outcome.artifact_dir)
    val = examples[examples["split"] == "validation"]
    declined = model.predict_texts(val["text"].tolist()) >= model.threshold
    assert declined.mean() <= 0.2


def test_model_card_warns_about_a_detached_sorted_column(risk_app_home: Path, tiny_qwen2: Path) -> None:
    path = risk_app_home / "in_file_order.csv"
    pd.read_csv(paths.DEFAULT_DATASET).head(240).to_csv(path, index=False)  # keeps the sorted blocks
    validation = workflow.ingest_and_validate(path)
    examples = workflow.prepare_examples(validation.valid)
    outcome = workflow.train_and_evaluate(
        validation.valid, examples, TrainConfig(epochs=1, max_length=64), baselines=("logistic",)
    )
    card = (outcome.artifact_dir / "MODEL_CARD.md").read_text()
    assert "`personal_status_and_sex` is sorted in contiguous blocks" in card
