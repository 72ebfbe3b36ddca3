"""Turn a loan application into the text a language model reads, as its data set's spec says.

There is ONE template, derived from the spec (`data_contracts.spec.DatasetSpec`): each feature
column, in spec order, becomes one clause "Label: value." and clauses are joined by single
spaces:

    Checking account: < 0 DM. Duration: 6 months. Credit history: critical account/other ...

How a value reads comes from the spec too: a number with the column's unit (singular for 1,
plural otherwise), a category as the text the spec gives for it ("... < 0 DM" reads "< 0 DM"),
a boolean as yes/no, a date as YYYY-MM-DD. Free text as `risk_app.data.text.read_text` makes it:
cleaned by the column's rules, capped at `max_chars`, fitted to its token budget `max_tokens`
(a cut ends with "…"), and a missing or emptied text reads the column's `text.empty`. A free-text
column with `text.position: end` comes after every other clause (in spec order among such
columns), whatever order a caller asks for. A missing value of any other nullable column reads
"unknown". Generic safety rules keep a value from faking a clause: ": " inside a value reads ", "
and a trailing "." is dropped. A data set without free text serializes exactly as before those
rules existed (a golden test pins German credit's texts).

Training, augmentation, scoring and reason codes all go through `serialize_application` /
`serialize_frame`, so the text a model was trained on is exactly the text it scores. The id,
the target, the date column and the spec's excluded columns are never serialized. Augmenters
may shuffle clauses (`field_order`) or drop fields (`exclude`); `parse_clauses` splits a text
back into clauses.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_model import BOOLEAN_VALUES
from risk_app.data.text import clause_safe, read_text
from risk_app.errors import ConfigError, RiskAppError

MISSING_TEXT = "unknown"

# Splits "A: x. B: y." before each "Label: " that follows a period. A label holds no '.' or
# ':', so a period inside a value ("approx. 3") does not start a new clause.
_CLAUSE_BOUNDARY = re.compile(r"(?<=\.)\s+(?=[^\s.:][^.:]*:\s)")


def template_order(spec: DatasetSpec, fields: Sequence[str]) -> list[str]:
    """`fields` in the order the text shows them: free text with `position: end` moved last."""
    at_end = {name for name in fields if name in spec.text_columns and spec.text_spec(name).position == "end"}
    return [name for name in fields if name not in at_end] + [name for name in fields if name in at_end]


def field_labels(spec: DatasetSpec | str | None = None) -> dict[str, str]:
    """Feature column -> label, in template order."""
    spec = load_spec(spec)
    return {name: spec.columns[name].label for name in template_order(spec, spec.feature_columns)}


def label_to_field(spec: DatasetSpec | str | None = None) -> dict[str, str]:
    """Label -> feature column (labels are unique: the spec checks it)."""
    return {label: name for name, label in field_labels(spec).items()}


# A value must not end a clause early or look like a new label (see _CLAUSE_BOUNDARY).
_clause_safe = clause_safe


def _format_number(number: float) -> str:
    if number.is_integer():
        return str(int(number))
    # Positional, at most 4 decimals: 0.1 stays "0.1", 1234567.5 does not become 1.23457e+06.
    return f"{number:.4f}".rstrip("0").rstrip(".")


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def format_value(column: str, value: Any, spec: DatasetSpec | str | None = None) -> str:
    """Render one field's value as it appears after "Label: "."""
    spec = load_spec(spec)
    col = spec.columns.get(column)
    if col is None:
        raise ConfigError(f"data set {spec.name}: no column {column!r}")
    if col.type == "text":
        return read_text(value, column, spec, count_all=False).text
    if _is_missing(value):
        return MISSING_TEXT
    if hasattr(value, "item") and not isinstance(value, (str, pd.Timestamp)):  # numpy scalar
        value = value.item()
    if col.is_numeric:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return _clause_safe(str(value))
        text = _format_number(number)
        if col.unit is None:
            return text
        return f"{text} {col.unit.singular if number == 1 else col.unit.plural}"
    if col.type == "category":
        raw = str(value)
        return (col.categories or {}).get(raw, _clause_safe(raw.strip()))
    if col.type == "boolean":
        flag = value if isinstance(value, bool) else BOOLEAN_VALUES.get(str(value).strip().lower())
        return _clause_safe(str(value)) if flag is None else ("yes" if flag else "no")
    if col.type == "date":
        if isinstance(value, (dt.date, pd.Timestamp)):
            return value.strftime("%Y-%m-%d")
        return _clause_safe(str(value))
    raise ConfigError(f"data set {spec.name}: column {column!r} has unknown type {col.type!r}")


def _resolve_fields(
    spec: DatasetSpec, field_order: Sequence[str] | None, exclude: Iterable[str]
) -> list[str]:
    features = list(spec.feature_columns)
    never = set(spec.columns) - set(features) | {"default"}
    excluded = set(exclude)
    unknown = sorted((excluded | set(field_order or ())) - set(features) - never)
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown}; serializable fields are {features}")
    order = list(field_order) if field_order is not None else features
    forbidden = sorted(set(order) & never)
    if forbidden:
        raise ConfigError(f"field(s) {forbidden} are never serialized (label, id, date or excluded)")
    if len(set(order)) != len(order):
        raise ConfigError(f"field_order lists a field twice: {order}")
    return template_order(spec, [name for name in order if name not in excluded])


def _missing_error(spec: DatasetSpec, ident: Any, name: str) -> RiskAppError:
    return RiskAppError(f"application {ident}: field '{name}' is missing; validate the data first")


def serialize_application(
    row: Mapping[str, Any] | pd.Series,
    field_order: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
    spec: DatasetSpec | str | None = None,
) -> str:
    """One application as text: "Label: value." clauses joined by single spaces.

    `field_order` chooses which fields appear and in what order (default: all features, spec
    order); `exclude` drops fields from that. A missing value of a non-nullable field is an
    error, not a silently shorter text, because validated rows never have one.
    """
    spec = load_spec(spec)
    clauses = []
    for name in _resolve_fields(spec, field_order, exclude):
        value = row.get(name) if hasattr(row, "get") else None
        if _is_missing(value) and not spec.columns[name].nullable:
            ident = row.get(spec.id_column, row.get("application_id", "?")) if hasattr(row, "get") else "?"
            raise _missing_error(spec, ident, name)
        clauses.append(f"{spec.columns[name].label}: {format_value(name, value, spec)}.")
    return " ".join(clauses)


def serialize_frame(
    df: pd.DataFrame,
    field_order: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
    spec: DatasetSpec | str | None = None,
) -> pd.Series:
    """Serialize every row of `df`; the result shares `df`'s index and is named "text"."""
    spec = load_spec(spec)
    fields = _resolve_fields(spec, field_order, exclude)
    missing = [name for name in fields if name not in df.columns]
    if missing:
        raise RiskAppError(f"cannot serialize: columns {missing} are missing from the frame")
    if df.empty or not fields:
        return pd.Series([""] * len(df), index=df.index, dtype=object, name="text")
    # Column-wise: format each distinct value once, then concatenate; same text as the per-row
    # function (a test asserts it), much faster on large frames.
    parts = []
    for name in fields:
        column = df[name]
        if column.isna().any() and not spec.columns[name].nullable:
            first = column[column.isna()].index[0]
            id_col = spec.id_column if spec.id_column in df.columns else "application_id"
            raise _missing_error(spec, df.at[first, id_col] if id_col in df.columns else first, name)
        rendered = {value: format_value(name, value, spec) for value in column.dropna().unique()}
        text = column.map(rendered).astype(object).where(column.notna(), format_value(name, None, spec))
        parts.append(spec.columns[name].label + ": " + text + ".")
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


__all__ = [
    "MISSING_TEXT",
    "clause_label",
    "field_labels",
    "format_value",
    "label_to_field",
    "parse_clauses",
    "serialize_application",
    "serialize_frame",
    "template_order",
]
