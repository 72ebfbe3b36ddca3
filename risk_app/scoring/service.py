"""Scoring as a service call: resolve a model reference, score a frame, attach reason codes.

The Dagster scoring asset and `risk-app score` both go through here, so a batch is scored
the same way whichever door it came in by.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from risk_app.data.serialize import field_labels
from risk_app.data.validate import ID_COLUMN
from risk_app.explain.reasons import reason_codes
from risk_app.registry.artifact import load_risk_model
from risk_app.registry.mlflow_resolve import resolve_model
from risk_app.scoring.batch import score_applications


def load_model(ref: str = "champion", model_name: str = "credit_risk_model") -> Any:
    """A RiskModel from an alias, a version number or a local artifact folder."""
    resolved = resolve_model(ref, name=model_name)
    model = load_risk_model(resolved.local_artifact_dir)
    if resolved.name and resolved.version:  # a registry version, not a local folder
        model.version = f"{resolved.name}/{resolved.version}"
    return model


# Declined rows explained at a time (a row is scored once per field, 17 for German credit).
OCCLUSION_ROWS = 2_000
# The columns of one reason k: `reason_<k><suffix>` (label, field, value as read, strength).
REASON_COLUMN_TYPES: dict[str, str] = {
    "": "object", "_field": "object", "_value": "object", "_strength": "float64",
}  # fmt: skip


def model_fields(risk_model: Any) -> list[str]:
    """The serialized fields the model was trained on (protected ones may be left out)."""
    order = risk_model.field_order or list(field_labels(getattr(risk_model, "dataset_spec", None)))
    excluded = set(risk_model.exclude_fields)
    return [name for name in order if name not in excluded]


def occlusion_reasons(
    df: pd.DataFrame, risk_model: Any, top_k: int, *, scores: np.ndarray | None = None
) -> pd.DataFrame:
    """Reason codes for `df` (declined rows) by occlusion over the model's text fields: the
    default explainer for models that bring no `reason_codes` method of their own. `scores`:
    the rows' P(default) when already known (their full texts are then not scored again)."""
    # In slices: each row brings one text per field, and their token ids are the memory peak.
    wides = []
    for start in range(0, len(df), OCCLUSION_ROWS):
        part = slice(start, start + OCCLUSION_ROWS)
        codes = reason_codes(
            df.iloc[part], risk_model, top_k=top_k, only_declined=False, field_order=model_fields(risk_model),
            spec=getattr(risk_model, "dataset_spec", None), scores=None if scores is None else scores[part],
        )  # fmt: skip
        wides.append(codes.wide)
    return pd.concat(wides) if len(wides) > 1 else wides[0]


def explain_declines(df: pd.DataFrame, risk_model: Any, top_k: int, scores: np.ndarray) -> pd.DataFrame:
    """Reason codes for declined rows (`scores`: their P(default)): the model's own
    `reason_codes(df, top_k=...)` when it has one, else occlusion.

    A lookup, not a list of model kinds: a model (a hybrid LLM + LightGBM stack, say) that
    knows better how to explain itself just defines the method and is used as it is."""
    own = getattr(risk_model, "reason_codes", None)
    if callable(own):
        codes = own(df, top_k=top_k)
        return codes.wide if hasattr(codes, "wide") else codes
    return occlusion_reasons(df, risk_model, top_k, scores=scores)


def score_with_reasons(
    df: pd.DataFrame, risk_model: Any, top_k: int = 4, batch_size: int = 64
) -> pd.DataFrame:
    """Scores plus the principal reasons (adverse-action reasons) beside each declined row.

    The reasons come from `explain_declines`: the model's own `reason_codes(df, top_k=...)`
    (returning a frame with `application_id` and `reason_<k>`, `reason_<k>_field`,
    `reason_<k>_value`, `reason_<k>_strength` columns, or a `ReasonCodes`) when it has one,
    else occlusion over its text fields (the rows' scores are reused, not computed again)."""
    scored = score_applications(df, risk_model, batch_size=batch_size)
    if top_k < 1:
        return scored
    declined = (scored["decision"] == "decline").to_numpy()
    if declined.any():
        p = scored["probability_of_default"].to_numpy()[declined]
        wide = explain_declines(df.loc[declined], risk_model, top_k, p)
        reason_columns = [c for c in wide.columns if str(c).startswith("reason_")]
        wide = wide[["application_id", *reason_columns]].rename(columns={"application_id": ID_COLUMN})
        wide[ID_COLUMN] = wide[ID_COLUMN].astype(str)
        scored = scored.merge(wide, on=ID_COLUMN, how="left")
    # Every batch has the same columns, declines or not, so chunks of one file write one table.
    for k in range(1, top_k + 1):
        for suffix, dtype in REASON_COLUMN_TYPES.items():
            name = f"reason_{k}{suffix}"
            if name not in scored.columns:
                scored[name] = pd.Series([None] * len(scored), index=scored.index, dtype=dtype)
    return scored
