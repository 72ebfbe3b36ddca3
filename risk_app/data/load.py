"""Read a file of loan applications into a DataFrame, refusing files that cannot be used at all.

`load_applications` (whole file) and `iter_applications` (chunks, for files larger than
memory) check only what makes a *file* unusable (unknown format, missing,
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

Two things a CSV reader would otherwise get wrong without a word (issue 20 §3):
- a NUL byte inside a cell: pandas' C reader keeps only what comes before it (`nul\x00id`
  became `nul`, another applicant's id). A file holding NUL bytes is read with each NUL kept
  as a character (`read_csv_cells`), so the contract quarantines the cell as it does for Parquet;
- duplicate header names: pandas renames the second `x` to `x.1` and the first copy silently
  wins. The raw header is read first and a file with a name twice is refused, naming it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_values import canonical_value
from risk_app.errors import DataFileError

SOURCE_ROW_COLUMN = "source_row"
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
ALLOWED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES

# Separators that cannot occur in a CSV field by accident, so "a|b" + "c" and "a" + "b|c" hash
# differently.
_FIELD_SEP = "\x1f"
_KV_SEP = "\x1e"
# NUL bytes are carried through pandas' C reader as this noncharacter (it cuts a cell at a NUL)
# and put back as NUL in every cell afterwards. Only files that hold a NUL are read this way.
_NUL_STAND_IN = "\ufffe"
_SCAN_BLOCK = 1 << 20


def _row_digest(values: Iterable[Any], columns: Iterable[str]) -> str:
    canonical = _FIELD_SEP.join(
        f"{c}{_KV_SEP}{canonical_value(v)}" for c, v in zip(columns, values, strict=True)
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def generate_application_ids(
    df: pd.DataFrame, spec: DatasetSpec | None = None, seen: dict[str, int] | None = None
) -> pd.Series:
    """Deterministic, unique ids from each row's feature values (see the module docstring).

    Only the spec's feature columns are hashed: the label, extra columns and column order
    do not change an applicant's id. `seen` carries the ids of earlier chunks of the same file
    (and is updated), so a duplicate in a later chunk still gets its "-2".
    """
    spec = load_spec(spec)
    columns = [c for c in spec.feature_columns if c in df.columns]
    base = [f"app-{_row_digest(row, columns)}" for row in df[columns].itertuples(index=False, name=None)]
    seen = {} if seen is None else seen
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


def duplicate_names(names: Iterable[object]) -> list[str]:
    """Header names (stripped; empty ones left out) that occur more than once, in file order."""
    counts = Counter(str(n).strip() for n in names)
    return [name for name, n in counts.items() if n > 1 and name]


def _refuse_duplicates(file: Path, names: Iterable[object]) -> None:
    twice = duplicate_names(names)
    if twice:
        more = f" and {len(twice) - 6} more" if len(twice) > 6 else ""
        shown = ", ".join(repr(n) for n in twice[:6]) + more
        raise DataFileError(
            file,
            f"duplicate column name(s) in the header: {shown}; every column must be named once "
            "(which copy holds the data would be a guess)",
        )


def _checked_columns(df: pd.DataFrame, file: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Header names stripped; `DataFileError` when a name occurs twice or a feature column of
    the spec is missing."""
    # Stray spaces around header names are a common export artefact, never meaningful.
    _refuse_duplicates(file, df.columns)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in spec.feature_columns if c not in df.columns]
    if missing:
        raise DataFileError(file, missing_columns_message(missing, list(map(str, df.columns)), spec))
    return df


def _with_rows_and_ids(
    df: pd.DataFrame, first_row: int, spec: DatasetSpec, seen: dict[str, int]
) -> pd.DataFrame:
    """`source_row` from `first_row` on, and the id column (generated or normalized)."""
    df = df.reset_index(drop=True)
    # Rows are read in file order, so position + first_row is the data row number (header excluded).
    df[SOURCE_ROW_COLUMN] = pd.RangeIndex(first_row, first_row + len(df)).to_numpy()
    if spec.id_column not in df.columns:
        df.insert(0, spec.id_column, generate_application_ids(df, spec, seen))
    else:
        df[spec.id_column] = normalize_ids(df[spec.id_column])
    return df


def _has_nul(file: Path) -> bool:
    with file.open("rb") as handle:
        while block := handle.read(_SCAN_BLOCK):
            if b"\x00" in block:
                return True
    return False


class _NulStandIn(io.RawIOBase):
    """The file's bytes with every NUL replaced by the UTF-8 bytes of `_NUL_STAND_IN`."""

    def __init__(self, file: Path) -> None:
        super().__init__()
        self._raw = file.open("rb")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = self._raw.read(_SCAN_BLOCK)
            if not block:
                return 0
            self._pending = block.replace(b"\x00", _NUL_STAND_IN.encode("utf-8"))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _put_back_nul(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = [str(c).replace(_NUL_STAND_IN, "\x00") for c in df.columns]
    for column in df.columns:
        if df[column].dtype == object:
            df[column] = df[column].str.replace(_NUL_STAND_IN, "\x00", regex=False)
    return df


def _raw_header(file: Path) -> list[str]:
    """The first CSV record as written (quotes honoured): pandas renames a repeated name."""
    with file.open("r", encoding="utf-8-sig", newline="") as handle:
        # pandas skips blank lines before the header as well.
        return next((row for row in csv.reader(handle) if row), [])


def _csv_chunks(file: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        _refuse_duplicates(file, _raw_header(file))
        # dtype=str: values stay as written; the contract coerces them row by row later.
        # keep_default_na: empty cells (and "NA") become missing, which the contract reports.
        options: dict[str, Any] = {"dtype": str, "keep_default_na": True, "skip_blank_lines": True}
        nul = _has_nul(file)
        source: Any = io.BufferedReader(_NulStandIn(file)) if nul else file
        try:
            if chunk_rows is None:
                frame = pd.read_csv(source, encoding="utf-8", **options)
                yield _put_back_nul(frame) if nul else frame
                return
            with pd.read_csv(source, encoding="utf-8", chunksize=chunk_rows, **options) as reader:
                for frame in reader:
                    yield _put_back_nul(frame) if nul else frame
        finally:
            if nul:
                source.close()
    except pd.errors.EmptyDataError:
        raise DataFileError(file, "file is empty (no header, no rows)") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            file, f"not UTF-8 text, cannot read as CSV ({exc.reason} at byte {exc.start})"
        ) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        detail = " ".join(str(exc).split())
        raise DataFileError(file, f"cannot parse as CSV: {detail}") from None


def read_csv_cells(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A whole CSV as text cells, as `iter_applications` reads it: a NUL stays in its cell and a
    repeated header name refuses the file (`DataFileError`). For files of other contracts
    (outcomes) that go through the same reader."""
    return next(_csv_chunks(Path(path), None))


def _parquet_chunks(file: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    # pyarrow's Parquet reader (heavy) only for Parquet files; CSV files never need it.
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        _refuse_duplicates(file, parquet.schema_arrow.names)
        if chunk_rows is None:
            yield pd.read_parquet(file)
            return
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        if isinstance(exc, DataFileError):
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFileError(file, f"cannot read as Parquet: {detail}") from None


def iter_applications(
    path: str | os.PathLike[str], spec: DatasetSpec | str | None = None, chunk_rows: int | None = 50_000
) -> Iterator[pd.DataFrame]:
    """The file's applications in chunks of at most `chunk_rows` rows, each as `load_applications`
    would give those rows (file-wide `source_row`; generated ids unique across chunks), so a
    file larger than memory can be validated and scored chunk by chunk. `chunk_rows=None`: the
    whole file as one chunk. File problems raise `DataFileError`, at the latest on the first chunk.
    """
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    spec = load_spec(spec)
    file = check_data_file(path)
    reader = _csv_chunks if file.suffix.lower() in CSV_SUFFIXES else _parquet_chunks
    first_row, seen = 1, {}
    for raw in reader(file, chunk_rows):
        if len(raw.index) == 0:
            continue
        df = _checked_columns(raw, file, spec)
        yield _with_rows_and_ids(df, first_row, spec, seen)
        first_row += len(df.index)
    if first_row == 1:
        raise DataFileError(file, "file has a header but no data rows")


def load_applications(path: str | os.PathLike[str], spec: DatasetSpec | str | None = None) -> pd.DataFrame:
    """Read applications from a CSV or Parquet file of the data set `spec` (default: german_credit).

    Returns the file's columns unchanged (CSV: all text) plus `source_row` and, if absent,
    the spec's id column (first column). Raises `DataFileError` for an unknown format, a missing,
    unreadable or empty file, or missing feature columns.
    """
    return next(iter_applications(path, spec, chunk_rows=None))


__all__ = [
    "ALLOWED_SUFFIXES",
    "SOURCE_ROW_COLUMN",
    "generate_application_ids",
    "iter_applications",
    "load_applications",
    "duplicate_names",
    "missing_columns_message",
    "normalize_ids",
    "read_csv_cells",
]
