"""Two models scored on the same rows: how much better is one, and how sure can we be?

Champion/challenger promotion compares the challenger with the champion re-scored on the
challenger's test rows (`risk_app.run.evaluate`), so the two sets of scores are *paired*: each
row has a label and one score from each model. `paired_comparison` measures the challenger's
improvement on one metric of the metric table (in the metric's direction: positive is better)
with a 95 % interval and a one-sided p-value for "the challenger is not better":

* `roc_auc` and `gini`: DeLong's test for two correlated AUCs (DeLong, DeLong & Clarke-Pearson
  1988, in the midrank form of Sun & Xu 2014): exact variance of the paired difference,
  no resampling, deterministic;
* every other comparable metric: a paired bootstrap (the same resampled rows for both
  models; seeded), each model at its own cut-off.

    from risk_app.evaluate.paired import paired_comparison
    c = paired_comparison(y, p_challenger, p_champion, "roc_auc")
    c.improvement, c.ci_low, c.ci_high, c.p_value, c.method
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm, rankdata

from risk_app.evaluate.inputs import check_pair
from risk_app.evaluate.metric_table import metric_spec

# Metrics that are a fixed multiple of the AUC get DeLong's exact test (gini = 2·AUC − 1).
_AUC_SCALE = {"roc_auc": 1.0, "gini": 2.0}
DEFAULT_RESAMPLES = 1000
_Z95 = float(norm.ppf(0.975))


class PairedComparison(BaseModel):
    """The challenger against the champion on the same rows, on one metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(description="Metric of the metric table that was compared.")
    method: str = Field(description="How the uncertainty was measured: 'DeLong' or 'paired bootstrap (N)'.")
    challenger: float = Field(description="The challenger's value on the rows.")
    champion: float = Field(description="The champion's value on the same rows.")
    improvement: float = Field(description="How much better the challenger is (metric's direction).")
    ci_low: float = Field(description="Lower end of the 95 % interval of the improvement.")
    ci_high: float = Field(description="Upper end of the 95 % interval of the improvement.")
    p_value: float = Field(description="One-sided p-value of 'the challenger is not better'.")
    rows: int = Field(description="Rows both models scored.")
    defaults: int = Field(description="Defaults among them.")


def _delong_components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components (one per default, one per good loan), by midranks."""
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    together = rankdata(np.concatenate([pos, neg]))
    auc = (together[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v_pos = (together[:m] - rankdata(pos)) / n  # share of good loans each default outranks
    v_neg = 1.0 - (together[m:] - rankdata(neg)) / m  # share of defaults ranked above each good loan
    return float(auc), v_pos, v_neg


def _delong(y: np.ndarray, mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float, float, float]:
    """(my AUC, their AUC, AUC difference, its standard error) for paired scores."""
    auc_a, pos_a, neg_a = _delong_components(y, mine)
    auc_b, pos_b, neg_b = _delong_components(y, theirs)
    m, n = len(pos_a), len(neg_a)
    s_pos = np.cov(np.vstack([pos_a, pos_b])) if m > 1 else np.zeros((2, 2))
    s_neg = np.cov(np.vstack([neg_a, neg_b])) if n > 1 else np.zeros((2, 2))
    s = s_pos / m + s_neg / n
    variance = float(s[0, 0] + s[1, 1] - 2.0 * s[0, 1])
    return auc_a, auc_b, auc_a - auc_b, math.sqrt(max(variance, 0.0))


def _one_sided_p(gain: float, se: float) -> float:
    if se <= 0.0:
        return 0.0 if gain > 0 else 1.0
    return float(norm.sf(gain / se))


def paired_comparison(
    y: np.ndarray | list[int],
    p_challenger: np.ndarray | list[float],
    p_champion: np.ndarray | list[float],
    metric: str = "roc_auc",
    *,
    threshold_challenger: float = 0.5,
    threshold_champion: float = 0.5,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """The challenger's improvement over the champion on `metric`, on the same rows (see module)."""
    labels, mine = check_pair(y, p_challenger, "paired_comparison (challenger)")
    _, theirs = check_pair(labels, p_champion, "paired_comparison (champion)")
    spec = metric_spec(metric)
    if spec.higher_is_better is None:
        raise ValueError(f"metric {metric!r} is descriptive and cannot be compared")
    higher = bool(spec.higher_is_better)
    rows, defaults = len(labels), int(labels.sum())
    if metric in _AUC_SCALE:
        scale = _AUC_SCALE[metric]
        auc_a, auc_b, diff, se = _delong(labels, mine, theirs)
        gain, se = scale * diff, scale * se
        values = (scale * auc_a - (scale - 1.0), scale * auc_b - (scale - 1.0))
        return PairedComparison(
            metric=metric, method="DeLong", challenger=values[0], champion=values[1], improvement=gain,
            ci_low=gain - _Z95 * se, ci_high=gain + _Z95 * se, p_value=_one_sided_p(gain, se),
            rows=rows, defaults=defaults,
        )  # fmt: skip
    d_mine = (mine >= threshold_challenger).astype(int)
    d_theirs = (theirs >= threshold_champion).astype(int)

    def value(idx: np.ndarray, p: np.ndarray, d: np.ndarray) -> float:
        return float(spec.compute(labels[idx], p[idx], d[idx]))

    everything = np.arange(rows)
    a, b = value(everything, mine, d_mine), value(everything, theirs, d_theirs)
    gain = a - b if higher else b - a
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        idx = rng.integers(0, rows, size=rows)
        if labels[idx].min() == labels[idx].max():
            continue  # a resample with one class has no ranking metric; draw on
        ga, gb = value(idx, mine, d_mine), value(idx, theirs, d_theirs)
        gains.append(ga - gb if higher else gb - ga)
    spread = np.asarray(gains, dtype=float)
    low, high = np.percentile(spread, [2.5, 97.5]) if len(spread) else (gain, gain)
    p_value = (float(np.sum(spread <= 0.0)) + 1.0) / (len(spread) + 1.0)
    return PairedComparison(
        metric=metric, method=f"paired bootstrap ({len(spread)})", challenger=a, champion=b, improvement=gain,
        ci_low=float(low), ci_high=float(high), p_value=p_value, rows=rows, defaults=defaults,
    )  # fmt: skip
