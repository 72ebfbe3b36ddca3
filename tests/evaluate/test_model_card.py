"""The model card states the recorded facts, metrics beside baselines, use and limitations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk_app.errors import RiskAppError
from risk_app.evaluate.fairness import fairness_report
from risk_app.evaluate.metrics import credit_metrics
from risk_app.evaluate.model_card import render_model_card, write_model_card
from risk_app.paths import DEFAULT_DATASET

METADATA = {
    "name": "credit-risk-llm",
    "version": "7",
    "config": {
        "method": "lora",
        "method_params": {"r": 8, "alpha": 16},
        "base_model": "tiny-qwen2",
        "epochs": 3,
        "learning_rate": 0.0002,
    },
    "code_version": "abc1234",
    "data": {
        "source": "risk_app/datasets/germancredit.csv",
        "rows": 1000,
        "data_hash": "sha256:deadbeef",
        "contract_version": "1.0.0",
        "split_sizes": {"train": 700, "validation": 150, "test": 150},
    },
    "threshold": 0.37,
    "threshold_objective": "f1 on validation",
}


@pytest.fixture(scope="module")
def metrics() -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1, 1.5, 300)))
    y = (rng.random(300) < p).astype(int)
    noisy = np.clip(p + rng.normal(0, 0.25, 300), 0, 1)
    return credit_metrics(y, p, 0.37), {"logistic": credit_metrics(y, noisy, 0.37)}


def test_card_has_details_data_metrics_use_and_limitations(metrics) -> None:
    model_metrics, baselines = metrics
    card = render_model_card(METADATA, model_metrics, baselines, None, ["Scored only on CPU."])
    for heading in (
        "## Model details",
        "## Data",
        "## Performance",
        "## Decision threshold",
        "## Intended use",
        "## Limitations",
        "## Fairness",
    ):
        assert heading in card
    assert "lora" in card and '"r": 8' in card and "tiny-qwen2" in card and "abc1234" in card
    assert "sha256:deadbeef" in card and "1.0.0" in card and "train 700, validation 150, test 150" in card
    assert f"{model_metrics['roc_auc']:.4f}" in card
    assert f"{baselines['logistic']['roc_auc']:.4f}" in card
    assert "| baseline: logistic |" in card
    assert "0.37" in card and "f1 on validation" in card
    assert "not to be the sole basis for an adverse action" in card
    assert "1970s" in card and "Protected attributes" in card and "serialization" in card
    assert "Scored only on CPU." in card
    assert "quantum" not in card.lower()
    assert "No fairness assessment" in card
    tn, fp = model_metrics["confusion_matrix"][0]
    assert f"| good | {tn} | {fp} |" in card


def test_missing_metadata_is_marked_not_invented(metrics) -> None:
    card = render_model_card({}, metrics[0], {})
    assert "**Base model:** not recorded" in card
    assert "**Data hash:** not recorded" in card


def test_quantum_method_adds_simulation_limitation(metrics) -> None:
    card = render_model_card({"method": "quantum_head"}, metrics[0], {})
    assert "simulator" in card and "not on quantum hardware" in card


def test_fairness_section_and_atomic_write(metrics, tmp_path) -> None:
    df = pd.read_csv(DEFAULT_DATASET).head(200)
    p = np.where(df["foreign_worker"] == "no", 0.9, np.where(df["duration_in_month"] > 30, 0.8, 0.2))
    fairness = fairness_report(df, p, 0.5)
    path = write_model_card(tmp_path / "model", METADATA, metrics[0], metrics[1], fairness.to_dict())
    assert path.name == "MODEL_CARD.md"
    card = path.read_text()
    assert "| foreign_worker | no |" in card
    assert "foreign_worker=no: adverse impact ratio" in card
    assert [f.name for f in path.parent.iterdir()] == ["MODEL_CARD.md"]
    # A FairnessReport object renders the same as its dict.
    assert render_model_card(METADATA, metrics[0], metrics[1], fairness) == card


def test_bad_metrics_rejected() -> None:
    with pytest.raises(RiskAppError, match="metrics hold none"):
        render_model_card(METADATA, {"loss": 0.3}, {})
    with pytest.raises(RiskAppError, match="fairness must be"):
        render_model_card(METADATA, {"roc_auc": 0.7}, {}, fairness=["not", "a", "report"])


def test_registry_artifact_layout_renders(metrics) -> None:
    """The flat layout risk_model.json / the training workflow use (method_config, train_config,
    rows as split sizes, training summary)."""
    metadata = {
        "name": "credit_risk_model (lora)",
        "method": "lora",
        "method_config": {"r": 4},
        "train_config": {"base_model": "tiny-qwen2", "epochs": 2, "seed": 7},
        "threshold": 0.42,
        "rows": {"train": 700, "validation": 150, "test": 150},
        "augmented_rows": 350,
        "training": {"trainable_params": 5000, "total_params": 100000},
        "data_source": "/x/germancredit.csv",
    }
    card = render_model_card(metadata, metrics[0], {})
    assert "**Rows (valid, used):** 1000" in card
    assert "train 700, validation 150, test 150" in card
    assert '`{"r": 4}`' in card and "**Base model:** tiny-qwen2" in card
    assert "epochs=2" in card and "seed=7" in card
    assert "5,000 of 100,000 (5.00%)" in card
    assert "350 (text augmentation)" in card
    assert "sorted by category rather than aligned" in card  # vendored-data defect noted
