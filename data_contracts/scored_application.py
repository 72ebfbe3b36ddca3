"""Data contract for scoring output: one row per scored application.

`risk_app.scoring.batch.score_applications` returns a frame that must pass `ScoredApplication`
before it is written anywhere, so downstream consumers (the warehouse table, analysts'
exports) can rely on these columns, types and value sets.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

SCORED_CONTRACT_VERSION = "1.1.0"  # 1.1: the credit policy of each decision

# The default risk grades, lowest (A) to highest (E) probability of default. A credit policy may
# name its own bands (`risk_app.policy.credit.PolicyConfig.grade_bands`): validate its output with
# `scored_schema(grades)`, which checks the policy's names instead of these.
GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")
DECISIONS: tuple[str, ...] = ("approve", "decline")

SCORED_COLUMNS: tuple[str, ...] = (
    "application_id",
    "probability_of_default",
    "risk_grade",
    "decision",
    "model_version",
    "policy_id",
    "policy_cutoff",
    "policy_objective",
)


class ScoredApplication(pa.DataFrameModel):
    """A model's verdict on one application."""

    application_id: Series[str] = pa.Field(
        nullable=False, unique=True, str_length={"min_value": 1}, description="Id of the scored application."
    )
    probability_of_default: Series[float] = pa.Field(
        ge=0.0, le=1.0, nullable=False, description="Predicted probability that the applicant defaults."
    )
    risk_grade: Series[str] = pa.Field(
        isin=GRADES, description="Risk grade, safest first (A to E unless the policy names its own)."
    )
    decision: Series[str] = pa.Field(isin=DECISIONS, description="approve or decline at the model threshold.")
    model_version: Series[str] = pa.Field(
        nullable=False, str_length={"min_value": 1}, description="Version of the model that scored it."
    )
    policy_id: Series[str] = pa.Field(
        nullable=False, description="Id of the credit policy that decided (empty for a model without one)."
    )
    policy_cutoff: Series[float] = pa.Field(
        ge=0.0, le=1.0, nullable=False, description="The policy's cut-off: decline when PD >= it."
    )
    policy_objective: Series[str] = pa.Field(nullable=False, description="How the cut-off was chosen.")

    @pa.dataframe_check
    def decision_follows_cutoff(cls, df: pd.DataFrame) -> Series[bool]:
        """Declined exactly when PD >= the recorded cut-off: the recorded policy made the decision."""
        return (df["decision"] == "decline") == (df["probability_of_default"] >= df["policy_cutoff"])

    class Config:
        # Output is ours, so it is exact: an unexpected column means a scorer bug.
        strict = True
        coerce = True
        name = "ScoredApplication"


def scored_schema(grades: tuple[str, ...] = GRADES) -> pa.DataFrameSchema:
    """The contract with `grades` as the allowed risk grades (the policy's band names)."""
    schema = ScoredApplication.to_schema()
    if tuple(grades) == GRADES:
        return schema
    return schema.update_column("risk_grade", checks=[pa.Check.isin(list(grades))])


__all__ = [
    "DECISIONS",
    "GRADES",
    "SCORED_COLUMNS",
    "SCORED_CONTRACT_VERSION",
    "ScoredApplication",
    "scored_schema",
]
