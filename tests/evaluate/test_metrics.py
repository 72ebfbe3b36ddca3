"""credit_metrics / choose_threshold / metrics_table checked against scikit-learn and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from risk_app.errors import RiskAppError
from risk_app.evaluate.metrics import MetricInputError, choose_threshold, credit_metrics, metrics_table


def _random_case(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.3, size=n)
    # Informative but noisy scores, squashed into (0, 1).
    p = 1 / (1 + np.exp(-(1.2 * y + rng.normal(0, 1, size=n) - 0.8)))
    return y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.71])
def test_metrics_match_sklearn(seed: int, threshold: float) -> None:
    y, p = _random_case(seed)
    m = credit_metrics(y, p, threshold)
    pred = (p >= threshold).astype(int)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["gini"] == pytest.approx(2 * roc_auc_score(y, p) - 1)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
    assert m["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
    assert m["recall"] == pytest.approx(recall_score(y, pred, zero_division=0))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    assert tn + fp + fn + tp == m["n"] == len(y)
    assert tp + fn == int(y.sum())
    assert m["default_rate"] == pytest.approx(y.mean())
    assert m["threshold"] == threshold


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_ks_equals_two_sample_ks(seed: int) -> None:
    y, p = _random_case(seed)
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert credit_metrics(y, p, 0.5)["ks"] == pytest.approx(expected)


def test_perfect_and_inverted_scores() -> None:
    y = np.array([0, 0, 1, 1])
    good = credit_metrics(y, [0.1, 0.2, 0.8, 0.9], 0.5)
    assert good["roc_auc"] == 1.0 and good["ks"] == 1.0 and good["f1"] == 1.0
    bad = credit_metrics(y, [0.9, 0.8, 0.2, 0.1], 0.5)
    assert bad["roc_auc"] == 0.0 and bad["gini"] == -1.0 and bad["f1"] == 0.0


def test_threshold_f1_optimal_on_constructed_case() -> None:
    # Thresholds and their F1 (predict default when p >= t):
    # t=0.9 -> tp1 fp0 fn2: F1 .50 ; t=0.7 -> tp2 fp1 fn1: .667 ; t=0.6 -> tp3 fp1: .857
    # t=0.4 -> tp3 fp2: .75 ; t=0.3 -> .667 ; t=0.1 -> .60
    y = np.array([1, 0, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.7, 0.65, 0.6, 0.4, 0.3, 0.1])
    t = choose_threshold(y, p, "f1")
    assert t == pytest.approx(0.6)
    best = credit_metrics(y, p, t)["f1"]
    # Exhaustive check: no candidate threshold beats the chosen one.
    assert all(credit_metrics(y, p, c)["f1"] <= best + 1e-12 for c in np.unique(p))


def test_threshold_youden_maximises_tpr_minus_fpr() -> None:
    y, p = _random_case(5, n=200)
    t = choose_threshold(y, p, "youden")
    youden = [(p >= c)[y == 1].mean() - (p >= c)[y == 0].mean() for c in np.unique(p)]
    j = (p >= t)[y == 1].mean() - (p >= t)[y == 0].mean()
    assert j == pytest.approx(max(youden))
    # Youden's J at its optimum is the KS statistic.
    assert j == pytest.approx(credit_metrics(y, p, t)["ks"])


def test_random_f1_threshold_beats_grid() -> None:
    y, p = _random_case(11)
    t = choose_threshold(y, p)
    best = credit_metrics(y, p, t)["f1"]
    for c in np.linspace(0.02, 0.98, 25):
        assert credit_metrics(y, p, c)["f1"] <= best + 1e-12


@pytest.mark.parametrize(
    ("y", "p", "threshold", "message"),
    [
        ([0, 1, 1], [0.1, 0.2], 0.5, "lengths must match"),
        ([1, 1, 1], [0.1, 0.2, 0.3], 0.5, "needs both classes"),
        ([0, 1, 2], [0.1, 0.2, 0.3], 0.5, "labels must be 0/1"),
        ([0, 1, 1], [0.1, 1.2, 0.3], 0.5, "must lie in [0, 1]"),
        ([0, 1, 1], [0.1, -0.1, 0.3], 0.5, "must lie in [0, 1]"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], 0.5, "NaN"),
        ([0, 1, float("nan")], [0.1, 0.2, 0.3], 0.5, "NaN"),
        ([], [], 0.5, "empty"),
        ([0, 1], [0.1, 0.9], 1.5, "threshold"),
        (["good", "bad"], [0.1, 0.9], 0.5, "labels must be 0/1"),
    ],
)
def test_bad_inputs_rejected(y: list, p: list, threshold: float, message: str) -> None:
    with pytest.raises(MetricInputError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        credit_metrics(y, p, threshold)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RiskAppError)


def test_choose_threshold_rejects_bad_input_and_objective() -> None:
    with pytest.raises(MetricInputError, match="needs both classes"):
        choose_threshold([0, 0], [0.1, 0.2])
    with pytest.raises(MetricInputError, match="unknown objective"):
        choose_threshold([0, 1], [0.1, 0.2], objective="accuracy")  # type: ignore[arg-type]


def test_metrics_table_side_by_side() -> None:
    y, p = _random_case(0)
    rows = {"logistic": credit_metrics(y, p, 0.5), "lightgbm": credit_metrics(y, p**2, 0.3)}
    table = metrics_table(rows)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| model | roc_auc | ks | gini | brier |")
    assert "confusion_matrix" not in table
    assert len(lines) == 4
    assert lines[2].startswith("| logistic | ") and f"{rows['logistic']['roc_auc']:.4f}" in lines[2]
    assert lines[3].startswith("| lightgbm | ") and "0.3000" in lines[3]
    with pytest.raises(MetricInputError):
        metrics_table({})


def test_decision_threshold_caps_the_decline_rate_on_validation() -> None:
    from risk_app.evaluate.metrics import choose_threshold, decline_cap_threshold
    from risk_app.policy.credit import PolicyConfig, choose_cutoff

    def decision_threshold(y: np.ndarray, p: np.ndarray, max_decline_rate: float | None = None) -> float:
        config = PolicyConfig(calibration="none", objective="f1", max_decline_rate=max_decline_rate)
        return choose_cutoff(y, p, config, (5.0, 1.0))

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.35 + 0.2 * y + rng.normal(0, 0.15, 400), 0, 1)
    free = choose_threshold(y, p)
    assert decision_threshold(y, p) == free
    for cap in (0.1, 0.25):
        t = decision_threshold(y, p, max_decline_rate=cap)
        assert (p >= t).mean() <= cap
        assert (p >= t).mean() > cap - 0.01  # as many declines as the cap allows, no fewer
        assert t >= free
    loose = decision_threshold(y, p, max_decline_rate=1.0)
    assert loose == free  # a cap above the optimum's decline rate changes nothing
    with pytest.raises(MetricInputError):
        decline_cap_threshold(p, max_decline_rate=0.0)
