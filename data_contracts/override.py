"""The override contract: an analyst's decision against the model's, on a scored application.

At a lender, analysts review the model's decisions and override some of them: they approve an
applicant the model declined (a low-side override) or decline one it approved (a high-side
override), and give a reason from a fixed list. An override file has one row per override:

    <id column of the data set>   the application id the application was scored under
    batch_id                      the scoring batch that decided it (`risk-app score` prints it;
                                  the sha256 of the scored file, `risk.scoring_batches.batch_id`)
    model_decision                what the model decided: approve or decline
    analyst_decision              what the analyst decided instead: approve or decline
    reason_code                   why, one of the deployment's reason codes (`reason_codes`)
    analyst                       who decided: an analyst reference, not a name
    decided_at                    when (a timestamp)

The columns' checks are here (pandera, lazily, so a whole bad file is reported in one pass):
the id refuses control and bidirectional-override characters as the data set's id does, the
decisions are one of `DECISIONS`, the reason code one of the list in force, the analyst
reference non-empty, the time readable. An override must override (the analyst's decision
differs from the model's) and one file may not decide one application twice; checks that need
the warehouse (ids never scored or scored in
another batch, another data set's batch, a model decision the ledger does not show,
contradicting or repeated overrides) live in `risk_app.overrides.ingest`, which quarantines
with the same table as every other contract.

    schema = override_schema(load_spec("german_credit"), reason_codes=DEFAULT_REASON_CODES)
    schema.validate(frame, lazy=True)
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa

from data_contracts.spec import DatasetSpec
from data_contracts.spec_schema import build_schema

OVERRIDE_CONTRACT_VERSION = "1.0.0"

BATCH_ID, MODEL_DECISION, ANALYST_DECISION = "batch_id", "model_decision", "analyst_decision"
REASON_CODE, ANALYST, DECIDED_AT = "reason_code", "analyst", "decided_at"
DECISIONS: tuple[str, ...] = ("approve", "decline")

# The reason codes a deployment gets unless its settings declare its own: the usual override
# reasons of a retail credit desk. Low side = approve a model decline, high side = the reverse.
DEFAULT_REASON_CODES: tuple[str, ...] = (
    "verified_income",  # income or employment verified beyond what the application shows
    "existing_relationship",  # a customer with a long, clean history at the lender
    "collateral_or_guarantor",  # security or a guarantor outside the application
    "policy_exception",  # approved under a documented exception
    "adverse_information",  # bureau, fraud or collections information the model did not see
    "affordability",  # the affordability assessment fails
    "incomplete_documents",  # documents missing or inconsistent
    "other",  # anything else; the analyst's comment is kept elsewhere
)


def override_columns(spec: DatasetSpec) -> tuple[str, ...]:
    """The columns of an override file of `spec`'s data set, in order."""
    return (spec.id_column, BATCH_ID, MODEL_DECISION, ANALYST_DECISION, REASON_CODE, ANALYST, DECIDED_AT)


def override_side(model_decision: pd.Series) -> pd.Series:
    """ "low" for an override of a model decline (the analyst approved), "high" for an override of
    a model approval (the analyst declined): the words credit-risk monitoring uses."""
    return model_decision.map({"decline": "low", "approve": "high"})


def override_schema(spec: DatasetSpec, reason_codes: Sequence[str]) -> pa.DataFrameSchema:
    """The pandera schema of an override file of `spec`'s data set (non-strict, coercing)."""
    if not reason_codes:
        raise ValueError("an override contract needs at least one reason code")
    # The application schema already knows how the spec's id is checked; take it from there.
    applications = build_schema(spec, require_target=False)
    return pa.DataFrameSchema(
        {
            spec.id_column: applications.columns[spec.id_column],
            BATCH_ID: pa.Column(
                str, pa.Check.str_matches(r"^[0-9a-f]{64}$"), nullable=False,
                description="The scoring batch (sha256 of the scored file).",
            ),
            MODEL_DECISION: pa.Column(
                str, pa.Check.isin(DECISIONS), nullable=False, description="What the model decided."
            ),
            ANALYST_DECISION: pa.Column(
                str, pa.Check.isin(DECISIONS), nullable=False, description="What the analyst decided."
            ),
            REASON_CODE: pa.Column(
                str, pa.Check.isin(list(reason_codes)), nullable=False, description="Why, from the list."
            ),
            ANALYST: pa.Column(
                str, pa.Check.str_length(1, 128), nullable=False, description="Analyst reference, not a name."
            ),
            DECIDED_AT: pa.Column("datetime64[ns]", nullable=False, description="When the analyst decided."),
        },
        strict=False,
        coerce=True,
        name=f"{spec.name}_overrides",
        description=f"Analyst overrides of {spec.name} v{spec.version} decisions "
        f"(override contract {OVERRIDE_CONTRACT_VERSION}).",
    )  # fmt: skip


__all__ = [
    "ANALYST",
    "ANALYST_DECISION",
    "BATCH_ID",
    "DECIDED_AT",
    "DECISIONS",
    "DEFAULT_REASON_CODES",
    "MODEL_DECISION",
    "OVERRIDE_CONTRACT_VERSION",
    "REASON_CODE",
    "override_columns",
    "override_schema",
    "override_side",
]
