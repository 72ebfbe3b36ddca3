"""The one table of evaluation metrics: name, label, direction, format and how to compute it.

Everything that shows, compares or logs a metric reads this table: `credit_metrics` computes
each entry, the model card and the run summaries format them with `format_metric`, MLflow
logs them under their names, the promotion rule takes each metric's direction from here, and
`Metrics` (the typed record of one model's scores) has one field per entry; `rounded_metric`
rounds a logged number (MLflow metrics and version tags) as the reports show it. Adding a metric is
one `MetricSpec` below; a test proves it then reaches the card, MLflow and Dagster metadata.

    from risk_app.evaluate.metric_table import METRICS, metric_spec
    metric_spec("brier").higher_is_better   # False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, create_model
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

# (y, p, decline) -> value: labels (1 = default), P(default), and the 0/1 decision at the cut-off.
MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class MetricSpec:
    """One evaluation metric."""

    name: str
    label: str
    higher_is_better: bool | None  # None: descriptive, never compared (n, default rate)
    compute: MetricFn
    decimals: int = 4
    description: str = ""
    headline: bool = False  # shown in narrow summaries (the CLI table); every report shows all


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Largest gap between the score CDFs of defaulters and non-defaulters (max |TPR - FPR|)."""
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    return float(np.max(np.abs(tpr - fpr)))


def _auc(y: np.ndarray, p: np.ndarray, _d: np.ndarray) -> float:
    return float(roc_auc_score(y, p))


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "roc_auc", "AUC", True, _auc, description="Ranking of defaulters above good loans.", headline=True
    ),
    MetricSpec(
        "ks", "KS", True, lambda y, p, d: ks_statistic(y, p), description="Kolmogorov-Smirnov.", headline=True
    ),
    MetricSpec("gini", "Gini", True, lambda y, p, d: 2.0 * _auc(y, p, d) - 1.0, description="2·AUC − 1."),
    MetricSpec(
        "brier",
        "Brier",
        False,
        lambda y, p, d: float(brier_score_loss(y, p)),
        description="Mean squared PD error.",
        headline=True,
    ),
    MetricSpec(
        "log_loss",
        "Log loss",
        False,
        lambda y, p, d: float(log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])),
        description="Cross-entropy of the PDs.",
    ),
    # zero_division=0: a cut-off that declines nobody has precision 0, not a crash.
    MetricSpec(
        "f1",
        "F1",
        True,
        lambda y, p, d: float(f1_score(y, d, pos_label=1, zero_division=0)),
        description="F1 of the default class at the cut-off.",
        headline=True,
    ),
    MetricSpec(
        "precision",
        "Precision",
        True,
        lambda y, p, d: float(precision_score(y, d, pos_label=1, zero_division=0)),
        description="Share of declined applications that default.",
    ),
    MetricSpec(
        "recall",
        "Recall",
        True,
        lambda y, p, d: float(recall_score(y, d, pos_label=1, zero_division=0)),
        description="Share of defaults declined (defaults caught).",
    ),
    MetricSpec("accuracy", "Accuracy", True, lambda y, p, d: float(accuracy_score(y, d))),
    MetricSpec(
        "approval_rate",
        "Approval rate",
        None,
        lambda y, p, d: float(1.0 - d.mean()),
        description="Share of applications approved at the cut-off.",
        headline=True,
    ),
    MetricSpec(
        "bad_rate_approved",
        "Bad rate (approved)",
        False,
        lambda y, p, d: float(y[d == 0].mean()) if (d == 0).any() else 0.0,
        description="Default rate among approved applications.",
        headline=True,
    ),
    MetricSpec("default_rate", "Default rate", None, lambda y, p, d: float(y.mean())),
    MetricSpec("n", "Rows", None, lambda y, p, d: float(len(y)), decimals=0),
)

_BY_NAME = {spec.name: spec for spec in METRICS}
METRIC_NAMES: tuple[str, ...] = tuple(_BY_NAME)
HEADLINE_METRICS: tuple[str, ...] = tuple(s.name for s in METRICS if s.headline)


def metric_spec(name: str) -> MetricSpec:
    """The table entry for `name`; unknown names list the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(METRIC_NAMES)}") from None


def format_metric(name: str, value: Any) -> str:
    """A metric value as a report shows it (4 decimals unless the table says otherwise)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    spec = _BY_NAME.get(name)
    decimals = spec.decimals if spec else 4
    return f"{float(value):.{decimals}f}"


def table_entry(key: str) -> MetricSpec | None:
    """The table entry a logged metric name stands for: `roc_auc`, and also a split- or
    model-prefixed name such as `test_roc_auc` or `logistic_brier` (longest name that fits)."""
    if key in _BY_NAME:
        return _BY_NAME[key]
    fits = [name for name in _BY_NAME if key.endswith(f"_{name}")]
    return _BY_NAME[max(fits, key=len)] if fits else None


def rounded_metric(key: str, value: float) -> float:
    """`value` as reports show it: a table metric (also prefixed, see `table_entry`) to its
    decimals; any other number (loss, seconds, learning rate) to 4 significant digits, whole
    numbers (parameter counts, epochs) as they are. MLflow logs and tags use this."""
    spec = table_entry(key)
    if spec is not None:
        return round(float(value), spec.decimals)
    if float(value).is_integer():
        return float(value)
    return float(f"{float(value):.4g}")


class _MetricsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float
    confusion_matrix: list[list[int]]

    def values(self) -> dict[str, float]:
        """The table's metrics, in table order, keyed by name (for logging and tables)."""
        return {name: float(getattr(self, name)) for name in METRIC_NAMES}

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)


# One typed field per table entry, so a new metric is a new field without another edit.
Metrics = create_model(  # type: ignore[call-overload]
    "Metrics",
    __base__=_MetricsBase,
    __module__=__name__,
    __doc__="One model's scores on one split, at one cut-off: a field per entry of METRICS.",
    **{spec.name: (float, ...) for spec in METRICS},
)
