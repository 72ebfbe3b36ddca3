"""An exactly-once file ledger in the warehouse: what outcome files and override files share.

A file someone drops (outcomes, analyst overrides) is read as text cells, checked row by row,
and taken in exactly once: it is identified by the sha256 of its bytes, the same content a
second time (another name, a re-run, the CLI after the sensor) adds nothing and reports what
the first time recorded. Each kind of file keeps its own fixed-column tables (`LedgerTables`:
a table of files, one of accepted rows, one of quarantined rows, perhaps more) and its own
checks; this module holds the rest, once:

- `LedgerTables`: create, insert into (by name, inside the caller's transaction) and read
  (values as `?` parameters) a set of fixed-column tables of one schema;
- `read_ledger_file`: the file's rows as written, with `source_row`, file-level problems
  raised as one `DataFileError` naming the file;
- `quarantine_rows`: failures `(row index, column, check)` as the quarantine table, each with a
  one-sentence reason naming file row and field;
- `file_id_of`: the sha256 of a file, refused when it changed since a sensor saw it;
- `record_once`: the caller's checks and writes inside one warehouse transaction under the
  warehouse lock, skipped when the file is already recorded, so two callers with the same file
  record it once and a process killed mid-write leaves nothing;
- `FileReport` and `recorded_report`: what taking in a file did, or found already done.

    tables = LedgerTables("risk", {"my_files": "...", "my_rows": "...", "my_quarantine": "..."},
                          files="my_files", quarantine="my_quarantine")
    written = record_once(tables, file_id, spec.name, path, write=lambda con: ...)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import duckdb
import pandas as pd

from data_contracts.spec import DatasetSpec
from risk_app.data.load import ALLOWED_SUFFIXES, SOURCE_ROW_COLUMN, normalize_ids, read_csv_cells
from risk_app.data.validate import QUARANTINE_COLUMNS, quarantine_id, quoted
from risk_app.errors import DataFileError, RiskAppError
from risk_app.storage.scores import file_batch_id, warehouse_connection
from risk_app.storage.sql import qualified, quote_ident

IngestStatus = Literal["recorded", "already_recorded"]
Failure = tuple[int, str, str]  # (row index in the file's frame, column, check)
T = TypeVar("T")

# Column definitions of a ledger's quarantine table (`quarantine_rows`' columns plus the file id
# and data set), the same in every ledger of files.
QUARANTINE_DDL = """source_file varchar, row_number bigint, application_id varchar, "column" varchar,
        "check" varchar, failure_value varchar, reason varchar, file_id varchar, dataset varchar"""


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists in the warehouse `con` is connected to."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0]
    return bool(found and found[0])


@dataclass(frozen=True)
class LedgerTables:
    """Fixed-column tables of one schema: `ddl` maps each table to its column definitions (code
    constants, never user text); `files` is the table of files taken in (keyed by file id and
    data set) and `quarantine` the table of their failed checks."""

    schema: str
    ddl: Mapping[str, str]
    files: str
    quarantine: str

    def ensure_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the schema and the tables when they are not there yet."""
        con.execute(f"create schema if not exists {quote_ident(self.schema, 'schema')}")
        for table, columns in self.ddl.items():  # fixed DDL of the caller's module, not user text
            con.execute(f"create table if not exists {qualified(self.schema, table)} ({columns})")

    def table_columns(self, table: str) -> list[str]:
        """The fixed columns of one table, in order."""
        return [part.split()[0].strip('"') for part in self.ddl[table].split(",")]

    def has_table(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        return has_table(con, self.schema, table)

    def insert_rows(self, con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
        """Append `frame` (exactly the table's columns, by name) inside the caller's transaction."""
        if frame.empty:
            return
        con.register("_ledger_rows", frame[self.table_columns(table)])
        try:
            con.execute(f"insert into {qualified(self.schema, table)} by name select * from _ledger_rows")
        finally:
            con.unregister("_ledger_rows")

    def read_rows(
        self,
        table: str,
        equals: Mapping[str, Any] | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> pd.DataFrame:
        """Rows of `schema.table` whose columns equal `equals` (all rows when empty); an empty
        frame with the table's columns when it is absent. `con`: read inside the caller's
        connection (and transaction, under its lock) instead of opening one."""
        if con is None:
            with warehouse_connection(path) as own:
                return self.read_rows(table, equals, con=own)
        equals = dict(equals or {})
        if not self.has_table(con, table):
            return pd.DataFrame(columns=self.table_columns(table) if table in self.ddl else [])
        where = " and ".join(f"{quote_ident(column)} = ?" for column in equals)
        sql = f"select * from {qualified(self.schema, table)}" + (f" where {where}" if where else "")
        return con.execute(sql, list(equals.values())).fetchdf()

    def is_recorded(self, con: duckdb.DuckDBPyConnection, file_id: str, dataset: str) -> bool:
        """Whether the file `file_id` of `dataset` is in the files table (read in `con`)."""
        seen = con.execute(
            f"select count(*) from {qualified(self.schema, self.files)} where file_id = ? and dataset = ?",
            [file_id, dataset],
        ).fetchall()[0]
        return bool(seen and seen[0])


@dataclass(frozen=True)
class FileReport:
    """What taking in one file did (or found already done); `KIND` names the file in messages."""

    KIND: ClassVar[str] = "data"

    status: IngestStatus
    file_id: str
    dataset: str
    source_file: str
    n_in: int
    n_accepted: int
    n_quarantined: int
    quarantine: pd.DataFrame

    @property
    def message(self) -> str:
        if self.status == "already_recorded":
            return (
                f"{self.source_file}: {self.KIND} file {self.file_id[:12]} was already taken in "
                f"({self.n_accepted} accepted, {self.n_quarantined} quarantined); nothing added"
            )
        return (
            f"{self.source_file}: {self.n_in} {self.KIND} row(s): {self.n_accepted} accepted, "
            f"{self.n_quarantined} quarantined"
        )


R = TypeVar("R", bound=FileReport)


def read_ledger_file(
    path: str | os.PathLike[str], spec: DatasetSpec, columns: tuple[str, ...], what: str
) -> pd.DataFrame:
    """The file's rows as written (text for CSV), with `source_row` and normalized ids;
    file-level problems (format, unreadable, a column of `columns` missing) raise one
    `DataFileError` naming the file. `what` finishes the missing-column sentence: "an
    <what>" (for example "outcome file of german_credit has ...")."""
    source = Path(path)
    kind = what.split()[0]
    if source.suffix.lower() not in ALLOWED_SUFFIXES:
        raise DataFileError(source, f"unsupported format {source.suffix!r}; use .csv or .parquet")
    try:
        # CSV: the applications' reader. A NUL stays in its cell (pandas would cut the id there and
        # record the row against another application); a header name twice is refused.
        frame = read_csv_cells(source) if source.suffix.lower() == ".csv" else pd.read_parquet(source)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataFileError(source, f"cannot read the {kind} file ({' '.join(str(exc).split())})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFileError(source, f"missing column(s) {', '.join(missing)}; an {what}")
    frame = frame.reset_index(drop=True)
    frame[SOURCE_ROW_COLUMN] = range(1, len(frame) + 1)
    frame[spec.id_column] = normalize_ids(frame[spec.id_column])
    return frame


def quarantine_rows(
    frame: pd.DataFrame,
    failures: list[Failure],
    source: str,
    spec: DatasetSpec,
    reason: Callable[[str], str],
) -> pd.DataFrame:
    """The quarantine table of `failures`: one row per failed check, with the file's row
    number, the value as shown (invisible characters escaped, long cells cut) and one sentence
    `row N, field C='v': <reason(check)>`."""
    records = []
    for index, column, check in failures:
        value = frame.at[index, column] if column in frame.columns else None
        text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
        row = int(frame.at[index, SOURCE_ROW_COLUMN])
        ident = frame.at[index, spec.id_column]
        shown = quoted(text)
        records.append(
            {
                "source_file": source,
                "row_number": row,
                "application_id": None if pd.isna(ident) else quarantine_id(str(ident)),
                "column": column,
                "check": check,
                "failure_value": shown,
                "reason": f"row {row}, field {column}={shown!r}: {reason(check)}",
            }
        )
    return pd.DataFrame.from_records(records, columns=list(QUARANTINE_COLUMNS))


def check_accounting(source: str, kind: str, n_in: int, n_accepted: int, n_quarantined: int) -> None:
    """Rows in = accepted + quarantined, or a `RuntimeError` (a bug, never a user error)."""
    if n_in != n_accepted + n_quarantined:
        raise RuntimeError(f"{source}: {kind} accounting broken: {n_in} != {n_accepted} + {n_quarantined}")


def file_id_of(input_path: str | os.PathLike[str], source: str, kind: str, expected_file_id: str = "") -> str:
    """The sha256 of the file's bytes; refused when there is no such file, or when it differs
    from `expected_file_id` (the sensor's, when given): the content changed since it was seen."""
    if not Path(input_path).is_file():
        raise RiskAppError(f"{source}: no such {kind} file")
    file_id = file_batch_id(input_path)
    if expected_file_id and file_id != expected_file_id:
        raise RiskAppError(
            f"{source}: content changed since it was seen "
            f"(sha256 {file_id[:12]}, expected {expected_file_id[:12]})"
        )
    return file_id


def recorded_report(
    tables: LedgerTables,
    report: type[R],
    file_id: str,
    dataset: str,
    path: str | os.PathLike[str] | None,
) -> R | None:
    """What an earlier taking-in of the same file recorded, or None."""
    key = {"file_id": file_id, "dataset": dataset}
    previous = tables.read_rows(tables.files, key, path=path)
    if not len(previous):
        return None
    first = previous.iloc[0]
    quarantine = tables.read_rows(tables.quarantine, key, path=path)
    return report(
        "already_recorded", file_id, dataset, str(first["source_file"]), int(first["n_in"]),
        int(first["n_accepted"]), int(first["n_quarantined"]), quarantine,
    )  # fmt: skip


def record_once(
    tables: LedgerTables,
    file_id: str,
    dataset: str,
    path: str | os.PathLike[str] | None,
    write: Callable[[duckdb.DuckDBPyConnection], T],
) -> T | None:
    """`write(con)` inside one transaction under the warehouse lock, committed when it returns;
    None (nothing written) when the file is already recorded. `write` reads what its checks
    need through `con` (a file taken in meanwhile is seen, never raced past) and inserts the
    file's rows; an exception (or a kill) leaves nothing."""
    with warehouse_connection(path) as con:
        tables.ensure_tables(con)
        con.begin()
        try:
            # Checked under the lock: two callers with the same file record it once.
            if tables.is_recorded(con, file_id, dataset):
                con.rollback()
                return None
            result = write(con)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return result


__all__ = [
    "Failure",
    "FileReport",
    "IngestStatus",
    "LedgerTables",
    "QUARANTINE_DDL",
    "check_accounting",
    "file_id_of",
    "has_table",
    "quarantine_rows",
    "read_ledger_file",
    "record_once",
    "recorded_report",
]
