"""The override tables of the warehouse, beside the scoring ledger and the outcome tables.

    risk.override_files       one row per override file taken in: file id (sha256 of its
                              bytes), data set, source, rows in / accepted / quarantined, the
                              reason codes in force, origin, time
    risk.overrides            one row per accepted override: application id, scoring batch,
                              the model version whose decision it overrides, model and analyst
                              decisions, side (low = approve a decline, high = decline an
                              approval), reason code, analyst reference, decided_at, file id
    risk.override_quarantine  one row per failed check of an override file (the columns of
                              every quarantine table, plus file id and data set)

The tables have fixed columns (created here), are written through
`storage.scores.warehouse_connection` (the scoring ledger's lock) and always in one
transaction, so a reader sees a file's overrides whole or not at all. Names reach SQL only
through `storage.sql` (`qualified`, `quote_ident`); values only as `?` parameters or a
registered frame.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from risk_app.storage.scores import warehouse_connection
from risk_app.storage.sql import qualified, quote_ident

SCHEMA = "risk"
FILES, OVERRIDES, QUARANTINE = "override_files", "overrides", "override_quarantine"

_DDL: dict[str, str] = {
    FILES: """file_id varchar, dataset varchar, source_file varchar, partition_key varchar,
        n_in bigint, n_accepted bigint, n_quarantined bigint, reason_codes varchar,
        origin varchar, recorded_at timestamptz""",
    OVERRIDES: """application_id varchar, batch_id varchar, model_version varchar,
        model_decision varchar, analyst_decision varchar, side varchar, reason_code varchar,
        analyst varchar, decided_at timestamp, probability_of_default double,
        risk_grade varchar, file_id varchar, dataset varchar, source_file varchar,
        source_row bigint, recorded_at timestamptz""",
    QUARANTINE: """source_file varchar, row_number bigint, application_id varchar, "column" varchar,
        "check" varchar, failure_value varchar, reason varchar, file_id varchar, dataset varchar""",
}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and the override tables when they are not there yet."""
    con.execute(f"create schema if not exists {quote_ident(SCHEMA, 'schema')}")
    for table, columns in _DDL.items():  # fixed DDL of this module, not user text
        con.execute(f"create table if not exists {qualified(SCHEMA, table)} ({columns})")


def table_columns(table: str) -> list[str]:
    """The fixed columns of one override table, in order."""
    return [part.split()[0].strip('"') for part in _DDL[table].split(",")]


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Append `frame` (exactly the table's columns, by name) inside the caller's transaction."""
    if frame.empty:
        return
    con.register("_override_rows", frame[table_columns(table)])
    try:
        con.execute(f"insert into {qualified(SCHEMA, table)} by name select * from _override_rows")
    finally:
        con.unregister("_override_rows")


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
    """Rows of `risk.<table>` whose columns equal `equals` (all rows when empty); an empty frame
    with the table's columns when it is absent. `con`: read inside the caller's connection."""
    if con is None:
        with warehouse_connection(path) as own:
            return read_rows(table, equals, con=own)
    equals = dict(equals or {})
    if not has_table(con, table):
        return pd.DataFrame(columns=table_columns(table) if table in _DDL else [])
    where = " and ".join(f"{quote_ident(column)} = ?" for column in equals)
    sql = f"select * from {qualified(SCHEMA, table)}" + (f" where {where}" if where else "")
    return con.execute(sql, list(equals.values())).fetchdf()


__all__ = ["FILES", "OVERRIDES", "QUARANTINE", "SCHEMA", "ensure_tables", "insert_rows", "read_rows"]
