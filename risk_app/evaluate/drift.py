"""Population stability index (PSI): has a scoring batch drifted from the training data?

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%). Numeric bins are the
quantiles of the expected (training) distribution, so each holds about 1/bins of training;
categorical bins are the categories, and a category never seen in training gets its own bin.
Empty bins take a small epsilon share so the log stays finite. Missing values are a bin of
their own: a jump in missingness is drift too.

    from risk_app.evaluate.drift import drift_features, feature_psi, score_psi
    columns, categorical = drift_features(spec)      # the data set's model inputs
    table = feature_psi(train_df, batch_df, columns, categorical_columns=categorical)
    status = classify(score_psi(p_train, p_batch))

Rule of thumb (the defaults of `DriftThresholds`): < 0.1 stable, 0.1-0.25 watch, >= 0.25 act.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import RiskAppError

DriftStatus = Literal["ok", "warn", "fail"]
PsiKind = Literal["numeric", "categorical"]
EPSILON = 1e-4
_MISSING = "__missing__"


class DriftThresholds(BaseModel):
    """PSI levels at which a feature or score distribution is reported as drifting."""

    model_config = ConfigDict(extra="forbid")

    warn: float = Field(default=0.1, ge=0.0, description="PSI at or above which drift is a warning to watch.")
    fail: float = Field(
        default=0.25, gt=0.0, description="PSI at or above which drift fails the check (population shifted)."
    )

    @model_validator(mode="after")
    def _warn_below_fail(self) -> DriftThresholds:
        if not self.warn < self.fail:
            raise ValueError(f"warn ({self.warn}) must be below fail ({self.fail})")
        return self


def classify(psi_value: float, thresholds: DriftThresholds | None = None) -> DriftStatus:
    """ "ok" below warn, "warn" from warn up to fail, "fail" at or above fail."""
    thresholds = thresholds or DriftThresholds()
    if not np.isfinite(psi_value) or psi_value < 0:
        raise RiskAppError(f"PSI value {psi_value!r} is not a finite non-negative number")
    if psi_value >= thresholds.fail:
        return "fail"
    if psi_value >= thresholds.warn:
        return "warn"
    return "ok"


def _psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, EPSILON, None)
    actual = np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _numeric_shares(
    expected: np.ndarray, actual: np.ndarray, bins: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    try:
        # Via pandas so nullable columns (Int64 with pd.NA) become float with NaN.
        exp = pd.to_numeric(pd.Series(expected)).to_numpy(dtype=float, na_value=np.nan)
        act = pd.to_numeric(pd.Series(actual)).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise RiskAppError(f"{name}: numeric PSI needs numbers; use kind='categorical' for labels") from exc
    exp_nan, act_nan = np.isnan(exp), np.isnan(act)
    if exp_nan.all():
        raise RiskAppError(f"{name}: the expected (training) values are all missing")
    # Interior quantile edges of the training data; ties (discrete features) collapse to one edge.
    edges = np.unique(np.quantile(exp[~exp_nan], np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=edges.size + 1)
        return np.append(counts, missing.sum()) / values.size

    return shares(exp, exp_nan), shares(act, act_nan)


def _categorical_shares(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    exp_raw, act_raw = pd.Series(expected, dtype=object), pd.Series(actual, dtype=object)
    # where() instead of fillna(): no silent downcast of object arrays of numbers.
    exp = exp_raw.where(exp_raw.notna(), _MISSING).astype(str)
    act = act_raw.where(act_raw.notna(), _MISSING).astype(str)
    # Union of categories: one unseen in training gets expected share epsilon, so it counts.
    categories = sorted(set(exp) | set(act))
    exp_share = exp.value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy()
    act_share = act.value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy()
    return exp_share, act_share


def psi(
    expected: Any, actual: Any, bins: int = 10, kind: PsiKind = "numeric", *, name: str = "values"
) -> float:
    """PSI of `actual` against `expected` (training); 0 means identical binned distributions."""
    exp = np.asarray(expected, dtype=object if kind == "categorical" else None).reshape(-1)
    act = np.asarray(actual, dtype=object if kind == "categorical" else None).reshape(-1)
    if exp.size == 0 or act.size == 0:
        which = "expected (training)" if exp.size == 0 else "actual (batch)"
        raise RiskAppError(f"{name}: the {which} sample is empty, PSI is undefined")
    if kind == "numeric":
        if bins < 2:
            raise RiskAppError(f"{name}: bins={bins} must be at least 2")
        exp_share, act_share = _numeric_shares(exp, act, bins, name)
    elif kind == "categorical":
        exp_share, act_share = _categorical_shares(exp, act)
    else:
        raise RiskAppError(f"{name}: kind={kind!r} must be 'numeric' or 'categorical'")
    return _psi_from_shares(exp_share, act_share)


def _kind_of(series: pd.Series) -> PsiKind:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    return "numeric"


def feature_psi(
    train_df: pd.DataFrame,
    batch_df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int = 10,
    thresholds: DriftThresholds | None = None,
    categorical_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """PSI per column: DataFrame(column, kind, psi, status), worst first.

    `columns` defaults to the columns the two frames share. A column is categorical if listed
    in `categorical_columns` or its training dtype is not numeric.
    """
    thresholds = thresholds or DriftThresholds()
    if columns is None:
        columns = [c for c in train_df.columns if c in batch_df.columns]
    if not columns:
        raise RiskAppError("feature_psi: no columns to compare")
    rows = []
    for column in columns:
        for frame, label in ((train_df, "training"), (batch_df, "batch")):
            if column not in frame.columns:
                raise RiskAppError(f"feature_psi: column {column!r} is missing from the {label} data")
        kind: PsiKind = "categorical" if column in categorical_columns else _kind_of(train_df[column])
        if kind == "numeric" and not pd.api.types.is_numeric_dtype(batch_df[column]):
            raise RiskAppError(
                f"feature_psi: column {column!r} is numeric in training "
                f"but {batch_df[column].dtype} in the batch"
            )
        value = psi(
            train_df[column].to_numpy(), batch_df[column].to_numpy(), bins=bins, kind=kind, name=column
        )
        rows.append({"column": column, "kind": kind, "psi": value, "status": classify(value, thresholds)})
    table = pd.DataFrame(rows, columns=["column", "kind", "psi", "status"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def drift_features(spec: DatasetSpec | str | None = None) -> tuple[list[str], list[str]]:
    """(columns, categorical columns) to watch for drift: the spec's numeric and categorical
    features. Free text has no PSI (its distribution is not binnable); watch the score instead."""
    spec = load_spec(spec)
    columns = [c for c in spec.feature_columns if c not in spec.text_columns]
    return columns, list(spec.categorical_columns)


def score_psi(train_scores: Any, batch_scores: Any, bins: int = 10) -> float:
    """PSI of the model's predicted default probabilities, binned on training-score quantiles."""
    return psi(train_scores, batch_scores, bins=bins, kind="numeric", name="score")
