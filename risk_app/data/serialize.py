"""Turn a loan application into the text a language model reads.

There is ONE template, here: `FIELD_LABELS` maps each contract column to a human label, and
`format_value` renders its value. Training, augmentation, scoring and reason codes all go
through `serialize_application` / `serialize_frame`, so the text a model was trained on is
exactly the text it scores. Each field becomes one clause, "Label: value.", and clauses are
joined by single spaces:

    Checking account: < 0 DM. Duration: 6 months. Credit history: critical account/other ...

Augmenters may shuffle clauses (`field_order`) or drop fields (`exclude`, e.g. the protected
attributes); `parse_clauses` splits a text back into clauses. The target is never serialized.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from data_contracts.loan_application import ID_COLUMN, NUMERIC_COLUMNS, TARGET_COLUMN
from risk_app.errors import ConfigError, RiskAppError

# Ordered: the default clause order is the column order of the contract / the source file.
FIELD_LABELS: dict[str, str] = {
    "status_of_existing_checking_account": "Checking account",
    "duration_in_month": "Duration",
    "credit_history": "Credit history",
    "purpose": "Purpose",
    "credit_amount": "Credit amount",
    "savings_account_and_bonds": "Savings",
    "present_employment_since": "Employed for",
    # These two are 1-4 codes in the UCI data (not percentages or years), so say so.
    "installment_rate_in_percentage_of_disposable_income": "Installment rate code (1-4)",
    "personal_status_and_sex": "Personal status and sex",
    "other_debtors_or_guarantors": "Other debtors or guarantors",
    "present_residence_since": "Residence duration code (1-4)",
    "property": "Property",
    "age_in_years": "Age",
    "other_installment_plans": "Other installment plans",
    "housing": "Housing",
    "number_of_existing_credits_at_this_bank": "Existing credits at this bank",
    "job": "Job",
    "number_of_people_being_liable_to_provide_maintenance_for": "Dependants",
    "telephone": "Telephone",
    "foreign_worker": "Foreign worker",
}

# Units for numeric fields: (singular, plural). A code without a unit is printed bare.
_UNITS: dict[str, tuple[str, str]] = {
    "duration_in_month": ("month", "months"),
    "credit_amount": ("DM", "DM"),
    "age_in_years": ("year", "years"),
}

_NUMERIC_FIELDS = frozenset(NUMERIC_COLUMNS)

# Never text: the label would leak into the input, the id is noise.
_NEVER_SERIALIZED = frozenset({TARGET_COLUMN, "default", ID_COLUMN})

# Splits "A: x. B: y." before each "Label: " that follows a period. A label holds no '.' or
# ':', so a period inside a value ("approx. 3") does not start a new clause.
_CLAUSE_BOUNDARY = re.compile(r"(?<=\.)\s+(?=[^\s.:][^.:]*:\s)")


def clean_category(value: str) -> str:
    """Make a raw UCI category string readable; the meaning is unchanged.

    "... < 0 DM" -> "< 0 DM", "0 <= ... < 200 DM" -> "0 to < 200 DM",
    "male : single" -> "male, single", "account/ other" -> "account/other".
    """
    text = value.strip()
    if text.startswith("... "):
        text = text[4:]
    text = text.replace(" <= ... < ", " to < ")
    text = text.replace(" : ", ", ")
    text = re.sub(r"(\w)/ ", r"\1/", text)
    text = text.replace("customers name", "customer's name")
    # A value must not end a clause early or look like a new label (see _CLAUSE_BOUNDARY).
    return text.replace(": ", ", ").rstrip(".")


def format_value(column: str, value: Any) -> str:
    """Render one field's value as it appears after "Label: "."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        text = str(int(number)) if number.is_integer() else f"{number:g}"
        unit = _UNITS.get(column)
        if unit is None:
            return text
        word = unit[0] if number == 1 else unit[1]
        return f"{text} {word}"
    if hasattr(value, "item"):  # numpy scalar -> python scalar, then format as above
        return format_value(column, value.item())
    text = str(value)
    if column in _NUMERIC_FIELDS:
        # A numeric field given as text (e.g. straight from a CSV read as str).
        try:
            return format_value(column, float(text))
        except ValueError:
            pass
    return clean_category(text)


def _resolve_fields(field_order: Sequence[str] | None, exclude: Iterable[str]) -> list[str]:
    excluded = set(exclude)
    unknown = sorted((excluded | set(field_order or ())) - set(FIELD_LABELS) - _NEVER_SERIALIZED)
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown}; serializable fields are {list(FIELD_LABELS)}")
    order = list(field_order) if field_order is not None else list(FIELD_LABELS)
    forbidden = sorted(set(order) & _NEVER_SERIALIZED)
    if forbidden:
        raise ConfigError(f"field(s) {forbidden} are never serialized (label or id)")
    if len(set(order)) != len(order):
        raise ConfigError(f"field_order lists a field twice: {order}")
    return [name for name in order if name not in excluded]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def serialize_application(
    row: Mapping[str, Any] | pd.Series,
    field_order: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> str:
    """One application as text: "Label: value." clauses joined by single spaces.

    `field_order` chooses which fields appear and in what order (default: all, contract order);
    `exclude` drops fields from that. The row must hold every chosen field: a missing value is
    an error, not a silently shorter text, because validated rows never have one.
    """
    fields = _resolve_fields(field_order, exclude)
    clauses = []
    for name in fields:
        value = row.get(name) if hasattr(row, "get") else None
        if _is_missing(value):
            ident = row.get(ID_COLUMN, "?") if hasattr(row, "get") else "?"
            raise RiskAppError(f"application {ident}: field '{name}' is missing; validate the data first")
        clauses.append(f"{FIELD_LABELS[name]}: {format_value(name, value)}.")
    return " ".join(clauses)


def serialize_frame(
    df: pd.DataFrame,
    field_order: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> pd.Series:
    """Serialize every row of `df`; the result shares `df`'s index and is named "text"."""
    fields = _resolve_fields(field_order, exclude)
    missing = [name for name in fields if name not in df.columns]
    if missing:
        raise RiskAppError(f"cannot serialize: columns {missing} are missing from the frame")
    if df.empty:
        return pd.Series([], index=df.index, dtype=object, name="text")
    # Column-wise: format each distinct value once, then concatenate; same text as the per-row
    # function (a test asserts it), much faster on large frames.
    parts = []
    for name in fields:
        column = df[name]
        if column.isna().any():
            first = column[column.isna()].index[0]
            ident = df.at[first, ID_COLUMN] if ID_COLUMN in df.columns else first
            raise RiskAppError(f"application {ident}: field '{name}' is missing; validate the data first")
        rendered = {value: format_value(name, value) for value in column.unique()}
        parts.append(FIELD_LABELS[name] + ": " + column.map(rendered) + ".")
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part
    return text.rename("text")


def parse_clauses(text: str) -> list[str]:
    """Split a serialized text back into its "Label: value." clauses (order kept)."""
    stripped = text.strip()
    if not stripped:
        return []
    return [clause.strip() for clause in _CLAUSE_BOUNDARY.split(stripped) if clause.strip()]


def clause_label(clause: str) -> str:
    """The label of one clause ("Age: 67 years." -> "Age")."""
    return clause.split(":", 1)[0].strip()


LABEL_TO_FIELD: dict[str, str] = {label: name for name, label in FIELD_LABELS.items()}

__all__ = [
    "FIELD_LABELS",
    "LABEL_TO_FIELD",
    "clause_label",
    "clean_category",
    "format_value",
    "parse_clauses",
    "serialize_application",
    "serialize_frame",
]
