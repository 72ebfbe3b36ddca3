"""Draft a dataset spec from a data file, for an analyst to review (`risk-app datasets init`).

`draft_spec` reads every column as text and guesses, per column:
- type: numbers that are all whole -> integer (or category when there are at most
  `max_code_values` distinct codes, e.g. 1-4), other numbers -> float, true/false or yes/no ->
  boolean, ISO dates -> date, few distinct strings -> category, the rest -> free text;
- a range with a margin (10 % of the observed span on each side; not below 0 when no value
  is), categories as observed, nullable when a value is missing, a label from the name;
- roles: a unique column named like an id -> the id column (else ids are generated), the first
  date column -> date_column, and protected attributes by name (age, sex, gender, marital ...).

Everything guessed is listed in the column's `inferred` field and in `review_notes`, which the
CLI prints: units, labels, ranges and the protected attributes need a human decision.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from data_contracts.spec import _pydantic_problems
from data_contracts.spec_model import DatasetSpec, SpecError
from data_contracts.spec_parse import ParseSpec
from data_contracts.spec_values import BOOLEAN_VALUES, RESERVED_COLUMNS, canonical_value
from risk_app.errors import ConfigError

ID_NAME = re.compile(
    r"(^|_)(id|identifier|key|ref|reference)$|^id_"
    r"|(^|_)(loan|application|customer|contract|account)_?(id|no|number|ref)$",
    re.I,
)
# Words of a column name (split at _, spaces and camelCase) that mark an identifier: LoanNr_ChkDgt.
ID_WORDS = frozenset({"id", "nr", "no", "num", "number", "identifier", "key", "ref", "reference"})
# Words (of a column name split at "_", spaces and camelCase) that suggest a protected attribute.
PROTECTED_WORDS: tuple[str, ...] = (
    "age",
    "sex",
    "gender",
    "marital",
    "marriage",
    "race",
    "ethnic",
    "religion",
    "nationality",
    "foreign",
    "disability",
    "disabled",
    "pregnancy",
    "pregnant",
)


def name_words(name: str) -> list[str]:
    """'personal_status_and_sex' -> [personal, status, and, sex]; 'maritalStatus' -> [marital, status]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


@dataclass
class Draft:
    """A drafted spec and what the analyst should review before using it."""

    spec: DatasetSpec
    review_notes: list[str] = field(default_factory=list)


def label_from_name(name: str) -> str:
    """'duration_in_month' -> 'Duration in month', 'LIMIT_BAL' -> 'Limit bal', 'loanAmt' -> 'Loan amt'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    words = re.sub(r"[_\-.:\s]+", " ", spaced).strip().lower()
    return (words[:1].upper() + words[1:]) or "Field"


def _clause_safe(text: str) -> str:
    return text.replace(": ", ", ").strip().rstrip(".").strip() or "(blank)"


def _numbers(values: pd.Series) -> pd.Series | None:
    parsed = pd.to_numeric(values, errors="coerce")
    return parsed if parsed.notna().all() else None


def _whole(values: pd.Series) -> bool:
    # Written as whole numbers: "400000.0" is a float in the file, and int64 would refuse it.
    return bool(values.astype(str).str.fullmatch(r"-?\d+").all())


def _dates(values: pd.Series) -> pd.Series | None:
    if not values.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T][\d:.]+)?").all():
        return None
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return parsed if parsed.notna().all() else None


# Date formats lenders' exports use, tried in order; the first that reads every value is drafted.
# Day-first and month-first both reading every value is ambiguous: the note says so.
DATE_FORMATS = ("%d-%b-%y", "%d-%b-%Y", "%b-%Y", "%b-%y", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y",
                "%d.%m.%Y", "%Y%m%d", "%d %b %Y", "%b %d, %Y")  # fmt: skip


def _date_format(values: pd.Series) -> tuple[str, bool] | None:
    """(format, ambiguous) of the first format in DATE_FORMATS that reads every value, or None."""
    if not values.str.contains(r"\d").all():
        return None
    readers = [
        f for f in DATE_FORMATS
        if pd.to_datetime(values, format=f, errors="coerce").notna().mean() >= MIN_PARSED_SHARE
    ]  # fmt: skip
    if not readers:
        return None
    swapped = readers[0].replace("%m", "%M").replace("%d", "%m").replace("%M", "%d")
    return readers[0], swapped != readers[0] and swapped in readers


_MONEY = re.compile(
    r"^(?P<neg>\()?\s*(?P<cur>[$€£¥]|[A-Z]{3})?\s*-?(\d{1,3}(?P<sep>[,.' ])\d{3}((?P=sep)\d{3})*|\d+)"
    r"(?P<dec>[.,]\d{1,4})?\s*(?P<pct>%)?\s*\)?$"
)
# A drafted parse rule must read nearly every value; the rest are quarantined by validation
# (a typo in one cell should not turn a money column into free text).
MIN_PARSED_SHARE = 0.98


def _money(values: pd.Series) -> tuple[dict[str, Any], pd.Series, bool] | None:
    """(`parse:` block, numbers, whole) when every value is money or a percentage written as text;
    `whole` when no value has decimals."""
    found = [m for m in map(_MONEY.match, values) if m is not None]
    marked = any(m["cur"] or m["pct"] or m["sep"] for m in found)  # plain numbers are read as such
    if len(found) < MIN_PARSED_SHARE * len(values) or not marked:
        return None
    currencies = {m["cur"] for m in found if m["cur"]}
    separators = {m["sep"] for m in found if m["sep"]}
    decimals = {m["dec"][0] for m in found if m["dec"]}
    if len(currencies) > 1 or len(separators) > 1 or len(decimals) > 1 or separators & decimals:
        return None
    parse: dict[str, Any] = {}
    if currencies:
        parse["currency"] = currencies.pop()
    if separators:
        parse["thousands"] = separators.pop()
    if decimals and decimals != {"."}:
        parse["decimal"] = decimals.pop()
    if any(m["pct"] for m in found):
        parse["percent"] = True
    if any(m["neg"] for m in found):
        parse["negative_parentheses"] = True
    numbers = pd.to_numeric(ParseSpec(**parse).numeric_parser()(values), errors="coerce")
    whole = not any(m["dec"] for m in found)
    return (parse, numbers.dropna(), whole) if numbers.notna().mean() >= MIN_PARSED_SHARE else None


def _short(values: pd.Series, longest: int = 60) -> bool:
    return bool(values.str.len().max() <= longest)


def _margin_range(numbers: pd.Series, integer: bool) -> tuple[float, float]:
    low, high = float(numbers.min()), float(numbers.max())
    margin = max((high - low) * 0.1, 1.0 if integer else 0.0)
    lo, hi = low - margin, high + margin
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    else:  # 1.824, not 1.8239999999999998: a reviewer reads and edits these
        lo, hi = _round_down(lo), _round_up(hi)
    return lo, hi


def _round_down(x: float, digits: int = 3) -> float:
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(x)))) if x else 1
    return math.floor(x * scale) / scale


def _round_up(x: float, digits: int = 3) -> float:
    return -_round_down(-x, digits)


def _column_draft(name: str, values: pd.Series, n_rows: int, max_code_values: int) -> dict[str, Any]:
    raw = values.dropna().astype(str)
    # Stripped text decides the type; categories keep the values exactly as the file has them,
    # or validation (which compares exact strings) would refuse " yes" for "yes".
    present = raw.str.strip()
    raw, present = raw[present != ""], present[present != ""]
    column: dict[str, Any] = {"label": label_from_name(name), "description": ""}
    inferred = ["type", "label"]
    if len(present) < n_rows:
        column["nullable"] = True
        inferred.append("nullable")
    numbers = _numbers(present) if len(present) else None
    distinct = present.unique()
    if len(present) and set(present.str.lower()) <= set(BOOLEAN_VALUES) - {"1", "0", "1.0", "0.0"}:
        column["type"] = "boolean"
    elif numbers is not None and _whole(present) and len(distinct) <= max_code_values:
        column["type"] = "category"
        ordered = sorted(raw.unique(), key=lambda v: float(v))
        column["categories"] = {v: v.strip() for v in ordered}
        inferred.append("categories")
    elif numbers is not None:
        integer = _whole(present)
        column["type"] = "integer" if integer else "float"
        column["min"], column["max"] = _margin_range(numbers, integer)
        inferred += ["min", "max"]
    elif len(present) and (money := _money(present)) is not None:
        column["parse"], parsed, integer = money
        column["type"] = "integer" if integer else "float"
        column["min"], column["max"] = _margin_range(parsed, integer)
        inferred += ["parse", "min", "max"]
    elif len(present) and _dates(present) is not None:
        column["type"] = "date"
    elif len(present) and (dated := _date_format(present)) is not None:
        column["type"] = "date"
        column["parse"] = {"format": dated[0]}
        inferred.append("parse.format (day and month could be swapped)" if dated[1] else "parse")
    elif len(distinct) <= 100 and len(distinct) <= 0.5 * max(len(present), 1) and _short(present):
        # Few distinct short values (two-letter state codes, a purpose list): categories.
        column["type"] = "category"
        column["categories"] = {v: _clause_safe(" ".join(v.split())) for v in sorted(raw.unique())}
        inferred.append("categories")
    else:
        column["type"] = "text"
        longest = int(present.str.len().max()) if len(present) else 50
        column["max_chars"] = min(500, max(50, math.ceil(longest / 50) * 50))
        inferred.append("max_chars")
    column["inferred"] = inferred
    return column


def _unique_labels(columns: dict[str, dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for col in columns.values():
        label = col["label"]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            col["label"] = f"{label} {seen[label]}"


def _target(columns: dict[str, dict[str, Any]], target: str, positive: str, frame: pd.DataFrame) -> Any:
    if target not in columns:
        raise ConfigError(f"--target {target!r} is not a column of the file; columns: {list(frame.columns)}")
    observed = {canonical_value(v) for v in frame[target].dropna()}
    if canonical_value(positive) not in observed:
        raise ConfigError(
            f"--positive {positive!r} never occurs in column {target!r}; values: {sorted(observed)[:10]}"
        )
    col = columns[target]
    labels = frame[target].dropna().astype(str).str.strip()
    numbers = _numbers(labels)
    if numbers is not None and _whole(labels):
        col.update(type="integer", min=float(numbers.min()), max=float(numbers.max()), inferred=["type"])
        col.pop("categories", None)
        return int(float(positive))
    if col["type"] == "boolean":
        return positive
    col["type"] = "category"
    # The labels as written (the schema checks the file's cells against them); the positive one
    # is the label that reads as `positive` ("True" for --positive true).
    written = sorted(set(labels))
    col["categories"] = {v: _clause_safe(v) for v in written}
    col.pop("max_chars", None)
    return next(v for v in written if canonical_value(v) == canonical_value(positive))


def _pick_id(columns: dict[str, dict[str, Any]], frame: pd.DataFrame, target: str, notes: list[str]) -> str:
    """A unique column named like an id, or the generated `application_id` (added first)."""
    candidates = [
        c
        for c in frame.columns
        if c != target
        and (ID_NAME.search(c) or set(name_words(c)) & ID_WORDS)
        and frame[c].notna().all()
        and frame[c].is_unique
    ]
    if candidates:
        columns[candidates[0]] = {"type": "text", "label": "Application id", "inferred": ["type"]}
        notes.append(
            f"id_column: '{candidates[0]}' looks like a unique id (check it identifies an application)"
        )
        return candidates[0]
    generated = {"type": "text", "label": "Application id", "description": "generated"}
    rest = {k: v for k, v in columns.items() if k != "application_id"}
    columns.clear()  # rebuilt in place so the generated id is the first column
    columns.update({"application_id": generated, **rest})
    notes.append("id_column: the file has no id column; ids will be generated from each row's values")
    return "application_id"


def _guess_protected(
    columns: dict[str, dict[str, Any]], skip: set[str], notes: list[str]
) -> list[dict[str, Any]]:
    protected = []
    for c, col in columns.items():
        words = name_words(c)
        if c in skip or not set(words) & set(PROTECTED_WORDS):
            continue
        item: dict[str, Any] = {"column": c}
        if "age" in words and col["type"] in ("integer", "float"):
            item.update(name="age_band", edges=[25, 35, 50])
        protected.append(item)
        notes.append(
            f"protected: '{c}' was guessed from its name; confirm, and add any the name did not reveal"
        )
    if not protected:
        notes.append("protected: none guessed from column names; add the protected attributes of your data")
    return protected


def _column_notes(columns: dict[str, dict[str, Any]], skip: set[str]) -> list[str]:
    notes = []
    for c, col in columns.items():
        if c in skip:
            continue
        if col.get("inferred") and col["type"] in ("integer", "float"):
            notes.append(f"columns.{c}: check type, label and range; add a unit")
        codes = col.get("categories", {})
        if col["type"] == "category" and all(re.fullmatch(r"-?\d+(\.\d+)?", v) for v in codes):
            notes.append(f"columns.{c}: category with {len(codes)} values; is it a code list or a number?")
        if col["type"] == "text":
            notes.append(
                f"columns.{c}: free text, the model reads at most {col['max_chars']} characters; a text: "
                "block adds cleaning, a token budget, its place and its empty text (docs/datasets.md)"
            )
    return notes


def draft_spec(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    positive: str,
    source_file: str | Path,
    data_ref: str | None = None,
    max_code_values: int = 10,
) -> Draft:
    """A reviewed-to-be spec for `frame` (read as text) with `target` == `positive` meaning default."""
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise ConfigError(f"{source_file}: the file has no rows to infer a spec from")
    clash = sorted(set(frame.columns) & (RESERVED_COLUMNS - {"application_id", "default"}))
    if clash:
        raise ConfigError(f"{source_file}: column(s) {clash} use names the library reserves; rename them")
    columns = {c: _column_draft(c, frame[c], len(frame), max_code_values) for c in frame.columns}
    positive_value = _target(columns, target, positive, frame)
    notes: list[str] = []
    id_column = _pick_id(columns, frame, target, notes)
    _unique_labels(columns)
    protected = _guess_protected(columns, {target, id_column}, notes)
    notes += _column_notes(columns, {target, id_column})
    dates = [c for c, col in columns.items() if col["type"] == "date"]
    if dates:
        notes.append(f"date_column: '{dates[0]}' (used for out-of-time splits; never a model input)")
    notes.append("source, licence, description: fill in before sharing the spec")
    raw = {
        "name": name,
        "version": "0.1.0",
        "description": f"Draft from {Path(source_file).name} ({len(frame)} rows); review what is inferred.",
        "source": str(source_file),
        "licence": "unknown (fill in)",
        "data": data_ref,
        "columns": columns,
        "id_column": id_column,
        "target": {"column": target, "positive": positive_value},
        "protected": protected,
        "date_column": dates[0] if dates else None,
    }
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"draft of {source_file}", _pydantic_problems(exc)) from None
    return Draft(spec=spec, review_notes=notes)


__all__ = ["Draft", "draft_spec", "label_from_name"]
