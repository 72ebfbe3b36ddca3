"""The outcome tables of the warehouse, beside the scoring ledger of `risk_app.storage.scores`.

    risk.outcome_files       one row per outcome file taken in: file id (sha256 of its bytes),
                             data set, source, rows in / accepted / quarantined, origin, time
    risk.outcomes            one row per accepted outcome: application id, label in the data
                             set's own words, default 0/1, observation date, file id
    risk.outcome_quarantine  one row per failed check of an outcome file (the same columns as
                             the applications' quarantine, plus file id and data set)
    risk.backtests           one row per (data set, vintage, model version, grade): see
                             `risk_app.outcomes.backtest`
    risk.labeled_book        the latest labeled book of one data set, for SQL (rebuilt whole)

The tables have fixed columns (created here, once), are written through
`storage.scores.warehouse_connection` (the same lock as the scoring ledger) and always in one
transaction, so a reader sees a file's outcomes whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from risk_app.storage.scores import warehouse_connection
from risk_app.storage.sql import qualified, quote_ident
from risk_app.storage.warehouse import replace_table

SCHEMA = "risk"
FILES, OUTCOMES, QUARANTINE, BACKTESTS = ("outcome_files", "outcomes", "outcome_quarantine", "backtests")
BOOK = "labeled_book"

_DDL: dict[str, str] = {
    FILES: """file_id varchar, dataset varchar, source_file varchar, partition_key varchar,
        n_in bigint, n_accepted bigint, n_quarantined bigint, origin varchar,
        recorded_at timestamptz""",
    OUTCOMES: """application_id varchar, outcome_label varchar, outcome_default bigint,
        observation_date timestamp, file_id varchar, dataset varchar, source_file varchar,
        source_row bigint, recorded_at timestamptz""",
    QUARANTINE: """source_file varchar, row_number bigint, application_id varchar, "column" varchar,
        "check" varchar, failure_value varchar, reason varchar, file_id varchar, dataset varchar""",
    BACKTESTS: """dataset varchar, vintage varchar, model_version varchar, grade varchar,
        n bigint, defaults bigint, mean_pd double, realized_rate double, jeffreys_low double,
        jeffreys_high double, p_value double, light varchar, verdict varchar, auc double,
        brier double, ece double, n_vintage bigint, light_overall varchar, summary varchar,
        computed_at timestamptz""",
}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and the outcome tables when they are not there yet."""
    con.execute(f"create schema if not exists {quote_ident(SCHEMA, 'schema')}")
    for table, columns in _DDL.items():  # fixed DDL of this module, not user text
        con.execute(f"create table if not exists {qualified(SCHEMA, table)} ({columns})")


def table_columns(table: str) -> list[str]:
    """The fixed columns of one outcome table, in order."""
    names = []
    for part in _DDL[table].split(","):
        names.append(part.split()[0].strip('"'))
    return names


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Append `frame` (exactly the table's columns, by name) inside the caller's transaction."""
    if frame.empty:
        return
    ordered = frame[table_columns(table)]
    con.register("_outcome_rows", ordered)
    try:
        con.execute(f"insert into {qualified(SCHEMA, table)} by name select * from _outcome_rows")
    finally:
        con.unregister("_outcome_rows")


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [SCHEMA, table],
    ).fetchall()[0]
    return bool(found and found[0])


def read_rows(
    table: str,
    equals: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Rows of an outcome table whose columns equal `equals` (all rows when empty); all its columns,
    and an empty frame with those columns when the table is absent. `con`: read inside the
    caller's connection (and transaction, under its lock) instead of opening one."""
    if con is None:
        with warehouse_connection(path) as own:
            return read_rows(table, equals, con=own)
    equals = dict(equals or {})
    if not has_table(con, table):
        return pd.DataFrame(columns=table_columns(table))
    where = " and ".join(f"{quote_ident(column)} = ?" for column in equals)
    sql = f"select * from {qualified(SCHEMA, table)}" + (f" where {where}" if where else "")
    return con.execute(sql, list(equals.values())).fetchdf()


def replace_backtest(
    rows: pd.DataFrame, dataset: str, vintage: str, path: str | os.PathLike[str] | None = None
) -> int:
    """Replace one vintage's backtest rows of one data set in one transaction; returns rows written."""
    with warehouse_connection(path) as con:
        ensure_tables(con)
        con.begin()
        try:
            con.execute(
                f"delete from {qualified(SCHEMA, BACKTESTS)} where dataset = ? and vintage = ?",
                [dataset, vintage],
            )
            insert_rows(con, BACKTESTS, rows)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return len(rows)


def write_book_table(book: pd.DataFrame, dataset: str, path: str | os.PathLike[str] | None = None) -> int:
    """Replace `risk.labeled_book` with one data set's book (a table analysts can query)."""
    frame = book.assign(dataset=dataset)
    # Empty object columns have no type for DuckDB; declare them as text.
    frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
    with warehouse_connection(path) as con:
        con.execute(f"create schema if not exists {quote_ident(SCHEMA, 'schema')}")
        return replace_table(con, BOOK, frame, schema=SCHEMA)


__all__ = [
    "BACKTESTS",
    "BOOK",
    "FILES",
    "OUTCOMES",
    "QUARANTINE",
    "SCHEMA",
    "ensure_tables",
    "has_table",
    "insert_rows",
    "read_rows",
    "replace_backtest",
    "table_columns",
    "write_book_table",
]
