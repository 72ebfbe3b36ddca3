"""Credit-risk metrics: discrimination, calibration and decisions at a threshold.

`credit_metrics` is the one place every model (fine-tuned LLM, logistic, LightGBM) is scored,
so numbers in the registry, the model card and the benchmark tables are comparable. The
positive class is always `default == 1` (a bad loan), and "decline" means
`p_default >= threshold`, the same rule batch scoring applies.

`choose_threshold` must only ever see validation data: picking the cut-off on the test set
would leak and overstate test F1.

    from risk_app.evaluate.metrics import credit_metrics, choose_threshold
    thr = choose_threshold(y_val, p_val, objective="f1")
    m = credit_metrics(y_test, p_test, thr)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from risk_app.evaluate.inputs import MetricInputError, check_pair
from risk_app.evaluate.metric_table import METRIC_NAMES, METRICS, Metrics, format_metric, ks_statistic

ThresholdObjective = Literal["f1", "youden"]

# Order of columns in `metrics_table`: the metric table's order, then the cut-off.
TABLE_COLUMNS: tuple[str, ...] = (*METRIC_NAMES, "threshold")


def _checked_pair(
    y_true: Sequence[Any] | np.ndarray, p_default: Sequence[float] | np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    # ROC AUC and KS are undefined on one class, so every metric needs both.
    return check_pair(y_true, p_default, what)


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise MetricInputError(f"threshold: must lie in [0, 1], got {threshold!r}")
    return t


def credit_metrics(
    y_true: Sequence[Any] | np.ndarray, p_default: Sequence[float] | np.ndarray, threshold: float
) -> dict[str, Any]:
    """Score P(default) predictions against 0/1 labels (1 = default), as a plain dict.

    One value per entry of `metric_table.METRICS` (n as an int), plus the threshold used and
    the confusion matrix ``[[tn, fp], [fn, tp]]`` at ``p >= threshold``. Raises
    `MetricInputError` on bad input. `score_predictions` gives the same as a typed `Metrics`.
    """
    return score_predictions(y_true, p_default, threshold).model_dump()


def score_predictions(
    y_true: Sequence[Any] | np.ndarray, p_default: Sequence[float] | np.ndarray, threshold: float
) -> Any:
    """Every metric of the metric table for one model on one split, as a typed `Metrics`."""
    y, p = _checked_pair(y_true, p_default, "credit_metrics")
    t = _check_threshold(threshold)
    decline = (p >= t).astype(int)
    cm = confusion_matrix(y, decline, labels=[0, 1])
    values = {spec.name: spec.compute(y, p, decline) for spec in METRICS}
    return Metrics(
        **values, threshold=t, confusion_matrix=[[int(v) for v in row] for row in cm.tolist()]
    )


def choose_threshold(
    y_val: Sequence[Any] | np.ndarray,
    p_val: Sequence[float] | np.ndarray,
    objective: ThresholdObjective = "f1",
) -> float:
    """Pick the decline threshold on validation data only.

    ``f1`` maximises F1 of the default class; ``youden`` maximises TPR - FPR (Youden's J,
    the KS point). The returned value is one of the validation scores, so ``p >= threshold``
    reproduces the optimum exactly on validation. Ties go to the higher threshold, which
    declines fewer applicants.
    """
    y, p = _checked_pair(y_val, p_val, "choose_threshold")
    if objective == "f1":
        precision, recall, thresholds = precision_recall_curve(y, p, pos_label=1)
        # The last precision/recall pair has no threshold (recall 0 by convention).
        precision, recall = precision[:-1], recall[:-1]
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        best = np.flatnonzero(f1 == f1.max())
        return float(thresholds[best].max())
    if objective == "youden":
        fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
        # roc_curve prepends an "infinite" threshold that declines nobody; it is never a useful cut.
        finite = np.isfinite(thresholds) & (thresholds <= 1.0)
        j = np.where(finite, tpr - fpr, -np.inf)
        best = np.flatnonzero(j == j.max())
        return float(thresholds[best].max())
    raise MetricInputError(f"choose_threshold: unknown objective {objective!r}; choose 'f1' or 'youden'")


def decline_cap_threshold(p_val: Sequence[float] | np.ndarray, max_decline_rate: float) -> float:
    """The lowest cut-off that declines at most `max_decline_rate` of these PDs (p >= cut-off)."""
    if not 0.0 < max_decline_rate <= 1.0:
        raise MetricInputError(f"max_decline_rate={max_decline_rate!r} must be in (0, 1]")
    p = np.sort(np.asarray(p_val, dtype=float))[::-1]
    allowed = int(np.floor(max_decline_rate * len(p)))
    # Declining p >= t: t just above the (allowed+1)-th highest score keeps declines <= allowed.
    cap = np.nextafter(p[allowed], np.inf) if allowed < len(p) else p[-1]
    return float(min(cap, 1.0))


def _format_cell(name: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "nan" if math.isnan(float(value)) else format_metric(name, value)
    return str(value)


def metrics_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Render several models' metrics side by side as a markdown table (one row per model).

    Only scalar metrics are shown (the confusion matrix is left out); a metric a model lacks
    is an empty cell.
    """
    if not rows:
        raise MetricInputError("metrics_table: no rows to show")
    present: set[str] = set()
    for metrics in rows.values():
        present.update(k for k, v in metrics.items() if not isinstance(v, list | tuple | dict | np.ndarray))
    columns = [c for c in TABLE_COLUMNS if c in present] + sorted(present - set(TABLE_COLUMNS))
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "|".join("---:" for _ in columns) + "|",
    ]
    for name, metrics in rows.items():
        cells = [_format_cell(c, metrics.get(c)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "TABLE_COLUMNS",
    "ThresholdObjective",
    "MetricInputError",
    "choose_threshold",
    "credit_metrics",
    "decline_cap_threshold",
    "ks_statistic",
    "metrics_table",
    "score_predictions",
]
