"""Stack the fine-tuned LLM's score with the gradient-boosted baseline's score.

The LLM reads the application as text, LightGBM reads the typed columns; their errors are
only partly correlated, so a combination can beat both. The stacker must be fitted on data
neither base model trained on, and in a 70/15/15 split that is the validation set alone.

Three stackers:

* ``logistic`` (default) — logistic regression on ``[logit(p_llm), logit(p_gbm)]``: learns
  how much to trust each score *and* recalibrates the result. Three parameters, so ~150
  validation rows are enough (mild L2, C=1).
* ``convex`` — ``w * p_llm + (1 - w) * p_gbm`` with ``w`` on a grid of 0, 0.05 ... 1 chosen
  by validation ROC AUC. One parameter; use it when validation is very small.
* ``tabular_only`` — ``p_gbm`` alone: nothing is fitted and the LLM's score is ignored. It is
  how a run deploys the classical model by itself (where LightGBM ties or beats the LLM)
  while the LLM is still trained and reported beside it. LightGBM never trained on
  validation, so its validation scores are already honest: they are the "out-of-fold" scores.

The catch: validation is then used twice, to fit the stacker and to choose the decline
threshold, and the stacker's own validation scores are optimistic (it has seen those labels).
We handle it by **cross-fitting**: validation is cut into `n_folds` stratified folds, each
fold is scored by a stacker fitted on the other folds, and those out-of-fold scores are what
the threshold is chosen on and what `val_auc_oof` reports. The stacker used on the test set
is refitted on all of validation. The base models' validation scores themselves are honest
(neither trained on validation); the LLM's calibrator and best-epoch choice did look at
validation, but temperature scaling is one monotone parameter that the logistic stacker
absorbs anyway, and epoch choice is shared by every model that uses validation for early
stopping. The test set is never seen by any of it.

    from risk_app.evaluate.hybrid import fit_hybrid
    hybrid = fit_hybrid(y_val, p_llm_val, p_gbm_val)
    threshold = choose_threshold(y_val, hybrid.val_oof)
    p_test = hybrid.predict(p_llm_test, p_gbm_test)
    same = stacker_from_params(hybrid.params)   # what a packaged hybrid model rebuilds

A deployable hybrid (fitted in a training run, packaged, scored and explained) is built from
these pieces by `risk_app/hybrid/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from risk_app.errors import ConfigError
from risk_app.evaluate.calibration import check_labels_and_scores, logit
from risk_app.evaluate.inputs import MetricInputError, check_probabilities

HybridKind = Literal["logistic", "convex", "tabular_only"]
HYBRID_KINDS: tuple[str, ...] = get_args(HybridKind)
CONVEX_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)


@dataclass(frozen=True)
class _Stacker:
    """One fitted stacker (on all of validation or on some folds of it)."""

    kind: HybridKind
    coef: tuple[float, float] = (0.0, 0.0)
    intercept: float = 0.0
    weight_llm: float = 0.5

    def predict(self, llm: np.ndarray, gbm: np.ndarray) -> np.ndarray:
        if self.kind == "tabular_only":
            return np.asarray(gbm, dtype=float).copy()
        if self.kind == "convex":
            return self.weight_llm * llm + (1.0 - self.weight_llm) * gbm
        z = self.intercept + self.coef[0] * logit(llm) + self.coef[1] * logit(gbm)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def _fit_stacker(kind: HybridKind, y: np.ndarray, llm: np.ndarray, gbm: np.ndarray, c: float) -> _Stacker:
    if kind == "tabular_only":
        return _Stacker(kind="tabular_only")  # nothing to fit: the tabular PD as it is
    if kind == "logistic":
        features = np.column_stack([logit(llm), logit(gbm)])
        model = LogisticRegression(C=c, max_iter=1000).fit(features, y)
        return _Stacker(
            kind="logistic",
            coef=(float(model.coef_[0, 0]), float(model.coef_[0, 1])),
            intercept=float(model.intercept_[0]),
        )
    # Convex: the weight with the best AUC; ties go to the weight nearest 0.5 (less extreme).
    aucs = np.array([roc_auc_score(y, w * llm + (1.0 - w) * gbm) for w in CONVEX_GRID])
    best = np.flatnonzero(aucs >= aucs.max() - 1e-12)
    weight = float(CONVEX_GRID[best[np.argmin(np.abs(CONVEX_GRID[best] - 0.5))]])
    return _Stacker(kind="convex", weight_llm=weight)


@dataclass(frozen=True)
class Hybrid:
    """A stacker fitted on all of validation, plus its cross-fitted validation scores."""

    kind: HybridKind
    stacker: _Stacker = field(repr=False)
    # Out-of-fold P(default) for each validation row: use these, not predict() on validation,
    # to choose the threshold.
    val_oof: np.ndarray = field(repr=False)
    val_auc_oof: float
    n_folds: int

    @property
    def params(self) -> dict[str, Any]:
        """JSON-friendly description of the stacker fitted on all of validation."""
        if self.kind == "tabular_only":
            return {"kind": "tabular_only"}
        if self.kind == "convex":
            return {"kind": "convex", "weight_llm": self.stacker.weight_llm}
        return {
            "kind": "logistic",
            "coef_llm": self.stacker.coef[0],
            "coef_gbm": self.stacker.coef[1],
            "intercept": self.stacker.intercept,
        }

    def predict(self, llm: Sequence[float] | np.ndarray, gbm: Sequence[float] | np.ndarray) -> np.ndarray:
        """Hybrid P(default) from the two models' P(default) on the same rows."""
        p_llm = check_probabilities(llm, "hybrid input: llm scores")
        p_gbm = check_probabilities(gbm, "hybrid input: gbm scores")
        if p_llm.shape != p_gbm.shape:
            raise MetricInputError(
                f"hybrid input: {p_llm.shape[0]} llm scores but {p_gbm.shape[0]} gbm scores; "
                "both models must score the same rows"
            )
        return self.stacker.predict(p_llm, p_gbm)


def stacker_from_params(params: dict[str, Any]) -> Hybrid:
    """A fitted stacker rebuilt from `Hybrid.params` (as an artifact stores it) for prediction.

    The rebuilt object predicts exactly as the fitted one; it carries no validation scores.
    """
    kind = params.get("kind")
    if kind == "tabular_only":
        stacker = _Stacker(kind="tabular_only")
    elif kind == "convex":
        stacker = _Stacker(kind="convex", weight_llm=float(params["weight_llm"]))
    elif kind == "logistic":
        coef = (float(params["coef_llm"]), float(params["coef_gbm"]))
        stacker = _Stacker(kind="logistic", coef=coef, intercept=float(params["intercept"]))
    else:
        raise ConfigError(f"unknown hybrid stacker {kind!r}; choose one of {list(HYBRID_KINDS)}")
    return Hybrid(kind=kind, stacker=stacker, val_oof=np.empty(0), val_auc_oof=float("nan"), n_folds=0)


def _cross_fitted(
    kind: HybridKind, y: np.ndarray, llm: np.ndarray, gbm: np.ndarray, *, n_folds: int, seed: int, c: float
) -> np.ndarray:
    """Each validation row scored by a stacker fitted on the other folds."""
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < n_folds:
        raise MetricInputError(
            f"fit_hybrid: only {minority} validation row(s) of the rarer class; cross-fitting needs "
            f"at least one per fold ({n_folds} folds)"
        )
    oof = np.empty_like(llm)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fit_idx, held_idx in folds.split(llm, y):
        fold_stacker = _fit_stacker(kind, y[fit_idx], llm[fit_idx], gbm[fit_idx], c)
        oof[held_idx] = fold_stacker.predict(llm[held_idx], gbm[held_idx])
    return oof


def fit_hybrid(
    y_val: Sequence[Any] | np.ndarray,
    llm_val: Sequence[float] | np.ndarray,
    gbm_val: Sequence[float] | np.ndarray,
    kind: HybridKind = "logistic",
    *,
    n_folds: int = 5,
    seed: int = 0,
    c: float = 1.0,
) -> Hybrid:
    """Fit the stacker on validation; cross-fit it within validation for honest val scores."""
    if kind not in HYBRID_KINDS:
        raise ConfigError(f"unknown hybrid {kind!r}; choose one of {list(HYBRID_KINDS)}")
    if n_folds < 2:
        raise ConfigError(f"hybrid n_folds must be >= 2, got {n_folds}")
    y, llm = check_labels_and_scores(y_val, llm_val, "fit_hybrid llm")
    _, gbm = check_labels_and_scores(y_val, gbm_val, "fit_hybrid gbm")
    if kind == "tabular_only":  # nothing is fitted, so LightGBM's own scores are out-of-fold
        oof = gbm.copy()
    else:
        oof = _cross_fitted(kind, y, llm, gbm, n_folds=n_folds, seed=seed, c=c)
    return Hybrid(
        kind=kind,
        stacker=_fit_stacker(kind, y, llm, gbm, c),
        val_oof=oof,
        val_auc_oof=float(roc_auc_score(y, oof)),
        n_folds=n_folds,
    )


__all__ = ["HYBRID_KINDS", "Hybrid", "HybridKind", "fit_hybrid", "stacker_from_params"]
