"""Numbers behind the evaluation charts: lift by score band, calibration bins, ECE, KS curve.

`plots` draws from these and `report` writes them, so a number in a chart and the same number
in `report.json` come from one computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from risk_app.errors import RiskAppError
from risk_app.evaluate.inputs import check_pair


def check_scores(y: Any, p: Any, *, name: str = "p_default") -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) as arrays, checked to be evaluable together (one class is allowed)."""
    return check_pair(
        np.asarray(y).reshape(-1), np.asarray(p, dtype=float).reshape(-1), name, both_classes=False
    )


def require_both_classes(y: np.ndarray, what: str) -> None:
    if y.min() == y.max():
        raise RiskAppError(f"{what} needs both defaults and non-defaults; y_true holds only class {y[0]}")


def lift_table(y: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Default capture by score band, riskiest band first (band 1 = top decile by default).

    Rows are sorted by score descending and cut into `n_bins` bands of (near) equal size; ties
    keep input order (stable sort), so the table is deterministic. Columns: decile, n, defaults,
    default_rate, min_score, max_score, cumulative_capture_pct (share of all defaults caught in
    this band and the riskier ones), lift (band default rate / overall rate), cumulative_lift.
    """
    y_arr, p_arr = check_scores(y, p)
    if n_bins < 1 or n_bins > y_arr.shape[0]:
        raise RiskAppError(
            f"lift_table: n_bins={n_bins} must be between 1 and the row count {y_arr.shape[0]}"
        )
    total_defaults = int(y_arr.sum())
    if total_defaults == 0:
        raise RiskAppError("lift_table: y_true has no defaults, so lift is undefined")
    order = np.argsort(-p_arr, kind="stable")
    band = np.arange(y_arr.shape[0]) * n_bins // y_arr.shape[0] + 1
    frame = pd.DataFrame({"decile": band, "default": y_arr[order], "score": p_arr[order]})
    table = (
        frame.groupby("decile")
        .agg(
            n=("default", "size"),
            defaults=("default", "sum"),
            min_score=("score", "min"),
            max_score=("score", "max"),
        )
        .reset_index()
    )
    overall_rate = total_defaults / y_arr.shape[0]
    table["default_rate"] = table["defaults"] / table["n"]
    cum_defaults = table["defaults"].cumsum()
    cum_n = table["n"].cumsum()
    table["cumulative_capture_pct"] = 100.0 * cum_defaults / total_defaults
    table["lift"] = table["default_rate"] / overall_rate
    table["cumulative_lift"] = (cum_defaults / cum_n) / overall_rate
    columns = ["decile", "n", "defaults", "default_rate", "min_score", "max_score"]
    columns += ["cumulative_capture_pct", "lift", "cumulative_lift"]
    return table[columns]


def calibration_table(y: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins on [0, 1]: n, mean predicted, observed default rate.

    Empty bins are dropped. A score of exactly 1.0 falls in the last bin.
    """
    y_arr, p_arr = check_scores(y, p)
    if n_bins < 1:
        raise RiskAppError(f"calibration: n_bins={n_bins} must be at least 1")
    bins = np.minimum((p_arr * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "y": y_arr, "p": p_arr})
    table = frame.groupby("bin").agg(
        n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    table = table.reset_index()
    table["bin_lower"] = table["bin"] / n_bins
    table["bin_upper"] = (table["bin"] + 1) / n_bins
    return table[["bin", "bin_lower", "bin_upper", "n", "mean_predicted", "observed_rate"]]


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10) -> float:
    """ECE: sum over equal-width bins of (bin share) * |observed default rate - mean score|."""
    table = calibration_table(y, p, n_bins)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


@dataclass(frozen=True)
class KSCurve:
    """Empirical score CDFs of the two classes and where they are furthest apart."""

    scores: np.ndarray
    cdf_good: np.ndarray
    cdf_bad: np.ndarray
    ks: float
    ks_score: float


def ks_curve(y: Any, p: Any) -> KSCurve:
    """Cumulative share of goods and of defaults with score <= s, for every distinct score s."""
    y_arr, p_arr = check_scores(y, p)
    require_both_classes(y_arr, "KS")
    scores = np.unique(p_arr)
    good = np.sort(p_arr[y_arr == 0])
    bad = np.sort(p_arr[y_arr == 1])
    cdf_good = np.searchsorted(good, scores, side="right") / good.size
    cdf_bad = np.searchsorted(bad, scores, side="right") / bad.size
    gap = np.abs(cdf_good - cdf_bad)
    at = int(np.argmax(gap))
    return KSCurve(scores, cdf_good, cdf_bad, float(gap[at]), float(scores[at]))


def score_summary(y: Any, p: Any, n_bins: int = 10) -> dict[str, float]:
    """The few numbers a validator asks for first, computed the same way for every model."""
    y_arr, p_arr = check_scores(y, p)
    require_both_classes(y_arr, "AUC")
    lift = lift_table(y_arr, p_arr, n_bins)
    return {
        "auc": float(roc_auc_score(y_arr, p_arr)),
        "ks": ks_curve(y_arr, p_arr).ks,
        "ece": expected_calibration_error(y_arr, p_arr, n_bins),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "top_decile_capture_pct": float(lift["cumulative_capture_pct"].iloc[0]),
    }
