"""Build the pandera schema of a data set from its spec.

One `pa.Column` per spec column: integer -> int64 (Int64 when nullable), float -> float64,
category -> str with `isin` over the declared values, boolean -> str with `isin` over the
accepted spellings (true/false, yes/no, 1/0), date -> datetime64, text -> str. `coerce=True`
turns CSV text into those types and reports an uncoercible cell as a per-row failure; the id
column is unique and non-empty. The id and free-text columns refuse control characters and
Unicode bidirectional overrides (U+202E and friends): they can make a quarantine report or an
analyst's screen show something other than what the model reads.

The schema is non-strict: extra columns (a vendor's notes, `source_row`) are allowed and
ignored; `risk_app.data.validate` keeps only spec columns.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pandera.pandas as pa

from data_contracts.spec_model import BOOLEAN_VALUES, ColumnSpec, DatasetSpec
from data_contracts.spec_parse import cell_parser

# C0/C1 controls (tab, newline and carriage return are allowed in free text only), and the
# bidirectional marks, embeddings, overrides and isolates.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL_ANY = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_TEXT = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]")
CONTROL_CHECK_NAME = "no_control_or_bidi_characters"


def _no_control_characters(pattern: re.Pattern[str]) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        text = series.astype("string")
        return ~text.str.contains(pattern, regex=True).fillna(False).astype(bool)

    return pa.Check(
        check, name=CONTROL_CHECK_NAME, error="contains control or bidirectional-override characters"
    )


def _bound(value: float) -> float | int:
    # 18, not 18.0, so quarantine reasons read as the spec was written.
    return int(value) if float(value).is_integer() else value


def _range_checks(col: ColumnSpec) -> list[pa.Check]:
    checks = []
    if col.min is not None:
        checks.append(pa.Check.ge(_bound(col.min)))
    if col.max is not None:
        checks.append(pa.Check.le(_bound(col.max)))
    return checks


def _boolean_spellings() -> list[str]:
    return sorted({s for v in BOOLEAN_VALUES for s in (v, v.upper(), v.capitalize())})


def column_schema(
    name: str, col: ColumnSpec, *, required: bool = True, nullable: bool | None = None
) -> pa.Column:
    """The pandera column for one spec column."""
    nullable = col.nullable if nullable is None else nullable
    kwargs: dict[str, Any] = {"nullable": nullable, "required": required}
    kwargs["description"] = col.description or col.label
    parser = cell_parser(col.parse, col.type)
    if parser is not None:  # before coercion: "$60,000.00" becomes 60000.0, "28-Feb-97" a date
        kwargs["parsers"] = pa.Parser(parser)
    if col.type == "integer":
        return pa.Column("Int64" if nullable else "int64", _range_checks(col), **kwargs)
    if col.type == "float":
        return pa.Column("float64", _range_checks(col), **kwargs)
    if col.type == "category":
        return pa.Column(str, pa.Check.isin(list(col.categories or {})), **kwargs)
    if col.type == "boolean":
        return pa.Column(str, pa.Check.isin(_boolean_spellings()), **kwargs)
    if col.type == "date":
        return pa.Column("datetime64[ns]", **kwargs)
    return pa.Column(str, _no_control_characters(_CONTROL_TEXT), **kwargs)


def build_schema(spec: DatasetSpec, require_target: bool = True) -> pa.DataFrameSchema:
    """The data set's schema; with `require_target` the label is required and non-null."""
    columns: dict[str, pa.Column] = {}
    for name, col in spec.columns.items():
        if name == spec.id_column:
            # Ids are text whatever the file holds (the loader normalizes 7.0 to "7").
            columns[name] = pa.Column(
                str,
                [pa.Check.str_length(min_value=1), _no_control_characters(_CONTROL_ANY)],
                nullable=False,
                unique=True,
                description="Unique application id.",
            )
        elif name == spec.target.column:
            columns[name] = column_schema(name, col, required=require_target, nullable=not require_target)
        else:
            # Excluded and date columns are not model inputs: a file may leave them out.
            optional = name in spec.exclude or name == spec.date_column
            columns[name] = column_schema(name, col, required=not optional)
    return pa.DataFrameSchema(
        columns,
        strict=False,
        coerce=True,
        name=spec.name,
        description=f"{spec.name} v{spec.version}: {spec.description}",
    )


__all__ = ["CONTROL_CHECK_NAME", "build_schema", "column_schema"]
