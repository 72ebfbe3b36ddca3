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

The tables have fixed columns (declared here, created by `storage.file_ledger.LedgerTables`), are
written through `storage.scores.warehouse_connection` (the same lock as the scoring ledger) and
always in one transaction, so a reader sees a file's outcomes whole or not at all.
"""

from __future__ import annotations

import os

import pandas as pd

from risk_app.storage.file_ledger import QUARANTINE_DDL, LedgerTables
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
    QUARANTINE: QUARANTINE_DDL,
    BACKTESTS: """dataset varchar, vintage varchar, model_version varchar, grade varchar,
        n bigint, defaults bigint, mean_pd double, realized_rate double, jeffreys_low double,
        jeffreys_high double, p_value double, light varchar, verdict varchar, auc double,
        brier double, ece double, n_vintage bigint, light_overall varchar, summary varchar,
        computed_at timestamptz""",
}


TABLES = LedgerTables(SCHEMA, _DDL, files=FILES, quarantine=QUARANTINE)
ensure_tables = TABLES.ensure_tables
table_columns = TABLES.table_columns
insert_rows = TABLES.insert_rows
has_table = TABLES.has_table
read_rows = TABLES.read_rows


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
    "TABLES",
    "ensure_tables",
    "has_table",
    "insert_rows",
    "read_rows",
    "replace_backtest",
    "table_columns",
    "write_book_table",
]
