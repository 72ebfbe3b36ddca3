"""PSI on numeric and categorical data, per-feature drift tables and thresholds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from risk_app.errors import RiskAppError
from risk_app.evaluate.drift import DriftThresholds, classify, feature_psi, psi, score_psi
from risk_app.paths import DEFAULT_DATASET


def test_identical_distributions_have_zero_psi() -> None:
    x = np.random.default_rng(0).normal(size=2000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    cats = np.array(["a", "b", "b", "c"] * 50, dtype=object)
    assert psi(cats, cats, kind="categorical") == pytest.approx(0.0, abs=1e-12)


def test_same_distribution_samples_are_small_and_shift_is_large() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=5000)
    assert psi(train, rng.normal(size=5000)) < 0.02
    shifted = psi(train, rng.normal(loc=1.0, size=5000))
    assert shifted > 0.25
    assert classify(shifted) == "fail"


def test_categorical_psi_by_hand_and_unseen_category() -> None:
    expected = ["a"] * 50 + ["b"] * 50
    actual = ["a"] * 25 + ["b"] * 75
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(expected, actual, kind="categorical") == pytest.approx(by_hand)

    with_new = ["a"] * 45 + ["b"] * 45 + ["z"] * 10
    value = psi(expected, with_new, kind="categorical")
    # The new category's term uses the epsilon share for training: finite, and dominant.
    new_term = (0.10 - 1e-4) * math.log(0.10 / 1e-4)
    assert math.isfinite(value)
    assert value == pytest.approx(new_term + 2 * (0.45 - 0.5) * math.log(0.45 / 0.5))


def test_numeric_psi_missing_values_count_as_drift() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(size=3000)
    batch = rng.normal(size=3000)
    batch[:600] = np.nan
    assert psi(train, batch) > 0.25
    # Nullable integer columns (pd.NA) are numbers with missing values, not labels.
    ints = pd.Series(np.arange(1000) % 7, dtype="Int64")
    with_na = ints.copy()
    with_na[:10] = pd.NA
    assert 0 < psi(ints.to_numpy(), with_na.to_numpy()) < 0.1


def test_discrete_numeric_feature_with_tied_quantiles() -> None:
    train = np.array([1, 2, 2, 3, 4, 4, 4, 4] * 100)
    assert psi(train, train.copy()) == pytest.approx(0.0, abs=1e-12)
    assert psi(train, np.array([1, 1, 1, 1, 2, 3, 4, 4] * 100)) > 0.25


def test_psi_bad_input() -> None:
    with pytest.raises(RiskAppError, match="empty"):
        psi([], [1.0, 2.0])
    with pytest.raises(RiskAppError, match="kind='categorical'"):
        psi(["a", "b"], ["a", "b"], kind="numeric")
    with pytest.raises(RiskAppError, match="kind="):
        psi([1, 2], [1, 2], kind="ordinal")  # type: ignore[arg-type]


def test_thresholds_validation_and_classify_boundaries() -> None:
    default = DriftThresholds()
    assert (default.warn, default.fail) == (0.1, 0.25)
    assert [classify(v) for v in (0.0, 0.099, 0.1, 0.2, 0.25, 3.0)] == [
        "ok",
        "ok",
        "warn",
        "warn",
        "fail",
        "fail",
    ]
    custom = DriftThresholds(warn=0.05, fail=0.1)
    assert classify(0.07, custom) == "warn"
    with pytest.raises(ValidationError, match="warn"):
        DriftThresholds(warn=0.3, fail=0.2)
    with pytest.raises(ValidationError, match="warn"):
        DriftThresholds(warn=0.2, fail=0.2)
    with pytest.raises(ValidationError, match="extra"):
        DriftThresholds(warn=0.1, fail=0.2, critical=0.5)  # type: ignore[call-arg]
    with pytest.raises(RiskAppError, match="PSI value"):
        classify(float("nan"))


def test_feature_psi_on_german_credit() -> None:
    df = pd.read_csv(DEFAULT_DATASET)
    train, batch = df.iloc[:600], df.iloc[600:].copy()
    stable = feature_psi(train, batch, ["duration_in_month", "credit_amount", "purpose", "housing"])
    assert list(stable.columns) == ["column", "kind", "psi", "status"]
    assert set(stable["status"]) == {"ok"}
    kinds = dict(zip(stable["column"], stable["kind"], strict=True))
    assert kinds == {
        "duration_in_month": "numeric",
        "credit_amount": "numeric",
        "purpose": "categorical",
        "housing": "categorical",
    }

    batch["credit_amount"] = batch["credit_amount"] * 3
    batch.loc[batch.index[:150], "purpose"] = "crypto"
    drifted = feature_psi(train, batch, ["duration_in_month", "credit_amount", "purpose", "housing"])
    status = dict(zip(drifted["column"], drifted["status"], strict=True))
    assert status["credit_amount"] == "fail" and status["purpose"] == "fail"
    assert status["duration_in_month"] == "ok"
    assert drifted["psi"].is_monotonic_decreasing  # worst first

    # Default columns: every shared column.
    assert len(feature_psi(train, df.iloc[600:])) == df.shape[1]


def test_feature_psi_bad_columns_and_score_psi() -> None:
    df = pd.read_csv(DEFAULT_DATASET).head(200)
    with pytest.raises(RiskAppError, match="'age_in_years' is missing from the batch"):
        feature_psi(df, df.drop(columns="age_in_years"), ["age_in_years"])
    with pytest.raises(RiskAppError, match="numeric in training"):
        feature_psi(df, df.assign(age_in_years="old"), ["age_in_years"])
    rng = np.random.default_rng(3)
    train_scores = rng.beta(2, 5, 2000)
    assert score_psi(train_scores, rng.beta(2, 5, 2000)) < 0.05
    assert score_psi(train_scores, rng.beta(5, 2, 2000)) > 0.25


def test_drift_features_come_from_the_spec() -> None:
    from data_contracts.spec import load_spec
    from risk_app.evaluate.drift import drift_features

    columns, categorical = drift_features("german_credit")
    assert columns == list(load_spec("german_credit").feature_columns)
    assert "purpose" in categorical and "credit_amount" not in categorical
    # Category codes that look like numbers (EDUCATION 1-6) are still categories.
    columns, categorical = drift_features("uci_credit_card")
    assert columns == ["EDUCATION", "MARRIAGE", "LIMIT_BAL", "BILL_AMT1"]
    assert categorical == ["EDUCATION", "MARRIAGE"]
    df = pd.read_csv(load_spec("uci_credit_card").data_path)
    table = feature_psi(df.iloc[:3000], df.iloc[3000:], columns, categorical_columns=categorical)
    assert dict(zip(table["column"], table["kind"], strict=True))["EDUCATION"] == "categorical"
    assert set(table["status"]) == {"ok"}
