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

The tables have fixed columns (declared here, created by `storage.file_ledger.LedgerTables`),
are written through
`storage.scores.warehouse_connection` (the scoring ledger's lock) and always in one
transaction, so a reader sees a file's overrides whole or not at all. Names reach SQL only
through `storage.sql` (`qualified`, `quote_ident`); values only as `?` parameters or a
registered frame.
"""

from __future__ import annotations

from risk_app.storage.file_ledger import QUARANTINE_DDL, LedgerTables

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
    QUARANTINE: QUARANTINE_DDL,
}


TABLES = LedgerTables(SCHEMA, _DDL, files=FILES, quarantine=QUARANTINE)
ensure_tables = TABLES.ensure_tables
table_columns = TABLES.table_columns
insert_rows = TABLES.insert_rows
has_table = TABLES.has_table
read_rows = TABLES.read_rows


__all__ = [
    "FILES", "OVERRIDES", "QUARANTINE", "SCHEMA", "TABLES", "ensure_tables", "has_table", "insert_rows",
    "read_rows", "table_columns",
]  # fmt: skip
