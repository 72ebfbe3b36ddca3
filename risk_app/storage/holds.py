"""Held scoring batches: a batch whose inputs drifted waits for an analyst before it counts.

A lender does not want a batch scored on a population the model never saw to flow on silently.
When the drift check of a batch fails, the batch is scored and recorded in the ledger as usual
(nothing is lost, the scores can be read) but also **held** in `risk.held_batches`:

    batch_id, dataset, model_version, source_file, partition_key, reason (the drift sentence),
    held_at, released_at, released_by, release_reason

A held batch is left out of the labeled book (`risk_app.outcomes.book`), so neither the book,
the backtests nor training on the book count it, and Dagster runs nothing downstream of it.
An analyst releases it with a reason (`risk-app scoring release BATCH --reason ...` or the
Dagster job `release_scoring_batch_job`); the release is kept beside the hold, so the table is
the audit trail. Re-scoring a held batch that drifts again holds it again.

    hold_batch(HoldRequest(batch_id, "german_credit", "german_credit/3", "a.csv", key, sentence))
    release_batch(batch_id, reason="checked with the product team: new branch, expected", by="cli")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from risk_app.errors import RiskAppError
from risk_app.storage.scores import warehouse_connection
from risk_app.storage.sql import qualified, quote_ident

SCHEMA = "risk"
HELD = "held_batches"
MIN_REASON_CHARS = 10
_DDL = """batch_id varchar, dataset varchar, model_version varchar, source_file varchar,
    partition_key varchar, reason varchar, held_at timestamptz, released_at timestamptz,
    released_by varchar, release_reason varchar"""


@dataclass(frozen=True)
class HoldRequest:
    """A batch to hold and why (the drift check's sentence)."""

    batch_id: str
    dataset: str
    model_version: str
    source_file: str
    partition_key: str
    reason: str


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {quote_ident(SCHEMA, 'schema')}")
    con.execute(f"create table if not exists {qualified(SCHEMA, HELD)} ({_DDL})")  # fixed DDL


def hold_batch(request: HoldRequest, path: str | os.PathLike[str] | None = None) -> str:
    """Hold a batch (replacing an earlier hold or release of it); returns the sentence to show."""
    with warehouse_connection(path) as con:
        ensure_table(con)
        con.execute("begin")
        con.execute(f"delete from {qualified(SCHEMA, HELD)} where batch_id = ?", [request.batch_id])
        con.execute(
            f"insert into {qualified(SCHEMA, HELD)} values (?, ?, ?, ?, ?, ?, ?, null, null, null)",
            [
                request.batch_id, request.dataset, request.model_version, request.source_file,
                request.partition_key, request.reason, datetime.now(UTC),
            ],
        )  # fmt: skip
        con.execute("commit")
    return (
        f"batch {request.batch_id[:12]} ({request.source_file}) is held: it stays out of the labeled "
        f"book until an analyst releases it with a reason (risk-app scoring release "
        f"{request.batch_id[:12]} --reason ..., or release_scoring_batch_job)"
    )


def held_batch_ids(con: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
    """Batches of `dataset` held and not released, read inside the caller's connection."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [SCHEMA, HELD],
    ).fetchone()
    if not exists or not exists[0]:
        return set()
    rows = con.execute(
        f"select batch_id from {qualified(SCHEMA, HELD)} where dataset = ? and released_at is null",
        [dataset],
    ).fetchall()
    return {str(row[0]) for row in rows}


def held_batches(
    *, include_released: bool = False, path: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Held batches, newest first (with `include_released`, released ones too)."""
    with warehouse_connection(path) as con:
        ensure_table(con)
        rows = con.execute(f"select * from {qualified(SCHEMA, HELD)} order by held_at desc").fetchdf()
    return rows if include_released else rows[rows["released_at"].isna()].reset_index(drop=True)


def release_batch(batch: str, *, reason: str, by: str, path: str | os.PathLike[str] | None = None) -> str:
    """Release a held batch (a full id or a prefix of at least 8 characters) with a reason;
    the sentence says what happened, or `RiskAppError` says in one sentence why not."""
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON_CHARS:
        raise RiskAppError(
            f"releasing batch {batch!r} needs a reason of at least {MIN_REASON_CHARS} characters "
            "(what was checked, who agreed); it is kept with the release"
        )
    if len(batch) < 8:
        raise RiskAppError(f"batch {batch!r}: give the batch id or at least its first 8 characters")
    with warehouse_connection(path) as con:
        ensure_table(con)
        rows = con.execute(
            f"select batch_id, source_file, released_at from {qualified(SCHEMA, HELD)} "
            "where starts_with(batch_id, ?)",
            [batch],
        ).fetchall()
        if not rows:
            raise RiskAppError(f"batch {batch!r} is not held (risk-app scoring held lists the held batches)")
        if len(rows) > 1:
            raise RiskAppError(f"batch {batch!r} matches {len(rows)} held batches; give more of its id")
        batch_id, source_file, released_at = rows[0]
        if released_at is not None:
            raise RiskAppError(f"batch {batch_id[:12]} ({source_file}) was already released at {released_at}")
        con.execute(
            f"update {qualified(SCHEMA, HELD)} set released_at = ?, released_by = ?, release_reason = ? "
            "where batch_id = ?",
            [datetime.now(UTC), by, reason, batch_id],
        )
    return (
        f"batch {batch_id[:12]} ({source_file}) released by {by}: it counts in the labeled book from "
        f"its next build; reason: {reason}"
    )


__all__ = [
    "HELD",
    "HoldRequest",
    "held_batch_ids",
    "held_batches",
    "hold_batch",
    "release_batch",
]
