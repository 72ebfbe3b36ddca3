"""Validation charts as PNG bytes: ROC, KS, reliability, score distribution, confusion matrix.

Every function returns the PNG bytes and, given `path`, also writes them atomically, so the
caller can attach bytes to a Dagster/MLflow record or keep a file, from one call:

    from risk_app.evaluate import plots
    png = plots.roc_curve_png(y, {"llm-lora": p_llm, "logistic": p_lr}, path="out/roc.png")

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, never pyplot:
pyplot keeps global state and picks a GUI backend, neither of which is safe in a Dagster worker
or a thread. The numbers drawn (ECE, KS) come from `risk_app.evaluate.curves`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from risk_app.atomic import atomic_write_bytes
from risk_app.errors import RiskAppError
from risk_app.evaluate.curves import calibration_table, check_scores, expected_calibration_error, ks_curve

PathLike = str | os.PathLike[str]
Scores = np.ndarray | Mapping[str, Any]

_GOOD_COLOR = "#2b8cbe"
_BAD_COLOR = "#d7301f"


def _new_axes(figsize: tuple[float, float] = (6.0, 5.0)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _finish(fig: Figure, path: PathLike | None) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    if path is not None:
        atomic_write_bytes(path, data)
    return data


def _named_scores(y: Any, scores: Scores) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Accept one score array or {name: scores}; validate each against the same labels."""
    mapping = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    if not mapping:
        raise RiskAppError("no scores given to plot")
    y_arr: np.ndarray | None = None
    checked: dict[str, np.ndarray] = {}
    for name, values in mapping.items():
        y_arr, checked[str(name)] = check_scores(y, values, name=str(name))
    assert y_arr is not None
    return y_arr, checked


def _both_classes(y: np.ndarray, chart: str) -> None:
    if y.min() == y.max():
        raise RiskAppError(f"{chart} needs both defaults and non-defaults; y_true holds only class {y[0]}")


def roc_curve_png(y: Any, scores: Scores, *, path: PathLike | None = None, title: str = "ROC curve") -> bytes:
    """ROC of one model or several on the same rows, each with its AUC in the legend."""
    y_arr, named = _named_scores(y, scores)
    _both_classes(y_arr, "ROC curve")
    fig, ax = _new_axes()
    for name, p in named.items():
        fpr, tpr, _ = roc_curve(y_arr, p)
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUC = {roc_auc_score(y_arr, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance (AUC = 0.500)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate (goods declined)")
    ax.set_ylabel("True positive rate (defaults caught)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def ks_curve_png(y: Any, p: Any, *, path: PathLike | None = None, title: str = "KS curve") -> bytes:
    """Cumulative score distributions of goods and defaults, with the KS gap marked."""
    curve = ks_curve(y, p)
    fig, ax = _new_axes()
    ax.step(curve.scores, curve.cdf_good, where="post", color=_GOOD_COLOR, label="good (non-default)")
    ax.step(curve.scores, curve.cdf_bad, where="post", color=_BAD_COLOR, label="bad (default)")
    at = int(np.argmax(np.abs(curve.cdf_good - curve.cdf_bad)))
    ax.vlines(
        curve.ks_score,
        min(curve.cdf_good[at], curve.cdf_bad[at]),
        max(curve.cdf_good[at], curve.cdf_bad[at]),
        colors="black",
        linestyles="--",
        label=f"KS = {curve.ks:.3f} at score {curve.ks_score:.3f}",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("Predicted probability of default")
    ax.set_ylabel("Cumulative share of class")
    ax.set_title(f"{title} (KS = {curve.ks:.3f})")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def reliability_png(
    y: Any,
    scores: Scores,
    *,
    n_bins: int = 10,
    path: PathLike | None = None,
    title: str = "Reliability diagram",
) -> bytes:
    """Observed default rate vs mean predicted probability per bin; ECE in title and legend.

    The first model named (or the only one) gives the ECE in the title; every model's ECE is in
    the legend. A bar chart under the curve shows how many rows fall in each bin of the first.
    """
    y_arr, named = _named_scores(y, scores)
    fig = Figure(figsize=(6.0, 6.0), dpi=100)
    FigureCanvasAgg(fig)
    ax, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    eces = {}
    for name, p in named.items():
        table = calibration_table(y_arr, p, n_bins)
        eces[name] = expected_calibration_error(y_arr, p, n_bins)
        ax.plot(
            table["mean_predicted"],
            table["observed_rate"],
            marker="o",
            label=f"{name} (ECE = {eces[name]:.3f})",
        )
    first = next(iter(named))
    counts = calibration_table(y_arr, named[first], n_bins)
    ax_count.bar(
        (counts["bin_lower"] + counts["bin_upper"]) / 2, counts["n"], width=0.9 / n_bins, color="#999999"
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_ylabel("Observed default rate")
    ax.set_title(f"{title} — ECE = {eces[first]:.3f} ({first})")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    ax_count.set_xlabel("Mean predicted probability of default")
    ax_count.set_ylabel(f"rows ({first})")
    return _finish(fig, path)


def score_distribution_png(
    y: Any,
    p: Any,
    *,
    threshold: float | None = None,
    bins: int = 20,
    path: PathLike | None = None,
    title: str = "Score distribution by class",
) -> bytes:
    """Histograms of predicted default probability for goods and defaults, threshold marked."""
    y_arr, p_arr = check_scores(y, p)
    fig, ax = _new_axes()
    edges = np.linspace(0.0, 1.0, bins + 1)
    for label, cls, color in (("good (non-default)", 0, _GOOD_COLOR), ("bad (default)", 1, _BAD_COLOR)):
        values = p_arr[y_arr == cls]
        if values.size:
            ax.hist(values, bins=edges, alpha=0.55, color=color, label=f"{label}, n={values.size}")
    if threshold is not None:
        ax.axvline(
            float(threshold), color="black", linestyle="--", label=f"threshold = {float(threshold):.3f}"
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("Predicted probability of default")
    ax.set_ylabel("Applications")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return _finish(fig, path)


def confusion_matrix_png(
    y: Any, p: Any, threshold: float, *, path: PathLike | None = None, title: str = "Confusion matrix"
) -> bytes:
    """Counts (and row shares) of approve/decline against the outcome; decline = p >= threshold."""
    y_arr, p_arr = check_scores(y, p)
    if not 0.0 <= float(threshold) <= 1.0:
        raise RiskAppError(f"threshold={threshold!r} must be a probability in [0, 1]")
    predicted = (p_arr >= float(threshold)).astype(int)
    matrix = confusion_matrix(y_arr, predicted, labels=[0, 1])
    row_totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_totals, out=np.zeros_like(matrix, dtype=float), where=row_totals > 0)
    fig, ax = _new_axes((5.0, 4.5))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            colour = "white" if shares[i, j] > 0.6 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n({shares[i, j]:.0%})", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], ["approve\n(pred. good)", "decline\n(pred. default)"])
    ax.set_yticks([0, 1], ["good", "default"])
    ax.set_xlabel("Decision")
    ax.set_ylabel("Actual outcome")
    ax.set_title(f"{title} at threshold {float(threshold):.3f}")
    return _finish(fig, path)
