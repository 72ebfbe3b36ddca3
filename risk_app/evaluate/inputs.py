"""The one check of labels and probabilities that every evaluation function runs first.

Metrics, calibration, charts, the report and the hybrid all take 0/1 labels (1 = default) and
probabilities of default; they check them here, so a bad input gets the same clear message
(naming the first offending row) wherever it enters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from risk_app.errors import RiskAppError


class MetricInputError(RiskAppError, ValueError):
    """Labels or probabilities that cannot be scored (also a ValueError for numeric callers)."""


def check_probabilities(p: Sequence[float] | np.ndarray, name: str = "p_default") -> np.ndarray:
    """A 1-D float array of finite probabilities in [0, 1]."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of probabilities, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        kind = " (NaN)" if np.isnan(arr[first]) else ""
        raise MetricInputError(
            f"{name}: probabilities must lie in [0, 1]; row {first} is {float(arr[first])!r}{kind} "
            f"({int(bad.sum())} bad value(s))"
        )
    return arr


def check_labels(y: Sequence[Any] | np.ndarray, name: str = "y_true") -> np.ndarray:
    """A 1-D int array of 0/1 labels (1 = default)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of 0/1 labels, got shape {arr.shape}")
    try:
        as_float = arr.astype(float)
    except (TypeError, ValueError):
        as_float = np.full(arr.shape, np.nan)
    bad = ~np.isin(as_float, (0.0, 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = arr[first].item() if hasattr(arr[first], "item") else arr[first]
        kind = " (NaN)" if isinstance(value, float) and np.isnan(value) else ""
        raise MetricInputError(
            f"{name}: labels must be 0/1 (1 = default); row {first} is {value!r}{kind} "
            f"({int(bad.sum())} bad value(s))"
        )
    return as_float.astype(int)


def check_pair(
    y: Sequence[Any] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    what: str,
    *,
    both_classes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities that can be evaluated together: same length, not empty, and
    (unless `both_classes=False`) holding defaults and non-defaults."""
    labels = check_labels(y, f"{what}: labels")
    scores = check_probabilities(p, f"{what}: scores")
    if labels.shape[0] != scores.shape[0]:
        raise MetricInputError(
            f"{what}: {labels.shape[0]} labels but {scores.shape[0]} scores; lengths must match"
        )
    if labels.shape[0] == 0:
        raise MetricInputError(f"{what}: no rows to evaluate (empty)")
    if both_classes and labels.min() == labels.max():
        raise MetricInputError(
            f"{what} needs both classes (defaults and non-defaults); all {labels.shape[0]} labels are "
            f"{int(labels[0])}"
        )
    return labels, scores
