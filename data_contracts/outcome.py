"""The outcome contract: what a lender sends back months after a loan was booked.

An outcome file has one row per booked application:

    <id column of the data set>   the application id the loan was scored under
    <target column of the spec>   the outcome in the data set's own labels (e.g. creditability
                                  good/bad, or default 0/1); the spec says which value is default
    observation_date              when the outcome was observed (a date)

The columns and their checks are taken from the data set's spec (`DatasetSpec`), so a lender's
outcome file uses the same id and labels as its applications: the id column refuses control
and bidirectional-override characters and must be unique within the file, the label must be
one of the spec's values, the date must be readable. Checks that need the warehouse (unknown
ids, declined applications, an outcome that contradicts an earlier one, a date before the
application) live in `risk_app.outcomes.ingest`, which quarantines with the same table.

    schema = outcome_schema(load_spec("german_credit"))
    schema.validate(frame, lazy=True)
"""

from __future__ import annotations

import pandera.pandas as pa

from data_contracts.spec import DatasetSpec
from data_contracts.spec_schema import build_schema

OBSERVATION_DATE = "observation_date"


def outcome_columns(spec: DatasetSpec) -> tuple[str, str, str]:
    """(id column, label column, observation date column) of the data set's outcome files."""
    return spec.id_column, spec.target.column, OBSERVATION_DATE


def outcome_schema(spec: DatasetSpec) -> pa.DataFrameSchema:
    """The pandera schema of an outcome file of `spec`'s data set (non-strict, coercing)."""
    # The application schema already knows how the spec's id and label are checked; the
    # outcome contract takes those two columns from it, so both contracts agree by construction.
    applications = build_schema(spec, require_target=True)
    id_column, label_column, date_column = outcome_columns(spec)
    return pa.DataFrameSchema(
        {
            id_column: applications.columns[id_column],
            label_column: applications.columns[label_column],
            date_column: pa.Column(
                "datetime64[ns]", nullable=False, description="When the outcome was observed."
            ),
        },
        strict=False,
        coerce=True,
        name=f"{spec.name}_outcomes",
        description=f"Outcomes of {spec.name} v{spec.version} applications (one row per booked loan).",
    )


__all__ = ["OBSERVATION_DATE", "outcome_columns", "outcome_schema"]
