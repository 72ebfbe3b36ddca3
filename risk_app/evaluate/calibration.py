"""Post-hoc calibration of P(default) scores, fitted on the validation split only.

A fine-tuned LLM trained with a class-weighted loss ranks applicants well but its softmax
probabilities are not default rates: class weighting pushes them towards 0.5 and a few epochs
of training make them over- or under-confident. Calibration maps them to honest probabilities
(better Brier score, meaningful risk grades) using held-out validation labels:

* ``none``        — identity, for comparison;
* ``temperature`` — one scalar T: ``p' = sigmoid(logit(p) / T)``, T chosen to minimise the
  validation negative log-likelihood (Guo et al. 2017). Monotone, so ROC AUC is unchanged;
* ``isotonic``    — a non-decreasing step function (scikit-learn ``IsotonicRegression``,
  clipped outside the validation range). More flexible, can tie scores (AUC may move a little)
  and overfits small validation sets more easily than temperature scaling.

    from risk_app.evaluate.calibration import fit_calibrator
    calibrator = fit_calibrator("temperature", y_val, p_val)
    p_test_calibrated = calibrator.transform(p_test)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from sklearn.isotonic import IsotonicRegression

from risk_app.errors import ConfigError
from risk_app.evaluate.inputs import check_pair, check_probabilities

CalibrationKind = Literal["none", "temperature", "platt", "isotonic"]
CALIBRATION_KINDS: tuple[str, ...] = get_args(CalibrationKind)

# Probabilities are clipped this far from 0 and 1 before taking logits, so a saturated
# softmax (p == 1.0 in float64) gives a large finite logit instead of infinity.
EPSILON = 1e-7
# Search range of log(T): T in [e^-5, e^5] ~ [0.007, 148] covers any sane model.
_LOG_T_BOUNDS = (-5.0, 5.0)


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [EPSILON, 1 - EPSILON]."""
    clipped = np.clip(np.asarray(p, dtype=float), EPSILON, 1.0 - EPSILON)
    return np.log(clipped) - np.log1p(-clipped)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    exp_z = np.exp(z[~pos])
    out[~pos] = exp_z / (1.0 + exp_z)
    return out


def check_labels_and_scores(
    y: Sequence[Any] | np.ndarray, p: Sequence[float] | np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels with both classes present and probabilities of the same length."""
    return check_pair(y, p, what)


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from raw P(default) to calibrated P(default)."""

    kind: CalibrationKind
    temperature: float = 1.0
    # Platt scaling: sigmoid(slope * logit(p) + intercept). Unlike temperature it also moves
    # the intercept, which is what undoes class weighting's shift of the base rate.
    slope: float = 1.0
    intercept: float = 0.0
    isotonic: IsotonicRegression | None = field(default=None, repr=False)
    # Isotonic step function as plain arrays, for calibrators restored from JSON.
    steps: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, repr=False)
    # Validation negative log-likelihood before and after, for the benchmark's record.
    val_nll_before: float = float("nan")
    val_nll_after: float = float("nan")

    def transform(self, p: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw probabilities `p` (same shape, in [0, 1])."""
        scores = check_probabilities(p, f"{self.kind} calibrator input")
        if self.kind == "none":
            return scores.copy()
        if self.kind == "temperature":
            return sigmoid(logit(scores) / self.temperature)
        if self.kind == "platt":
            return sigmoid(self.slope * logit(scores) + self.intercept)
        if self.steps is not None:
            return np.clip(np.interp(scores, np.asarray(self.steps[0]), np.asarray(self.steps[1])), 0.0, 1.0)
        assert self.isotonic is not None, "isotonic calibrator without a fitted model"
        return np.clip(self.isotonic.predict(scores), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to apply this calibrator again (stored in model artifacts)."""
        info = self.describe()
        info.update({"temperature": self.temperature, "slope": self.slope, "intercept": self.intercept})
        if self.kind == "isotonic":
            x, y = (
                self.steps
                if self.steps is not None
                else (
                    self.isotonic.X_thresholds_,
                    self.isotonic.y_thresholds_,  # type: ignore[union-attr]
                )
            )
            info["steps"] = [list(map(float, x)), list(map(float, y))]
        return info

    @classmethod
    def from_dict(cls, info: dict[str, Any]) -> Calibrator:
        kind = info.get("kind", "none")
        if kind not in CALIBRATION_KINDS:
            raise ConfigError(
                f"unknown calibration {kind!r} in saved model; expected one of {list(CALIBRATION_KINDS)}"
            )
        steps = info.get("steps")
        return cls(
            kind=kind,
            temperature=float(info.get("temperature", 1.0)),
            slope=float(info.get("slope", 1.0)),
            intercept=float(info.get("intercept", 0.0)),
            steps=(tuple(steps[0]), tuple(steps[1])) if steps else None,
            val_nll_before=float(info.get("val_nll_before", float("nan"))),
            val_nll_after=float(info.get("val_nll_after", float("nan"))),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters."""
        info: dict[str, Any] = {
            "kind": self.kind,
            "val_nll_before": self.val_nll_before,
            "val_nll_after": self.val_nll_after,
        }
        if self.kind == "temperature":
            info["temperature"] = self.temperature
        if self.kind == "platt":
            info.update({"slope": self.slope, "intercept": self.intercept})
        if self.kind == "isotonic" and self.isotonic is not None:
            info["isotonic_steps"] = int(len(self.isotonic.X_thresholds_))
        return info


def binary_nll(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 labels under probabilities `p` (clipped)."""
    q = np.clip(p, EPSILON, 1.0 - EPSILON)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """The T > 0 minimising the NLL of sigmoid(logit(p) / T) on (y, p).

    One-dimensional and convex in 1/T, so a bounded scalar search on log T is exact enough
    and needs no gradient code.
    """
    z = logit(p)

    def nll(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        # log(1 + e^s) - y*s is the logistic NLL; logaddexp keeps it finite for large |s|.
        return float(np.mean(np.logaddexp(0.0, scaled) - y * scaled))

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def fit_platt(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) minimising the NLL of sigmoid(slope * logit(p) + intercept).

    The slope is kept positive (searched as log slope) so calibration never reverses the
    ranking: AUC is unchanged and only the probabilities move.
    """
    z = logit(p)

    def nll(params: np.ndarray) -> float:
        s = np.exp(params[0]) * z + params[1]
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    result = minimize(nll, x0=np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10})
    return float(np.exp(result.x[0])), float(result.x[1])


def fit_calibrator(
    kind: CalibrationKind, y_val: Sequence[Any] | np.ndarray, p_val: Sequence[float] | np.ndarray
) -> Calibrator:
    """Fit a calibrator of `kind` on validation labels and raw validation probabilities."""
    if kind not in CALIBRATION_KINDS:
        raise ConfigError(f"unknown calibration {kind!r}; choose one of {list(CALIBRATION_KINDS)}")
    y, p = check_labels_and_scores(y_val, p_val, f"fit_calibrator({kind!r})")
    before = binary_nll(y, p)
    if kind == "none":
        return Calibrator(kind="none", val_nll_before=before, val_nll_after=before)
    if kind == "temperature":
        temperature = fit_temperature(y, p)
        after = binary_nll(y, sigmoid(logit(p) / temperature))
        return Calibrator(
            kind="temperature", temperature=temperature, val_nll_before=before, val_nll_after=after
        )
    if kind == "platt":
        slope, intercept = fit_platt(y, p)
        after = binary_nll(y, sigmoid(slope * logit(p) + intercept))
        return Calibrator(
            kind="platt", slope=slope, intercept=intercept, val_nll_before=before, val_nll_after=after
        )
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(p, y)
    after = binary_nll(y, np.clip(iso.predict(p), 0.0, 1.0))
    return Calibrator(kind="isotonic", isotonic=iso, val_nll_before=before, val_nll_after=after)


__all__ = [
    "CALIBRATION_KINDS",
    "CalibrationKind",
    "Calibrator",
    "binary_nll",
    "fit_calibrator",
    "fit_platt",
    "fit_temperature",
    "logit",
    "sigmoid",
]
