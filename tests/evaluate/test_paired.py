"""Paired comparison of two models on the same rows: DeLong for the AUC, a paired bootstrap else."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from risk_app.evaluate.paired import paired_comparison

RNG = np.random.default_rng(1)
Y = RNG.integers(0, 2, 400)
BASE = RNG.normal(size=400)
STRONG = 1.0 / (1.0 + np.exp(-(1.2 * Y + BASE)))
WEAK = 1.0 / (1.0 + np.exp(-(0.6 * Y + BASE + RNG.normal(scale=0.5, size=400))))


def test_delong_gives_sklearns_aucs_and_a_standard_error_a_bootstrap_agrees_with() -> None:
    c = paired_comparison(Y, STRONG, WEAK, "roc_auc")
    assert c.method == "DeLong" and (c.rows, c.defaults) == (400, int(Y.sum()))
    assert c.challenger == pytest.approx(roc_auc_score(Y, STRONG), abs=1e-12)
    assert c.champion == pytest.approx(roc_auc_score(Y, WEAK), abs=1e-12)
    assert c.improvement == pytest.approx(c.challenger - c.champion, abs=1e-12)
    rng = np.random.default_rng(2)
    gains = []
    for _ in range(1500):
        i = rng.integers(0, len(Y), len(Y))
        gains.append(roc_auc_score(Y[i], STRONG[i]) - roc_auc_score(Y[i], WEAK[i]))
    delong_se = (c.ci_high - c.ci_low) / (2 * 1.959964)
    assert delong_se == pytest.approx(float(np.std(gains)), rel=0.15)
    assert c.ci_low > 0 and c.p_value < 1e-4


def test_the_p_value_is_one_sided_and_swapping_the_models_turns_it_round() -> None:
    better, worse = paired_comparison(Y, STRONG, WEAK), paired_comparison(Y, WEAK, STRONG)
    assert worse.improvement == pytest.approx(-better.improvement)
    assert worse.p_value == pytest.approx(1.0 - better.p_value) and worse.p_value > 0.99
    same = paired_comparison(Y, STRONG, STRONG)
    assert same.improvement == 0.0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_gini_is_twice_the_auc_difference_with_the_same_p_value() -> None:
    auc, gini = paired_comparison(Y, STRONG, WEAK, "roc_auc"), paired_comparison(Y, STRONG, WEAK, "gini")
    assert gini.challenger == pytest.approx(2 * auc.challenger - 1)
    assert gini.improvement == pytest.approx(2 * auc.improvement)
    assert gini.p_value == pytest.approx(auc.p_value)


def test_lower_is_better_metrics_are_bootstrapped_in_their_own_direction() -> None:
    c = paired_comparison(Y, STRONG, WEAK, "brier", resamples=300)
    assert c.method == "paired bootstrap (300)"
    assert c.challenger == pytest.approx(brier_score_loss(Y, STRONG))
    # Lower Brier is better: the improvement is the champion's Brier minus the challenger's.
    assert c.improvement == pytest.approx(brier_score_loss(Y, WEAK) - brier_score_loss(Y, STRONG))
    assert c.improvement > 0 and c.ci_low <= c.improvement <= c.ci_high
    assert paired_comparison(Y, STRONG, WEAK, "brier", resamples=300) == c  # seeded
    with pytest.raises(ValueError, match="descriptive"):
        paired_comparison(Y, STRONG, WEAK, "approval_rate")
