"""Scoring outputs a bank can hand around: named by batch, never clobbered, safe in a spreadsheet.

* `batch_output_path` names an output after its input file, the input's content hash *and*
  the model version (`batch_A.csv.3f2a9c1b7d4e.german_credit_3.scores.parquet`), so
  `batch_A.csv` and `batch_A.parquet` never write the same file, one batch never overwrites
  another's output, and a second model's scores never replace the first's (the ledger refuses
  a row whose output file another batch or model's row points at: `risk_app.storage.scores`).
* `write_output` writes atomically and, unless asked to overwrite, refuses an existing file;
  the no-clobber check is the atomic `link()` itself, so two processes cannot both win.
* `neutralize_csv_cells` defuses spreadsheet formulas in CSV text cells (OWASP "CSV
  injection"): a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
  Numeric columns (a negative amount is a number) and Parquet files keep values as they are.
* `check_output_suffix` and `default_quarantine_path`: an output is .parquet or .csv, and its
  quarantine lies beside it as `<stem>.quarantine.parquet`.

This module writes files and knows nothing of models or the ledger; the scoring path for one
file (`risk_app.scoring.staged`) and its staged outputs (`risk_app.scoring.stream`) use it.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Literal

import pandas as pd

from risk_app import paths
from risk_app.atomic import atomic_write_bytes
from risk_app.errors import ConfigError, RiskAppError

# OWASP: cells starting with these are run as formulas by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
OutputFormat = Literal["parquet", "csv"]
OUTPUT_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class OutputExistsError(RiskAppError):
    """The output file is already there and overwriting was not asked for."""


def neutralize_csv_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas; numbers are left alone."""
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        text = series.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_TRIGGERS))
        if text.any():
            out[column] = series.astype(object)
            out.loc[text, column] = "'" + series[text].astype(str)
    return out


def encode_frame(df: pd.DataFrame, suffix: str) -> bytes:
    """The bytes of `df` as Parquet (values as they are) or CSV (formula cells neutralized)."""
    if suffix == ".parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return buffer.getvalue()
    # RFC 4180 line ends: a cell holding a bare CR is then quoted instead of splitting the row.
    return neutralize_csv_cells(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def check_output_suffix(path: str | os.PathLike[str], what: str = "output") -> str:
    """The lower-case suffix of an output path; `ConfigError` unless it is .parquet or .csv."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"{path}: unsupported {what} format '{suffix or '(no suffix)'}'; "
            f"use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    return suffix


def default_quarantine_path(output_path: Path) -> Path:
    return output_path.with_name(f"{output_path.stem}.quarantine.parquet")


def write_output(df: pd.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write `df` atomically by suffix; `OutputExistsError` if the file exists and not `overwrite`."""
    target = Path(path)
    data = encode_frame(df, check_output_suffix(target, "output"))
    try:
        return atomic_write_bytes(target, data, overwrite=overwrite)
    except FileExistsError:
        raise OutputExistsError(
            f"{target}: already exists; not overwritten (pass overwrite=True / --overwrite)"
        ) from None


def batch_output_path(
    input_path: str | os.PathLike[str],
    batch_id: str,
    *,
    model_version: str,
    folder: str | os.PathLike[str] | None = None,
    fmt: OutputFormat = "parquet",
) -> Path:
    """`<folder>/<input name>.<first 12 of batch id>.<model version>.scores.<fmt>` (folder:
    `outputs/`; names made safe for a path: `german_credit/3` -> `german_credit_3`)."""
    name = _UNSAFE_NAME.sub("_", Path(input_path).name).strip("._") or "batch"
    version = _UNSAFE_NAME.sub("_", str(model_version)).strip("._") or "model"
    root = Path(folder) if folder is not None else paths.outputs_dir()
    return root / f"{name}.{batch_id[:12]}.{version}.scores.{fmt}"


__all__ = [
    "FORMULA_TRIGGERS",
    "OUTPUT_SUFFIXES",
    "OutputExistsError",
    "batch_output_path",
    "check_output_suffix",
    "default_quarantine_path",
    "encode_frame",
    "neutralize_csv_cells",
    "write_output",
]
