"""Batch scoring: validated applications in, PD + risk grade + decision out.

`score_applications` scores a DataFrame of contract-valid applications with a loaded risk model
and `check_scored_output` checks the result against `data_contracts/scored_application.py`.
The whole path for one file (validate, quarantine, score, record once, write) is
`risk_app.scoring.staged`, used by the CLI and by Dagster's scoring assets.

    scored = score_applications(valid_df, risk_model)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from data_contracts.scored_application import SCORED_COLUMNS, scored_schema
from risk_app.data.validate import ID_COLUMN
from risk_app.errors import ConfigError, RiskAppError
from risk_app.policy.grades import GRADE_BANDS, assign_grades, grade_names

# The contract's columns (the first is the id), in its order, and when the row was scored. The
# policy columns say which credit policy (`policy_of`) and cut-off made each decision.
OUTPUT_COLUMNS: tuple[str, ...] = (*SCORED_COLUMNS, "scored_at")


class RiskModelLike(Protocol):
    """What scoring needs from `risk_app.registry.artifact.RiskModel` (which also names its
    `policy_id` and `policy_objective`; a model without them records them empty)."""

    threshold: float
    version: str

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray: ...


def policy_of(risk_model: RiskModelLike) -> dict[str, Any]:
    """The credit policy a model decides by: its id (`policy.credit.policy_id`), the cut-off
    (decline when PD >= it) and the objective that chose it. Recorded with every scored row and
    in the scoring ledger, so a batch says which policy made its decisions."""
    return {
        "policy_id": str(getattr(risk_model, "policy_id", "") or ""),
        "policy_cutoff": float(risk_model.threshold),
        "policy_objective": str(getattr(risk_model, "policy_objective", "") or ""),
    }


def _predict(risk_model: RiskModelLike, df: pd.DataFrame, batch_size: int) -> np.ndarray:
    predict = risk_model.predict_proba
    # The artifact's predictor groups rows by token length into batches itself; pass the batch
    # size through when it takes one (a plain sklearn-like model does not).
    try:
        takes_batch = "batch_size" in inspect.signature(predict).parameters
    except (TypeError, ValueError):
        takes_batch = False
    raw = predict(df, batch_size=batch_size) if takes_batch else predict(df)
    p = np.asarray(raw, dtype=float).reshape(-1)
    version = getattr(risk_model, "version", "?")
    if p.shape[0] != len(df):
        raise RiskAppError(f"model {version}: returned {p.shape[0]} probabilities for {len(df)} applications")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise RiskAppError(f"model {version}: returned probabilities outside [0, 1] or NaN")
    return p


def score_applications(
    df: pd.DataFrame,
    risk_model: RiskModelLike,
    batch_size: int = 64,
    bands: Sequence[tuple[str, float]] | None = None,
) -> pd.DataFrame:
    """Score contract-valid applications: application_id, probability_of_default, risk_grade,
    decision ("decline" when PD >= the model's threshold), model_version, the policy (`policy_of`)
    and scored_at (UTC).

    Grades use `bands`, else the bands the model's credit policy named, else `GRADE_BANDS`."""
    bands = bands or grade_bands_of(risk_model)
    if ID_COLUMN not in df.columns:
        raise ConfigError(f"score_applications: input has no `{ID_COLUMN}` column")
    if batch_size < 1:
        raise ConfigError(f"score_applications: batch_size must be >= 1, got {batch_size}")
    threshold = float(risk_model.threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"model {risk_model.version}: threshold {threshold} is not a probability")
    p = _predict(risk_model, df, batch_size) if len(df) else np.zeros(0, dtype=float)
    scored_at = pd.Timestamp.now(tz="UTC")
    policy = policy_of(risk_model)
    return pd.DataFrame(
        {
            ID_COLUMN: df[ID_COLUMN].astype(str).to_numpy(),
            "probability_of_default": p,
            "risk_grade": pd.Series(assign_grades(p, bands), dtype=object),
            "decision": np.where(p >= threshold, "decline", "approve").astype(object),
            "model_version": str(risk_model.version),
            "policy_id": policy["policy_id"],
            "policy_cutoff": pd.Series([threshold] * len(p), dtype="float64"),
            "policy_objective": policy["policy_objective"],
            "scored_at": pd.Series([scored_at] * len(p), dtype="datetime64[ns, UTC]"),
        },
        columns=list(OUTPUT_COLUMNS),
    )


def grade_bands_of(risk_model: Any) -> Sequence[tuple[str, float]]:
    """The grade bands `risk_model`'s credit policy named, else the default `GRADE_BANDS`."""
    return getattr(risk_model, "grade_bands", None) or GRADE_BANDS


def check_scored_output(scored: pd.DataFrame, grades: Sequence[str] | None = None) -> None:
    """Validate against the ScoredApplication contract (its columns; `scored_at` is ours), with
    `grades` (the policy's band names, safest first) as the allowed risk grades."""
    # The contract is strict on its own columns; scored_at is run metadata it does not list.
    schema = scored_schema(tuple(grades) if grades else tuple(grade_names()))
    schema.validate(scored[list(SCORED_COLUMNS)], lazy=True)
