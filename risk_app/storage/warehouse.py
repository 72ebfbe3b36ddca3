"""A small DuckDB warehouse for tables that outlive one run (validated data, quarantine, scores).

One file, `paths.warehouse_path()` by default. Each call opens and closes its own connection:
DuckDB allows one writer per file, so a held connection would block the CLI, Dagster and tests
from each other. Writes replace a table inside a transaction, so readers see the old table or
the new one, never a half-written one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from risk_app import paths
from risk_app.errors import RiskAppError
from risk_app.storage.sql import check_name, qualified, quote_ident


class TableNotFoundError(RiskAppError):
    """A warehouse table that does not exist."""


def check_table_name(name: str) -> str:
    """`name` when it may name a warehouse table (`risk_app.storage.sql.SAFE_NAME`), else ConfigError."""
    return check_name(name, "table")


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    target = Path(path) if path is not None else paths.warehouse_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def replace_table(
    con: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame, schema: str | None = None
) -> int:
    """Replace the table `name` (in `schema` when given; names are checked and quoted here) with
    the rows of `df` in one transaction on `con`: the old rows or the new, never a half table."""
    con.begin()
    try:
        con.register("_incoming", df)
        if schema is None:
            con.execute(f"CREATE OR REPLACE TABLE {quote_ident(name, 'table')} AS SELECT * FROM _incoming")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {qualified(schema, name)} AS SELECT * FROM _incoming")
        con.unregister("_incoming")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return len(df)


def write_table(name: str, df: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> int:
    """Create or replace table `name` with the rows of `df`; returns the row count written."""
    check_table_name(name)
    con = duckdb.connect(str(_resolve(path)))
    try:
        return replace_table(con, name, df)
    finally:
        con.close()


def list_tables(path: str | os.PathLike[str] | None = None) -> list[str]:
    target = _resolve(path)
    if not target.exists():
        return []
    con = duckdb.connect(str(target), read_only=True)
    try:
        return sorted(
            row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        )
    finally:
        con.close()


def read_table(name: str, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The whole table `name` as a DataFrame; TableNotFoundError if it does not exist."""
    check_table_name(name)
    target = _resolve(path)
    if name not in list_tables(target):
        raise TableNotFoundError(f"{target}: no table '{name}' in the warehouse")
    return query(f"SELECT * FROM {quote_ident(name, 'table')}", path=target)


def query(
    sql: str, path: str | os.PathLike[str] | None = None, params: list[Any] | None = None
) -> pd.DataFrame:
    """Run one SQL statement (with optional `?` parameters) and return its result."""
    target = _resolve(path)
    con = duckdb.connect(str(target))
    try:
        try:
            return con.execute(sql, params or []).fetchdf()
        except duckdb.Error as exc:
            raise RiskAppError(f"{target}: query failed: {' '.join(str(exc).split())}") from None
    finally:
        con.close()


__all__ = [
    "TableNotFoundError",
    "check_table_name",
    "list_tables",
    "query",
    "read_table",
    "replace_table",
    "write_table",
]
