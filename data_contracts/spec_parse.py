"""How a column's cells are written in a lender's file, declared in the spec (`parse:`).

Lenders' exports write money as `"$60,000.00 "`, rates as `"13.5%"` and dates as `28-Feb-97`.
A spec column says how to read them, and validation reads them so: the pandera schema gets a
parser per column (`cell_parser`), which runs before type coercion and checks, so the valid
rows (and with them the baselines, the serializer and scoring) hold typed numbers and dates.
A cell the parser cannot read is left exactly as the file has it, so coercion fails on it and
the row is quarantined quoting the original value: nothing is guessed and nothing is lost.

    columns:
      GrAppv:       {type: float, label: Gross amount approved, parse: {currency: "$", thousands: ","}}
      int_rate:     {type: float, label: Interest rate, parse: {percent: true}}
      ApprovalDate: {type: date, label: Approval date, parse: {format: "%d-%b-%y"}}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

# What a date cell that its declared format cannot read becomes: text no date reader accepts.
UNREADABLE_DATE = "not a date in the declared format"
# strftime directives a date format may use: a spec's format is data, so it is checked.
_FORMAT = re.compile(r"^(?:%[dmyYbBHMSjpaAIfzZ]|[-/ .:,T]){1,40}$")


class ParseSpec(BaseModel):
    """How the cells of one column are written; every field optional."""

    model_config = ConfigDict(extra="forbid")

    currency: str | None = Field(
        default=None, min_length=1, max_length=3, description="Currency sign or code to drop: '$', 'EUR'."
    )
    thousands: Literal[",", ".", " ", "'", "_"] | None = Field(
        default=None, description="Thousands separator to drop: ',' in 60,000.00."
    )
    decimal: Literal[".", ","] = Field(default=".", description="Decimal mark: ',' in 60.000,00.")
    percent: bool = Field(default=False, description="Values end with %: '13.5%' reads 13.5.")
    negative_parentheses: bool = Field(
        default=False, description="Accounting negatives: '(1,200.00)' reads -1200."
    )
    format: str | None = Field(
        default=None, description="Date format in strftime codes: '%d-%b-%y' reads 28-Feb-97 (date columns)."
    )

    @field_validator("format")
    @classmethod
    def _known_directives(cls, value: str | None) -> str | None:
        if value is not None and not _FORMAT.match(value):
            raise ValueError(
                f"{value!r} is not a date format of strftime codes (%d %m %y %Y %b %B %H %M %S) "
                "and the separators - / . : , T or space"
            )
        return value

    @property
    def is_numeric(self) -> bool:
        fields = self.model_fields_set - {"format"}
        return bool(fields)

    def numeric_parser(self) -> Callable[[pd.Series], pd.Series]:
        """Cells -> numbers where they read as such; other cells unchanged (they then fail coercion)."""

        def parse(series: pd.Series) -> pd.Series:
            text = series.astype("string").str.strip()
            if self.currency:
                text = text.str.replace(self.currency, "", regex=False).str.strip()
            if self.percent:
                text = text.str.removesuffix("%").str.strip()
            if self.negative_parentheses:
                text = text.str.replace(r"^\((.*)\)$", r"-\1", regex=True)
            if self.thousands:
                text = text.str.replace(self.thousands, "", regex=False)
            if self.decimal != ".":
                text = text.str.replace(self.decimal, ".", regex=False)
            numbers = pd.to_numeric(text, errors="coerce")
            return numbers.astype(object).where(numbers.notna(), series)

        return parse

    def date_parser(self) -> Callable[[pd.Series], pd.Series]:
        """Cells -> timestamps by `format`; other cells unchanged (they then fail coercion)."""

        def parse(series: pd.Series) -> pd.Series:
            text = series.astype("string").str.strip()
            dates = pd.to_datetime(text, format=self.format, errors="coerce")
            # A cell the format cannot read must fail coercion; left as written, pandera would guess
            # a date from it ('Nov-1994' read as 1994-11-01). The quarantine quotes the file's cell.
            unreadable = dates.isna() & text.notna() & (text != "")
            out = dates.astype(object).where(dates.notna(), series)
            return out.where(~unreadable.fillna(False).astype(bool), UNREADABLE_DATE)

        return parse


def cell_parser(parse: ParseSpec | None, column_type: str) -> Callable[[pd.Series], pd.Series] | None:
    """The parser a column's `parse:` asks for, or None when the file's cells are read as they are."""
    if parse is None:
        return None
    if column_type == "date" and parse.format:
        return parse.date_parser()
    if column_type in ("integer", "float") and parse.is_numeric:
        return parse.numeric_parser()
    return None


def parse_problems(where: str, parse: ParseSpec, column_type: str) -> list[str]:
    """What is wrong with a `parse:` block for a column of `column_type`."""
    problems = []
    if parse.format is not None and column_type != "date":
        problems.append(f"{where}.parse.format: a date format is only for date columns, not {column_type}")
    if parse.is_numeric and column_type not in ("integer", "float"):
        problems.append(
            f"{where}.parse: currency, thousands, decimal, percent and negative_parentheses are only "
            f"for integer or float columns, not {column_type}"
        )
    if parse.thousands is not None and parse.thousands == parse.decimal:
        problems.append(f"{where}.parse: thousands and decimal are both {parse.decimal!r}")
    return problems


__all__ = ["ParseSpec", "cell_parser", "parse_problems"]
