"""What the scoring ledger really holds, counted in SQL: the tests' own measure, independent of
the ledger's claimed counts (`risk.scoring_batches.n_scored`)."""

from __future__ import annotations

from risk_app.storage.scores import warehouse_connection


def scored_rows_per_batch() -> dict[str, int]:
    """batch_id -> rows in `risk.scored_applications` (empty when nothing was scored yet)."""
    with warehouse_connection() as con:
        found = con.execute(
            "select count(*) from information_schema.columns "
            "where table_schema = 'risk' and table_name = 'scored_applications' and column_name = 'batch_id'"
        ).fetchall()[0][0]
        if not found:
            return {}
        rows = con.execute("select batch_id, count(*) from risk.scored_applications group by 1").fetchall()
    return {str(batch_id): int(n) for batch_id, n in rows}
