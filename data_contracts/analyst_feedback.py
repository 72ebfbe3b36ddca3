"""Data contract for analyst feedback on model decisions (the input of the `rlhf` method).

One row says: for application `application_id` the model decided `model_decision`, and a
credit analyst who reviewed it decided `analyst_decision` (with an optional confidence and a
free-text comment). The rlhf reward model learns from these as preference pairs: the
application followed by the analyst's decision is preferred to the same application followed
by the other decision.

`validate_feedback(df, source)` runs the schema lazily and raises one `DataFileError` that
names every failing row and column; `load_feedback(path)` reads a CSV and validates it. Bump
`FEEDBACK_CONTRACT_VERSION` whenever a column or rule changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from pandera.typing import Series

from risk_app.errors import DataFileError

FEEDBACK_CONTRACT_VERSION = "1.0.0"

DECISIONS: tuple[str, ...] = ("approve", "decline")
# Decision <-> classifier label: label 1 = default (bad) is declined, label 0 = good is approved.
DECISION_TO_LABEL: dict[str, int] = {"approve": 0, "decline": 1}
LABEL_TO_DECISION: dict[int, str] = {v: k for k, v in DECISION_TO_LABEL.items()}
REQUIRED_COLUMNS: tuple[str, ...] = ("application_id", "model_decision", "analyst_decision")
OPTIONAL_COLUMNS: tuple[str, ...] = ("confidence", "comment")
# Rows reported per error message; a wholly bad file still gives a readable message.
_MAX_REPORTED = 10


class AnalystFeedback(pa.DataFrameModel):
    """One reviewed decision per row."""

    application_id: Series[str] = pa.Field(
        nullable=False, str_length={"min_value": 1}, description="Id of the reviewed application."
    )
    model_decision: Series[str] = pa.Field(isin=DECISIONS, description="What the model decided.")
    analyst_decision: Series[str] = pa.Field(isin=DECISIONS, description="What the analyst decided.")
    confidence: Optional[Series[float]] = pa.Field(  # noqa: UP045 - pandera needs typing.Optional
        ge=0.0, le=1.0, nullable=True, description="Analyst's confidence in their decision, 0-1."
    )
    comment: Optional[Series[str]] = pa.Field(  # noqa: UP045 - pandera needs typing.Optional
        nullable=True, description="Free-text reason given by the analyst."
    )

    class Config:
        strict = "filter"  # extra columns (reviewer, timestamp ...) are allowed and dropped
        coerce = True


def _describe_failures(cases: pd.DataFrame, frame: pd.DataFrame) -> str:
    parts = []
    for _, case in cases.head(_MAX_REPORTED).iterrows():
        index = case["index"]
        # Row numbers are 1-based data rows (header excluded), as in the source file.
        row = f"row {int(index) + 1}" if isinstance(index, int | float) and not pd.isna(index) else "file"
        column = case["column"] if isinstance(case["column"], str) else "<frame>"
        parts.append(f"{row}, column '{column}': {case['check']} (got {case['failure_case']!r})")
    more = len(cases) - _MAX_REPORTED
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate_feedback(df: pd.DataFrame, source: str | Path = "<feedback>") -> pd.DataFrame:
    """The contract-typed frame, or a `DataFileError` naming every bad row / column of `source`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataFileError(
            source, f"analyst feedback lacks column(s) {missing}; required: {list(REQUIRED_COLUMNS)}"
        )
    if df.empty:
        raise DataFileError(source, "analyst feedback has no rows")
    frame = df.reset_index(drop=True).copy()
    for column in ("model_decision", "analyst_decision"):
        # Case and stray spaces are not worth rejecting a row for.
        frame[column] = frame[column].where(
            frame[column].isna(), frame[column].astype(str).str.strip().str.lower()
        )
    try:
        return AnalystFeedback.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise DataFileError(
            source, f"analyst feedback fails its contract: {_describe_failures(exc.failure_cases, frame)}"
        ) from None


def load_feedback(path: str | Path) -> pd.DataFrame:
    """Read a feedback CSV (all text, so bad values are reported per row) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "analyst feedback file does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataFileError(path, "file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot parse as CSV: {' '.join(str(exc).split())}") from None
    return validate_feedback(raw, path)
