"""Read a file of loan applications into a DataFrame, refusing files that cannot be used at all.

`load_applications` checks only what makes a *file* unusable (unknown format, missing,
unreadable, no rows, missing feature columns of the data set's spec) and raises
`DataFileError` with one clear message. Bad *values* are not its business: CSVs are read with
every column as text so that a
single "abc" in a numeric column becomes one quarantined row in `validate_applications`
instead of a failed file.

Two columns are added:
- `source_row`: the 1-based data row number in the file (header excluded), for error reports;
- the spec's id column (`application_id` for the built-in data sets), when the file has none:
  "app-" + 16 hex digits of a SHA-256 over the row's feature values (the spec's feature
  columns), so re-loading the same file (or the same applicant in another file, with or
  without a label, in CSV or Parquet) gives the same id. Exact duplicate rows get "-2", "-3" ...
  in file order so ids stay unique.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import DataFileError

SOURCE_ROW_COLUMN = "source_row"
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
ALLOWED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES

# Separators that cannot occur in a CSV field by accident, so "a|b" + "c" and "a" + "b|c" hash
# differently.
_FIELD_SEP = "\x1f"
_KV_SEP = "\x1e"


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # dtype=str: values stay as written; the contract coerces them row by row later.
        # keep_default_na: empty cells (and "NA") become missing, which the contract reports.
        return pd.read_csv(path, dtype=str, keep_default_na=True, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise DataFileError(path, "file is empty (no header, no rows)") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            path, f"not UTF-8 text, cannot read as CSV ({exc.reason} at byte {exc.start})"
        ) from None
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())
        raise DataFileError(path, f"cannot parse as CSV: {detail}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFileError(path, f"cannot read as Parquet: {detail}") from None


def _canonical_value(value: Any) -> str:
    """Text form of one cell that is the same whether it came from CSV text or Parquet types."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    # "6.0" read as text from a CSV must hash like the integer 6 from a Parquet file.
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() and math.isfinite(number) else text


def _row_digest(values: Iterable[Any], columns: Iterable[str]) -> str:
    canonical = _FIELD_SEP.join(
        f"{c}{_KV_SEP}{_canonical_value(v)}" for c, v in zip(columns, values, strict=True)
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def generate_application_ids(df: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.Series:
    """Deterministic, unique ids from each row's feature values (see the module docstring).

    Only the spec's feature columns are hashed: the label, extra columns and column order
    do not change an applicant's id.
    """
    spec = load_spec(spec)
    columns = [c for c in spec.feature_columns if c in df.columns]
    base = [f"app-{_row_digest(row, columns)}" for row in df[columns].itertuples(index=False, name=None)]
    seen: dict[str, int] = {}
    ids = []
    for ident in base:
        seen[ident] = seen.get(ident, 0) + 1
        ids.append(ident if seen[ident] == 1 else f"{ident}-{seen[ident]}")
    return pd.Series(ids, index=df.index, name=spec.id_column, dtype=object)


def normalize_ids(ids: pd.Series) -> pd.Series:
    """Ids as text. A numeric id column with a gap arrives as floats; 7.0 must read "7", not "7.0"."""
    if not pd.api.types.is_float_dtype(ids):
        return ids
    return ids.map(lambda v: v if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v))).astype(
        object
    )


def missing_columns_message(missing: list[str], found: list[str], spec: DatasetSpec) -> str:
    """One readable line: which columns are missing, and a hint when the file is another data set."""
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    text = f"missing required column(s): {shown} "
    text += f"(data set {spec.name} v{spec.version}; found: {', '.join(found)})"
    if len(missing) == len(spec.feature_columns):
        # Not one column in common: almost certainly a file of another data set.
        text += (
            f"; this file does not look like {spec.name}: choose its data set (risk-app datasets list) "
            "or draft a spec for it (risk-app datasets init)"
        )
    return text


def check_data_file(path: str | os.PathLike[str]) -> Path:
    """The file as a Path once it is a readable CSV/Parquet with some bytes; else `DataFileError`.

    Cheap, so callers can refuse a bad file before slow work (loading a model)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise DataFileError(
            file,
            f"unsupported file format '{suffix or '(no suffix)'}'; "
            f"allowed formats: {', '.join(ALLOWED_SUFFIXES)}",
        )
    if not file.exists():
        raise DataFileError(file, "file not found")
    if not file.is_file():
        raise DataFileError(file, "not a regular file")
    if file.stat().st_size == 0:
        raise DataFileError(file, "file is empty (0 bytes)")
    return file


def load_applications(path: str | os.PathLike[str], spec: DatasetSpec | str | None = None) -> pd.DataFrame:
    """Read applications from a CSV or Parquet file of the data set `spec` (default: german_credit).

    Returns the file's columns unchanged (CSV: all text) plus `source_row` and, if absent,
    the spec's id column (first column). Raises `DataFileError` for an unknown format, a missing,
    unreadable or empty file, or missing feature columns.
    """
    spec = load_spec(spec)
    file = check_data_file(path)
    suffix = file.suffix.lower()

    df = _read_csv(file) if suffix in CSV_SUFFIXES else _read_parquet(file)
    # Stray spaces around header names are a common export artefact, never meaningful.
    df.columns = [str(c).strip() for c in df.columns]

    if len(df.index) == 0:
        raise DataFileError(file, "file has a header but no data rows")
    missing = [c for c in spec.feature_columns if c not in df.columns]
    if missing:
        raise DataFileError(file, missing_columns_message(missing, list(map(str, df.columns)), spec))

    df = df.reset_index(drop=True)
    # Rows are read in file order, so position + 1 is the data row number (header excluded).
    df[SOURCE_ROW_COLUMN] = pd.RangeIndex(1, len(df) + 1).to_numpy()
    if spec.id_column not in df.columns:
        df.insert(0, spec.id_column, generate_application_ids(df, spec))
    else:
        df[spec.id_column] = normalize_ids(df[spec.id_column])
    return df


__all__ = [
    "ALLOWED_SUFFIXES",
    "SOURCE_ROW_COLUMN",
    "generate_application_ids",
    "load_applications",
    "missing_columns_message",
    "normalize_ids",
]
