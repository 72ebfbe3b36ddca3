"""The cross-field rules of a dataset spec: every mistake a spec can make that one field cannot show.

A category list on a numeric column, min > max, a target that is not a column, a protected
group that names unknown categories, two columns with one label ... Each function returns its
problems as "field.path: problem" strings rather than raising at the first, so that loading a
spec reports every mistake at once (`DatasetSpec` in `data_contracts.spec_model` joins them
into one validation error, which `SpecError` prefixes with the spec file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_contracts.spec_parse import parse_problems
from data_contracts.spec_values import BOOLEAN_VALUES, RESERVED_COLUMNS, canonical_value
from risk_app.storage.sql import SAFE_NAME_RULE, is_safe_name

# Limits that keep a hostile or mistaken spec from taking the validator down.
MAX_CATEGORIES = 5_000
MAX_COLUMNS = 2_000

if TYPE_CHECKING:
    from data_contracts.spec_model import ColumnSpec, DatasetSpec, ProtectedSpec


def column_problems(name: str, col: ColumnSpec) -> list[str]:
    """What is wrong within one column: options that do not fit its type, labels that break parsing."""
    # A column name travels into SQL (the warehouse's tables): only names of a safe shape, and
    # they are still quoted there (risk_app.storage.sql).
    if not is_safe_name(name):
        shown = repr(name[:40]) + ("…" if len(name) > 40 else "")
        return [f"columns.{shown}: the column name is not allowed: use {SAFE_NAME_RULE}"]
    where = f"columns.{name}"
    if len(col.categories or {}) > MAX_CATEGORIES:
        # Each category is a check on every row and a level of every baseline's encoder.
        return [
            f"{where}.categories: {len(col.categories or {}):,} categories; at most {MAX_CATEGORIES:,} "
            "are allowed (declare a column with that many values as type text)"
        ]
    problems = []
    if col.categories is not None and col.type != "category":
        problems.append(f"{where}.categories: categories are only for category columns, not {col.type}")
    if col.type == "category" and not col.categories:
        problems.append(f"{where}.categories: a category column needs its allowed values (or use type text)")
    for bound in ("min", "max"):
        if getattr(col, bound) is not None and not col.is_numeric:
            problems.append(f"{where}.{bound}: a range is only for integer or float columns, not {col.type}")
    if col.min is not None and col.max is not None and col.min > col.max:
        problems.append(f"{where}: min {col.min:g} is greater than max {col.max:g}")
    if col.unit is not None and not col.is_numeric:
        problems.append(f"{where}.unit: a unit is only for integer or float columns")
    if col.perturb and not (col.is_numeric and col.min is not None and col.max is not None):
        problems.append(f"{where}.perturb: only a numeric column with min and max can be perturbed")
    if col.parse is not None:
        problems += parse_problems(where, col.parse, col.type)
    if col.max_chars is not None and col.type != "text":
        problems.append(f"{where}.max_chars: only free-text columns are truncated")
    if col.text is not None and col.type != "text":
        problems.append(f"{where}.text: cleaning and token budgets are for free-text columns, not {col.type}")
    if col.text is not None and _unsafe_value_text(col.text.empty):
        problems.append(
            f"{where}.text.empty: {col.text.empty!r} may not contain ': ', end with '.' or have "
            "surrounding spaces"
        )
    # The text is "Label: value." clauses; a ':' or '.' in a label would break clause parsing.
    if any(ch in col.label for ch in ".:") or col.label != col.label.strip():
        problems.append(f"{where}.label: {col.label!r} may not contain '.' or ':' or surrounding spaces")
    for value, text in (col.categories or {}).items():
        if ": " in text or text.rstrip() != text or text.endswith(".") or not text:
            problems.append(
                f"{where}.categories.{value}: text {text!r} may not be empty, contain ': ' or end with '.'"
            )
    return problems


def _unsafe_value_text(text: str) -> bool:
    """Would this fixed value text end a clause early or fake a label (see risk_app.data.serialize)?"""
    return ": " in text or text.strip() != text or text.endswith(".") or not text


def role_problems(spec: DatasetSpec) -> list[str]:
    """What is wrong across columns: id, target, protected, exclude and date roles, reserved names, labels."""
    cols = spec.columns
    if len(cols) > MAX_COLUMNS:
        return [f"columns: {len(cols):,} columns; a spec may declare at most {MAX_COLUMNS:,}"]
    problems = []
    if spec.id_column not in cols:
        problems.append(f"id_column: {spec.id_column!r} is not a column; declare it (type text)")
    elif cols[spec.id_column].type not in ("text", "integer"):
        problems.append(f"id_column: {spec.id_column!r} must be of type text or integer")
    target = cols.get(spec.target.column)
    if target is None:
        problems.append(f"target.column: {spec.target.column!r} is not a column")
    elif target.type not in ("category", "integer", "boolean"):
        problems.append(f"target.column: {spec.target.column!r} must be category, integer or boolean")
    elif target.type == "category" and canonical_value(spec.target.positive) not in {
        canonical_value(label) for label in target.categories or {}
    }:
        problems.append(
            f"target.positive: {spec.target.positive!r} is not one of the target's categories "
            f"{list(target.categories or {})}"
        )
    elif target.type == "boolean" and canonical_value(spec.target.positive).lower() not in BOOLEAN_VALUES:
        problems.append(f"target.positive: {spec.target.positive!r} is not a boolean value")
    for i, item in enumerate(spec.protected):
        problems += protected_problems(f"protected[{i}]", item, cols)
    for i, name in enumerate(spec.exclude):
        if name not in cols:
            problems.append(f"exclude[{i}]: {name!r} is not a column")
        elif name in (spec.id_column, spec.target.column):
            problems.append(f"exclude[{i}]: {name!r} is the id or target, which the model never sees anyway")
    if spec.date_column is not None:
        if spec.date_column not in cols:
            problems.append(f"date_column: {spec.date_column!r} is not a column")
        elif cols[spec.date_column].type != "date":
            problems.append(f"date_column: {spec.date_column!r} must be of type date")
    if spec.target.column == "default" and target is not None and target.type != "integer":
        # The library writes 0/1 into `default`; a yes/no column of that name would be overwritten.
        problems.append("target.column: a target named 'default' must be an integer 0/1 column; rename it")
    allowed = {spec.target.column: "default", spec.id_column: "application_id"}
    for name in cols:
        if name in RESERVED_COLUMNS and allowed.get(name) != name:
            problems.append(
                f"columns.{name}: the name {name!r} is reserved by the library; rename the column"
            )
    # With a mistyped id_column the real id column looks like free text; one message is enough.
    for name in spec.text_columns if spec.id_column in cols else ():
        if cols[name].max_chars is None:
            problems.append(
                f"columns.{name}.max_chars: a free-text column needs max_chars (the most characters read "
                "from a cell; text.max_tokens sets a budget in tokens)"
            )
    labels: dict[str, str] = {}
    for name, col in cols.items():
        if col.label in labels:
            problems.append(f"columns.{name}.label: {col.label!r} is also the label of {labels[col.label]!r}")
        labels[col.label] = name
    return problems


def protected_problems(where: str, item: ProtectedSpec, cols: dict[str, ColumnSpec]) -> list[str]:
    """What is wrong with one protected attribute's grouping (bands or a category mapping)."""
    col = cols.get(item.column)
    if col is None:
        return [f"{where}.column: {item.column!r} is not a column"]
    problems = []
    if item.edges is not None and item.groups is not None:
        problems.append(f"{where}: give edges (numeric bands) or groups (category mapping), not both")
    if item.edges is not None:
        if not col.is_numeric:
            problems.append(f"{where}.edges: bands need a numeric column; {item.column!r} is {col.type}")
        if not item.edges or any(b <= a for a, b in zip(item.edges, item.edges[1:], strict=False)):
            problems.append(f"{where}.edges: must be a non-empty, strictly increasing list")
    if item.groups is not None:
        if col.type != "category":
            problems.append(
                f"{where}.groups: a mapping needs a category column; {item.column!r} is {col.type}"
            )
        else:
            listed = [v for values in item.groups.values() for v in values]
            unknown = sorted(set(listed) - set(col.categories or {}))
            if unknown:
                problems.append(f"{where}.groups: {unknown} are not categories of {item.column!r}")
            missing = sorted(set(col.categories or {}) - set(listed))
            if missing:
                problems.append(f"{where}.groups: categories {missing} of {item.column!r} are in no group")
    return problems
