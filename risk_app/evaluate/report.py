"""Evaluation report: lift table, calibration, KS curve and the files a validator reads.

`build_evaluation_report` turns test-set labels and scores (plus optional baseline scores on the
same rows) into a folder of PNG charts, `lift_table.csv` and `report.json`. Each file is written
atomically and `report.json` last, so its presence means the folder is complete.

    from risk_app.evaluate.report import build_evaluation_report
    report = build_evaluation_report(y_test, p_test, threshold=0.4, out_dir="var/outputs/eval",
                                     baselines={"logistic": p_logistic})
    print(report.ece, report.top_decile_lift, report.paths["roc"])

The numeric helpers (`lift_table`, `calibration_table`, `expected_calibration_error`,
`ks_curve`) live here, and `plots` draws from them, so a number in a chart and the same number
in `report.json` come from one computation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from risk_app.atomic import atomic_write_json, atomic_write_text
from risk_app.errors import RiskAppError


def check_scores(y: Any, p: Any, *, name: str = "p_default") -> tuple[np.ndarray, np.ndarray]:
    """Return (y, p) as arrays after checking they can be evaluated together.

    Labels must be 0/1 (1 = default) and scores probabilities in [0, 1], same length, no NaN;
    anything else is a `RiskAppError` naming the first offending position.
    """
    y_arr = np.asarray(y).reshape(-1)
    p_arr = np.asarray(p, dtype=float).reshape(-1)
    if y_arr.shape[0] != p_arr.shape[0]:
        raise RiskAppError(f"{name}: {p_arr.shape[0]} scores for {y_arr.shape[0]} labels (lengths differ)")
    if y_arr.shape[0] == 0:
        raise RiskAppError(f"{name}: no rows to evaluate")
    bad_p = np.flatnonzero(~np.isfinite(p_arr) | (p_arr < 0.0) | (p_arr > 1.0))
    if bad_p.size:
        i = int(bad_p[0])
        raise RiskAppError(f"{name}: row {i} has score {p_arr[i]!r}, expected a probability in [0, 1]")
    try:
        y_float = y_arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise RiskAppError(f"y_true: labels must be 0/1 (1 = default), got {y_arr[:5].tolist()}...") from exc
    bad_y = np.flatnonzero(~np.isin(y_float, (0.0, 1.0)))
    if bad_y.size:
        i = int(bad_y[0])
        raise RiskAppError(f"y_true: row {i} has label {y_arr[i]!r}, expected 0 or 1 (1 = default)")
    return y_float.astype(int), p_arr


def _require_both_classes(y: np.ndarray, what: str) -> None:
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
    _require_both_classes(y_arr, "KS")
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
    _require_both_classes(y_arr, "AUC")
    lift = lift_table(y_arr, p_arr, n_bins)
    return {
        "auc": float(roc_auc_score(y_arr, p_arr)),
        "ks": ks_curve(y_arr, p_arr).ks,
        "ece": expected_calibration_error(y_arr, p_arr, n_bins),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "top_decile_capture_pct": float(lift["cumulative_capture_pct"].iloc[0]),
    }


@dataclass(frozen=True)
class EvaluationReport:
    """What `build_evaluation_report` wrote and the headline numbers, for metadata and cards."""

    out_dir: Path
    paths: dict[str, Path]
    ece: float
    top_decile_lift: float
    auc: float
    ks: float
    threshold: float
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "paths": {k: str(v) for k, v in self.paths.items()},
            "ece": self.ece,
            "top_decile_lift": self.top_decile_lift,
            "auc": self.auc,
            "ks": self.ks,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "baselines": self.baselines,
        }


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays from metrics dicts -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


_PNG_NAMES = {
    "roc": "roc_curve.png",
    "ks": "ks_curve.png",
    "reliability": "reliability.png",
    "score_distribution": "score_distribution.png",
    "confusion_matrix": "confusion_matrix.png",
}


def build_evaluation_report(
    y_test: Any,
    p_test: Any,
    threshold: float,
    out_dir: str | os.PathLike[str],
    baselines: dict[str, np.ndarray] | None = None,
    *,
    model_name: str = "model",
    n_bins: int = 10,
) -> EvaluationReport:
    """Write roc/ks/reliability/score-distribution/confusion PNGs, lift_table.csv, report.json.

    `baselines` maps a name (e.g. "logistic") to scores on the same test rows; they appear on
    the ROC and reliability charts and in `report.json` so the model is judged beside them.
    """
    # plots imports this module's helpers; importing it here keeps the dependency one-way.
    from risk_app.evaluate import plots
    from risk_app.evaluate.metrics import credit_metrics

    if not 0.0 <= float(threshold) <= 1.0:
        raise RiskAppError(f"threshold={threshold!r} must be a probability in [0, 1]")
    y_arr, p_arr = check_scores(y_test, p_test)
    _require_both_classes(y_arr, "an evaluation report")
    baselines = dict(baselines or {})
    if model_name in baselines:
        raise RiskAppError(f"baseline name {model_name!r} clashes with the model's own name")
    baseline_arrays = {
        name: check_scores(y_arr, s, name=f"baseline {name!r}")[1] for name, s in baselines.items()
    }
    all_scores = {model_name: p_arr, **baseline_arrays}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A stale report.json from an earlier run must not vouch for files this run may not finish.
    (out / "report.json").unlink(missing_ok=True)
    paths = {key: out / name for key, name in _PNG_NAMES.items()}
    plots.roc_curve_png(y_arr, all_scores, path=paths["roc"])
    plots.ks_curve_png(y_arr, p_arr, path=paths["ks"])
    plots.reliability_png(y_arr, all_scores, n_bins=n_bins, path=paths["reliability"])
    plots.score_distribution_png(y_arr, p_arr, threshold=threshold, path=paths["score_distribution"])
    plots.confusion_matrix_png(y_arr, p_arr, threshold, path=paths["confusion_matrix"])
    lift = lift_table(y_arr, p_arr, n_bins)
    paths["lift_table"] = atomic_write_text(out / "lift_table.csv", lift.to_csv(index=False))

    summary = score_summary(y_arr, p_arr, n_bins)
    metrics = _jsonable(credit_metrics(y_arr, p_arr, threshold))
    baseline_numbers = {
        name: score_summary(y_arr, scores, n_bins)
        | {"metrics": _jsonable(credit_metrics(y_arr, scores, threshold))}
        for name, scores in baseline_arrays.items()
    }
    report = EvaluationReport(
        out_dir=out,
        paths=paths | {"report": out / "report.json"},
        ece=summary["ece"],
        top_decile_lift=summary["top_decile_lift"],
        auc=summary["auc"],
        ks=summary["ks"],
        threshold=float(threshold),
        metrics=metrics,
        baselines=baseline_numbers,
    )
    payload = report.to_dict() | {
        "model_name": model_name,
        "n": int(y_arr.size),
        "n_defaults": int(y_arr.sum()),
        "top_decile_capture_pct": summary["top_decile_capture_pct"],
        "lift_table": lift.to_dict(orient="records"),
    }
    # Written last: a report.json on disk means every file it lists is complete.
    atomic_write_json(out / "report.json", _jsonable(payload))
    return report
