"""Build the pandera schema of a data set from its spec.

One `pa.Column` per spec column: integer -> int64 (Int64 when nullable), float -> float64,
category -> str with `isin` over the declared values, boolean -> str with `isin` over the
accepted spellings (true/false, yes/no, 1/0), date -> datetime64, text -> str. `coerce=True`
turns CSV text into those types and reports an uncoercible cell as a per-row failure; the id
column is unique and non-empty. The id and free-text columns refuse control characters and
Unicode bidirectional overrides (U+202E and friends): they can make a quarantine report or an
analyst's screen show something other than what the model reads. Ids also refuse zero-width
characters (U+200B and friends, the soft hyphen, the BOM): `ab\u200bc` looks like `abc` on every
screen but is another id. Free text keeps them (U+200C/U+200D join letters in Persian and Indic
scripts and build emoji).

Length caps, so that one cell cannot fill the warehouse or the quarantine table: an id holds
at most `MAX_ID_CHARS` (256) characters, a free-text cell at most `MAX_TEXT_CHARS` (10,000) or
its `max_chars` when that is larger (the model reads the first `max_chars`; the cap is for
cells that are an accident or an attack, not a long note). Category, boolean and number cells
need no cap: a long one fails its `isin` or type check anyway.

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
# pandera reports a failed custom check under its `error` text: these are what reports match on.
CONTROL_ERROR = "contains control or bidirectional-override characters"
INVISIBLE_ERROR = "contains zero-width characters"
# Zero-width and otherwise invisible format characters: soft hyphen, combining grapheme joiner,
# Mongolian vowel separator, zero-width space/joiners, word joiner and invisible operators, BOM.
_INVISIBLE = re.compile("[\u00ad\u034f\u180e\u200b-\u200d\u2060-\u2064\ufeff]")
INVISIBLE_CHECK_NAME = "no_zero_width_characters"
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 10_000


def _no_control_characters(pattern: re.Pattern[str]) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        text = series.astype("string")
        return ~text.str.contains(pattern, regex=True).fillna(False).astype(bool)

    return pa.Check(check, name=CONTROL_CHECK_NAME, error=CONTROL_ERROR)


def _no_invisible_characters() -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        text = series.astype("string")
        return ~text.str.contains(_INVISIBLE, regex=True).fillna(False).astype(bool)

    return pa.Check(check, name=INVISIBLE_CHECK_NAME, error=INVISIBLE_ERROR)


def _at_most_chars(limit: int) -> pa.Check:
    """Cells of at most `limit` characters (a missing cell passes; not_nullable speaks for it)."""

    def check(series: pd.Series) -> pd.Series:
        return (series.astype("string").str.len() <= limit).fillna(True).astype(bool)

    return pa.Check(check, name=f"max_chars({limit})", error=f"longer than {limit} characters")


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
    cap = max(MAX_TEXT_CHARS, col.max_chars or 0)
    return pa.Column(str, [_no_control_characters(_CONTROL_TEXT), _at_most_chars(cap)], **kwargs)


def build_schema(spec: DatasetSpec, require_target: bool = True) -> pa.DataFrameSchema:
    """The data set's schema; with `require_target` the label is required and non-null."""
    columns: dict[str, pa.Column] = {}
    for name, col in spec.columns.items():
        if name == spec.id_column:
            # Ids are text whatever the file holds (the loader normalizes 7.0 to "7").
            columns[name] = pa.Column(
                str,
                [
                    pa.Check.str_length(min_value=1),
                    _at_most_chars(MAX_ID_CHARS),
                    _no_control_characters(_CONTROL_ANY),
                    _no_invisible_characters(),
                ],
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


__all__ = [
    "CONTROL_CHECK_NAME",
    "CONTROL_ERROR",
    "INVISIBLE_CHECK_NAME",
    "INVISIBLE_ERROR",
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "build_schema",
    "column_schema",
]
