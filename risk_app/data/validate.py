"""Validate applications against the contract and quarantine the rows that fail.

`validate_applications` runs the `LoanApplication` pandera schema lazily, so every failure in a
file is found in one call, and splits the rows into
- `valid`: contract-typed rows (plus `default` = 1 for bad, 0 for good, when labelled), and
- `quarantine`: one row per *failure* (a row with three bad fields appears three times), naming
  source file, row number, application id, column, check, failing value and a readable reason.

Row accounting is exact and enforced: n_in == n_valid + n_quarantined, where n_quarantined
counts rows, not failures. Problems that concern the whole file (a missing column) are not row
failures: they raise `DataFileError`.

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

from data_contracts.loan_application import (
    CONTRACT_VERSION,
    FEATURE_COLUMNS,
    ID_COLUMN,
    TARGET_COLUMN,
    LoanApplication,
)
from risk_app.data.load import SOURCE_ROW_COLUMN, generate_application_ids, normalize_ids
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
_KEY = ["index", "column", "check"]


@dataclass
class ValidationResult:
    """Outcome of validating one source: valid rows, quarantined failures and counts."""

    source: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    n_in: int
    n_valid: int
    n_quarantined: int
    contract_version: str = CONTRACT_VERSION
    require_target: bool = True
    extra_columns_ignored: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts and failure breakdowns, JSON-ready (for logs and Dagster metadata)."""
        q = self.quarantine
        return {
            "source": self.source,
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


def _describe_check(check: str) -> str:
    """A readable reason for a pandera check name."""
    patterns: list[tuple[str, str]] = [
        (r"^coerce_dtype\('?(\w+)'?\)$", "cannot be read as {0}"),
        (r"^dtype\('?(\w+)'?\)$", "wrong type, expected {0}"),
        (r"^greater_than_or_equal_to\((.+)\)$", "must be >= {0}"),
        (r"^greater_than\((.+)\)$", "must be > {0}"),
        (r"^less_than_or_equal_to\((.+)\)$", "must be <= {0}"),
        (r"^less_than\((.+)\)$", "must be < {0}"),
        (r"^isin\((.+)\)$", "not an allowed value; allowed: {0}"),
        (r"^str_length\((.+)\)$", "text length out of range {0}"),
    ]
    for pattern, template in patterns:
        match = re.match(pattern, check, flags=re.DOTALL)
        if match:
            text = template.format(match.group(1))
            return text.replace("int64", "a whole number").replace("float64", "a number")
    return {
        "not_nullable": "missing value",
        "field_uniqueness": "duplicate application_id (an earlier row has the same id)",
    }.get(check, f"fails check {check}")


def _reason(column: str, check: str) -> str:
    if column == TARGET_COLUMN and check == "not_nullable":
        return "missing label (creditability is required for training data)"
    return _describe_check(check)


def _build_schema(require_target: bool) -> pa.DataFrameSchema:
    schema = LoanApplication.to_schema()
    if require_target:
        # Training data: every row needs a label; scoring data may omit it.
        schema = schema.update_column(TARGET_COLUMN, required=True, nullable=False)
    return schema


def _lazy_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return exc.failure_cases.copy()
    return pd.DataFrame(
        columns=["schema_context", "column", "check", "check_number", "failure_case", "index"]
    )


def collect_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        relaxed = schema.update_columns({c: {"nullable": True, "dtype": "float64"} for c in broken_columns})
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
        first_seen = ~frame[ID_COLUMN].duplicated(keep="first")
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


def _quarantine_table(
    source: str, work: pd.DataFrame, raw: pd.DataFrame, row_level: pd.DataFrame
) -> pd.DataFrame:
    records = []
    for failure in row_level.itertuples(index=False):
        idx = int(failure.index)
        column = str(failure.column)
        value = raw.at[idx, column] if column in raw.columns else failure.failure_case
        value_text = "" if pd.isna(value) else str(value)
        row_number = int(work.at[idx, SOURCE_ROW_COLUMN])
        records.append(
            {
                "source_file": source,
                "row_number": row_number,
                "application_id": None if pd.isna(work.at[idx, ID_COLUMN]) else str(work.at[idx, ID_COLUMN]),
                "column": column,
                "check": str(failure.check),
                "failure_value": value_text,
                "reason": f"row {row_number}, field {column}={value_text!r}: "
                f"{_reason(column, str(failure.check))}",
            }
        )
    table = pd.DataFrame.from_records(records, columns=list(QUARANTINE_COLUMNS))
    return table.astype({"row_number": "int64"})


def validate_applications(df: pd.DataFrame, source: str, require_target: bool = True) -> ValidationResult:
    """Split `df` into contract-valid rows and a per-failure quarantine table.

    `source` names the file in messages and in the quarantine table. With `require_target`
    (training data) a missing target column is a file error and a missing or unknown label
    quarantines the row; without it (scoring data) the label is optional.
    """
    source = str(source)
    raw = df.reset_index(drop=True)
    work = raw.copy()
    if SOURCE_ROW_COLUMN not in work.columns:
        work[SOURCE_ROW_COLUMN] = range(1, len(work) + 1)
    if ID_COLUMN not in work.columns:
        work.insert(0, ID_COLUMN, generate_application_ids(work))
    else:
        work[ID_COLUMN] = normalize_ids(work[ID_COLUMN])

    missing = [c for c in FEATURE_COLUMNS if c not in work.columns]
    if missing:
        raise DataFileError(source, f"missing required column(s): {', '.join(missing)}")
    if require_target and TARGET_COLUMN not in work.columns:
        raise DataFileError(
            source, f"missing target column '{TARGET_COLUMN}' (required for training data; values good/bad)"
        )

    schema = _build_schema(require_target)
    contract_columns = [c for c in schema.columns if c in work.columns]
    row_level, file_level = collect_failures(schema, work[contract_columns])
    if not file_level.empty:
        problems = "; ".join(
            f"{c}: {_describe_check(str(k))} ({v})"
            for c, k, v in file_level[["column", "check", "failure_case"]].itertuples(index=False)
        )
        raise DataFileError(source, f"file-level contract failure: {problems}")

    quarantine = _quarantine_table(source, work, raw, row_level)
    bad_rows = sorted(set(row_level["index"].tolist()))
    good = work.drop(index=bad_rows)
    keep = [*contract_columns, SOURCE_ROW_COLUMN]
    # Re-validate the survivors to get contract dtypes (coercion of the full frame stopped at
    # the bad cells). A failure here would be a bug in the split above, not bad data.
    valid = schema.validate(good[keep].copy(), lazy=False).reset_index(drop=True)
    valid[SOURCE_ROW_COLUMN] = valid[SOURCE_ROW_COLUMN].astype("int64")
    if TARGET_COLUMN in valid.columns:
        is_bad = valid[TARGET_COLUMN].map({"bad": 1, "good": 0})
        # Unlabelled scoring rows have no default; a nullable int keeps 0/1 without floats.
        valid[DEFAULT_COLUMN] = is_bad.astype("int64") if is_bad.notna().all() else is_bad.astype("Int64")

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
        require_target=require_target,
        extra_columns_ignored=ignored,
    )


__all__ = ["QUARANTINE_COLUMNS", "ValidationResult", "collect_failures", "validate_applications"]
