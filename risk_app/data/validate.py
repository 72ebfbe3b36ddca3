"""Validate applications against their data set's spec and quarantine the rows that fail.

`validate_applications` runs the pandera schema built from the spec
(`data_contracts.spec_schema.build_schema`) lazily, so every failure in a file is found in one call, and
splits the rows into
- `valid`: spec-typed rows (plus `default` = 1 where the target holds the spec's positive
  value, else 0, when labelled; and `application_id`, the spec's id column), and
- `quarantine`: one row per *failure* (a row with three bad fields appears three times), naming
  source file, row number, application id, column, check, failing value and a readable reason.

Row accounting is exact and enforced: n_in == n_valid + n_quarantined, where n_quarantined
counts rows, not failures. Problems that concern the whole file (a missing column) are not row
failures: they raise `DataFileError`, and so does a labelled file in which the spec's positive
label never occurs (almost always a spec mistake: `positive: 1` for a file of "yes"/"no").

Why two pandera passes: when a numeric column holds text ("abc"), pandera cannot coerce it, and
the range checks on that column then fail as a whole (a TypeError with no row index), hiding
e.g. an age of 17 in another row. The second pass blanks the uncoercible cells, validates those
columns as nullable floats, and so finds every range failure too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_model import BOOLEAN_VALUES
from data_contracts.spec_schema import CONTROL_ERROR, INVISIBLE_ERROR, MAX_ID_CHARS, build_schema
from risk_app.data.load import (
    SOURCE_ROW_COLUMN,
    generate_application_ids,
    missing_columns_message,
    normalize_ids,
)
from risk_app.errors import DataFileError

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "source_file",
    "row_number",
    "application_id",
    "column",
    "check",
    "failure_value",
    "reason",
)
DEFAULT_COLUMN = "default"
# The id column's name inside the library, whatever the data set calls it.
ID_COLUMN = "application_id"
_KEY = ["index", "column", "check"]
# A failing value is quoted up to this many characters in the quarantine table and its reason:
# a 5 MB cell must not become a 5 MB reason.
QUOTED_CHARS = 80


@dataclass
class ValidationResult:
    """Outcome of validating one source: valid rows, quarantined failures and counts."""

    source: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    n_in: int
    n_valid: int
    n_quarantined: int
    contract_version: str = ""
    require_target: bool = True
    dataset: str = ""
    extra_columns_ignored: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts and failure breakdowns, JSON-ready (for logs and Dagster metadata)."""
        q = self.quarantine
        return {
            "source": self.source,
            "dataset": self.dataset,
            "contract_version": self.contract_version,
            "n_in": self.n_in,
            "n_valid": self.n_valid,
            "n_quarantined": self.n_quarantined,
            "quarantine_rate": round(self.n_quarantined / self.n_in, 6) if self.n_in else 0.0,
            "n_failures": len(q),
            "failures_by_column": {
                str(k): int(v) for k, v in q["column"].value_counts().sort_index().items()
            },
            "failures_by_check": {str(k): int(v) for k, v in q["check"].value_counts().sort_index().items()},
            "extra_columns_ignored": list(self.extra_columns_ignored),
        }


def describe_check(check: str) -> str:
    """A readable reason for a pandera check name."""
    patterns: list[tuple[str, str]] = [
        (r"^coerce_dtype\('?([\w\[\]]+)'?\)$", "cannot be read as {0}"),
        (r"^dtype\('?(\w+)'?\)$", "wrong type, expected {0}"),
        (r"^greater_than_or_equal_to\((.+)\)$", "must be >= {0}"),
        (r"^greater_than\((.+)\)$", "must be > {0}"),
        (r"^less_than_or_equal_to\((.+)\)$", "must be <= {0}"),
        (r"^less_than\((.+)\)$", "must be < {0}"),
        (r"^isin\((.+)\)$", "not an allowed value; allowed: {0}"),
        (r"^str_length\((.+)\)$", "text length out of range {0}"),
        (r"^longer than (\d+) characters$", "longer than {0} characters, the most this field may hold"),
    ]
    for pattern, template in patterns:
        match = re.match(pattern, check, flags=re.DOTALL)
        if match:
            text = template.format(match.group(1))
            for dtype, words in (("Int64", "a whole number"), ("int64", "a whole number"),
                                 ("float64", "a number"), ("datetime64[ns]", "a date")):  # fmt: skip
                text = text.replace(dtype, words)
            return text
    return {
        "not_nullable": "missing value",
        "field_uniqueness": "duplicate id (an earlier row has the same id)",
        CONTROL_ERROR: "contains control or bidirectional-override characters (e.g. U+202E), "
        "which can make a report show something other than the data",
        INVISIBLE_ERROR: "contains zero-width characters (e.g. U+200B), which make two different "
        "ids look the same",
    }.get(check, f"fails check {check}")


def _reason(column: str, check: str, spec: DatasetSpec) -> str:
    if column == spec.target.column and check == "not_nullable":
        return f"missing label ({column} is required for training data)"
    parse = spec.columns[column].parse if column in spec.columns else None
    if parse is not None and check.startswith("coerce_dtype"):
        # Say how the spec told us to read it: the analyst then sees the cell and the rule side by side.
        rule = f"format {parse.format}" if parse.format else parse.model_dump_json(exclude_defaults=True)
        return f"{describe_check(check)} (spec parse: {rule})"
    return describe_check(check)


def _lazy_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return exc.failure_cases.copy()
    return pd.DataFrame(
        columns=["schema_context", "column", "check", "check_number", "failure_case", "index"]
    )


def collect_failures(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, id_column: str = ID_COLUMN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All failures of `frame` against `schema`: (row-level failures, file-level failures).

    Row-level failures have an `index` into `frame`; file-level ones (index None) concern a whole
    column or the frame. Failures that are only consequences of uncoercible cells are dropped.
    """
    first = _lazy_failures(schema, frame)
    indexed = first[first["index"].notna()]
    coerce = indexed[indexed["check"].astype(str).str.startswith("coerce_dtype")]
    broken_columns = sorted(set(coerce["column"]))
    passes = [first]
    if broken_columns:
        blanked = frame.copy()
        for column, rows in coerce.groupby("column")["index"]:
            blanked[column] = blanked[column].astype(object)
            blanked.loc[list(rows), column] = None
        # Integers cannot hold the blanks: validate those as floats. Other types keep their dtype.
        relaxed = schema.update_columns(
            {
                c: {"nullable": True, "dtype": "float64"}
                if str(schema.columns[c].dtype).lower().startswith("int")
                else {"nullable": True}
                for c in broken_columns
            }
        )
        second = _lazy_failures(relaxed, blanked)
        # Keep range/category failures from the second pass; real nulls were already reported.
        passes.append(second[second["check"] != "not_nullable"])
    failures = pd.concat(passes, ignore_index=True)
    failures["check"] = failures["check"].astype(str)

    row_level = failures[failures["index"].notna()].copy()
    row_level["index"] = row_level["index"].astype(int)
    # pandera reports a failed coercion twice (coerce_dtype and dtype); one line is enough.
    row_level = row_level[~row_level["check"].str.startswith("dtype(")]
    # A missing number also "fails coercion"; its not_nullable failure already says why.
    row_level = row_level[
        ~(row_level["check"].str.startswith("coerce_dtype") & row_level["failure_case"].isna())
    ]
    # A duplicate id keeps its first occurrence: only the later rows are the duplicates.
    dup = row_level["check"] == "field_uniqueness"
    if dup.any():
        first_seen = ~frame[id_column].duplicated(keep="first")
        keep_first = row_level.loc[dup, "index"].map(first_seen)
        row_level = row_level.drop(index=keep_first[keep_first].index)
    row_level = row_level.drop_duplicates(subset=_KEY).sort_values(["index", "column", "check"])

    file_level = failures[failures["index"].isna()]
    # Column-wide crashes (TypeError on a str column) and dtype verdicts on columns whose bad
    # cells we already hold are consequences, not independent file problems.
    consequence = file_level["column"].isin(broken_columns) & (
        file_level["failure_case"].astype(str).str.startswith("TypeError")
        | file_level["check"].str.startswith("dtype(")
    )
    return row_level, file_level[~consequence]


def _visible(text: str) -> str:
    """The value with invisible characters (controls, bidi overrides) written as \\uXXXX escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def quoted(text: str, limit: int = QUOTED_CHARS) -> str:
    """`text` with invisible characters escaped, cut to its first `limit` characters (saying how
    long it was) so that a huge cell never makes a huge quarantine line."""
    if len(text) <= limit:
        return _visible(text)
    return f"{_visible(text[:limit])}... ({len(text):,} characters)"


def quarantine_id(ident: str) -> str:
    """An id as the quarantine table keeps it: as written, or its prefix when over the cap."""
    return ident if len(ident) <= MAX_ID_CHARS else quoted(ident, MAX_ID_CHARS)


def _quarantine_table(
    source: str, work: pd.DataFrame, raw: pd.DataFrame, row_level: pd.DataFrame, spec: DatasetSpec
) -> pd.DataFrame:
    id_column = spec.id_column
    records = []
    for failure in row_level.itertuples(index=False):
        idx = int(failure.index)
        column = str(failure.column)
        value = raw.at[idx, column] if column in raw.columns else failure.failure_case
        value_text = "" if pd.isna(value) else quoted(str(value))
        row_number = int(work.at[idx, SOURCE_ROW_COLUMN])
        ident = work.at[idx, id_column]
        records.append(
            {
                "source_file": source,
                "row_number": row_number,
                "application_id": None if pd.isna(ident) else quarantine_id(str(ident)),
                "column": column,
                "check": str(failure.check),
                "failure_value": value_text,
                "reason": f"row {row_number}, field {column}={value_text!r}: "
                f"{_reason(column, str(failure.check), spec)}",
            }
        )
    table = pd.DataFrame.from_records(records, columns=list(QUARANTINE_COLUMNS))
    return table.astype({"row_number": "int64"})


def _prepare(df: pd.DataFrame, source: str, require_target: bool, spec: DatasetSpec) -> pd.DataFrame:
    """The frame with `source_row` and ids in place; file-level problems raise `DataFileError`."""
    work = df.reset_index(drop=True).copy()
    if SOURCE_ROW_COLUMN not in work.columns:
        work[SOURCE_ROW_COLUMN] = range(1, len(work) + 1)
    if spec.id_column not in work.columns:
        work.insert(0, spec.id_column, generate_application_ids(work, spec))
    else:
        work[spec.id_column] = normalize_ids(work[spec.id_column])
    missing = [c for c in spec.feature_columns if c not in work.columns]
    if missing:
        raise DataFileError(source, missing_columns_message(missing, list(map(str, df.columns)), spec))
    target = spec.target.column
    if require_target and target not in work.columns:
        raise DataFileError(
            source,
            f"missing target column '{target}' (required for training data; "
            f"'{spec.target.positive}' means default in data set {spec.name})",
        )
    return work


def _typed_valid(valid: pd.DataFrame, spec: DatasetSpec, source: str, require_target: bool) -> pd.DataFrame:
    """Add `default` (and `application_id` under its library name); booleans become bool."""
    for name in spec.columns:
        if spec.columns[name].type == "boolean" and name in valid.columns and name != spec.target.column:
            valid[name] = valid[name].map(
                lambda v: v if pd.isna(v) else BOOLEAN_VALUES[str(v).strip().lower()]
            )
    if spec.id_column != ID_COLUMN:
        valid.insert(0, ID_COLUMN, valid[spec.id_column].astype(str))
    target = spec.target.column
    if target in valid.columns:
        # Unlabelled scoring rows have no default; a nullable int keeps 0/1 without floats.
        valid[DEFAULT_COLUMN] = spec.default_flag(valid[target])
        labelled = valid[DEFAULT_COLUMN].dropna()
        if require_target and len(labelled) and not (labelled == 1).any():
            found = sorted(map(str, valid[target].dropna().unique()))[:10]
            where = spec.spec_path or spec.name
            raise DataFileError(
                source,
                f"the positive label {spec.target.positive!r} of target '{target}' never occurs in "
                f"{len(labelled)} valid row(s) (values found: {found}); check target.positive in {where}",
            )
    return valid


def validate_applications(
    df: pd.DataFrame, source: str, require_target: bool = True, spec: DatasetSpec | str | None = None
) -> ValidationResult:
    """Split `df` into spec-valid rows and a per-failure quarantine table.

    `spec` is the data set (a `DatasetSpec`, a built-in name or a spec path; default
    german_credit). `source` names the file in messages and in the quarantine table. With
    `require_target` (training data) a missing target column is a file error and a missing or
    unknown label quarantines the row; without it (scoring data) the label is optional.
    """
    spec = load_spec(spec)
    source = str(source)
    raw = df.reset_index(drop=True)
    work = _prepare(raw, source, require_target, spec)

    schema = build_schema(spec, require_target=require_target)
    contract_columns = [c for c in schema.columns if c in work.columns]
    row_level, file_level = collect_failures(schema, work[contract_columns], spec.id_column)
    if not file_level.empty:
        problems = "; ".join(
            f"{c}: {describe_check(str(k))} ({v})"
            for c, k, v in file_level[["column", "check", "failure_case"]].itertuples(index=False)
        )
        raise DataFileError(source, f"file-level contract failure: {problems}")

    quarantine = _quarantine_table(source, work, raw, row_level, spec)
    bad_rows = sorted(set(row_level["index"].tolist()))
    good = work.drop(index=bad_rows)
    keep = [*contract_columns, SOURCE_ROW_COLUMN]
    # Re-validate the survivors to get spec dtypes (coercion of the full frame stopped at the
    # bad cells). A failure here would be a bug in the split above, not bad data.
    valid = schema.validate(good[keep].copy(), lazy=False).reset_index(drop=True)
    valid[SOURCE_ROW_COLUMN] = valid[SOURCE_ROW_COLUMN].astype("int64")
    valid = _typed_valid(valid, spec, source, require_target)

    n_in, n_valid, n_quarantined = len(work), len(valid), len(bad_rows)
    if n_in != n_valid + n_quarantined or (n_quarantined > 0) != (len(quarantine) > 0):
        raise RuntimeError(
            f"{source}: row accounting broken: "
            f"n_in={n_in} != n_valid={n_valid} + n_quarantined={n_quarantined}"
        )
    ignored = [str(c) for c in work.columns if c not in schema.columns and c != SOURCE_ROW_COLUMN]
    return ValidationResult(
        source=source,
        valid=valid,
        quarantine=quarantine,
        n_in=n_in,
        n_valid=n_valid,
        n_quarantined=n_quarantined,
        contract_version=spec.contract_version,
        require_target=require_target,
        dataset=spec.name,
        extra_columns_ignored=ignored,
    )


__all__ = [
    "ID_COLUMN",
    "QUARANTINE_COLUMNS",
    "QUOTED_CHARS",
    "ValidationResult",
    "collect_failures",
    "quarantine_id",
    "quoted",
    "validate_applications",
]
