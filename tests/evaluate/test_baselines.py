"""Classical baselines on the vendored German credit data: quality, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk_app.data.load import load_applications
from risk_app.data.split import assign_split
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError
from risk_app.evaluate.baselines import (
    classical_feature_frame,
    default_target,
    fit_baseline,
    predict_default,
    score_baselines,
)
from risk_app.evaluate.metrics import choose_threshold, credit_metrics
from risk_app.paths import DEFAULT_DATASET


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    valid = validate_applications(load_applications(DEFAULT_DATASET), str(DEFAULT_DATASET)).valid
    split = assign_split(valid, seed=42)
    return {name: valid[split == name].reset_index(drop=True) for name in ("train", "validation", "test")}


def test_target_mapping_bad_is_default() -> None:
    raw = pd.read_csv(DEFAULT_DATASET)
    y = default_target(raw)
    assert y.tolist() == (raw["creditability"] == "bad").astype(int).tolist()
    assert y.mean() == pytest.approx(0.3)


def test_logistic_reaches_auc_above_070(splits: dict[str, pd.DataFrame]) -> None:
    scores = score_baselines(splits["train"], splits["validation"], splits["test"], ("logistic",))
    p_val, p_test = scores["logistic"]
    threshold = choose_threshold(default_target(splits["validation"]), p_val)  # chosen on validation
    m = credit_metrics(default_target(splits["test"]), p_test, threshold)
    assert m["roc_auc"] > 0.70
    assert m["n"] == len(splits["test"])
    # The scores are those of the baseline fitted on train alone.
    model = fit_baseline("logistic", splits["train"])
    np.testing.assert_allclose(p_val, predict_default(model, splits["validation"]))


def test_lightgbm_runs_and_is_deterministic(splits: dict[str, pd.DataFrame]) -> None:
    a = predict_default(fit_baseline("lightgbm", splits["train"], seed=7), splits["test"])
    b = predict_default(fit_baseline("lightgbm", splits["train"], seed=7), splits["test"])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (len(splits["test"]),) and ((a >= 0) & (a <= 1)).all()
    scores = score_baselines(splits["train"], splits["validation"], splits["test"], ("lightgbm",))
    _, p_test = scores["lightgbm"]
    assert credit_metrics(default_target(splits["test"]), p_test, 0.5)["roc_auc"] > 0.65


def test_unknown_category_at_scoring_is_tolerated(splits: dict[str, pd.DataFrame]) -> None:
    model = fit_baseline("logistic", splits["train"])
    odd = splits["test"].head(3).copy()
    odd["purpose"] = "spaceship"
    p = predict_default(model, odd)
    assert p.shape == (3,) and np.isfinite(p).all()


def test_bad_inputs_rejected(splits: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ConfigError, match="unknown baseline"):
        fit_baseline("xgboost", splits["train"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \[.purpose.\] of data set german_credit"):
        classical_feature_frame(splits["train"].drop(columns=["purpose"]))
    with pytest.raises(ConfigError, match="neither `default`"):
        default_target(splits["train"].drop(columns=["default", "creditability"]))
    with pytest.raises(ConfigError, match="single class"):
        fit_baseline("logistic", splits["train"][splits["train"]["default"] == 0])
    with pytest.raises(ConfigError, match="unknown baseline"):
        score_baselines(splits["train"], splits["validation"], splits["test"], names=("svm",))  # type: ignore[arg-type]
