"""The scoring ledger: every scored batch lands in the warehouse exactly once.

A batch is one input file, identified by the sha256 of its bytes (`file_batch_id`), so the same
content under another name is the same batch. `record_scored_batch` writes, in one DuckDB
transaction under an inter-process lock:

    risk.scoring_batches       one row per (batch_id, model_version): the policy (id, cut-off,
                               objective), data set, source file, partition, row counts, output
                               file, origin, scored_at
    risk.scored_applications   the scores, each row tagged with batch_id, dataset, source_file
    risk.scoring_applications  the contract-valid input rows of the batch (when given)
    risk.scoring_quarantine    the batch's failed checks (when given)

`mode="append"` (the CLI) adds nothing when the ledger already holds the same batch scored by
the same model, and says so; `mode="replace"` (re-running a Dagster partition) deletes that
model's ledger row and scores of the batch and inserts the new ones in the same transaction;
other models' scores of the same batch are never touched. The batch's input rows
(applications, quarantine) belong to the batch, not to a model: the first model to record the
batch writes them, and they go only with the last model's rows.
A ledger row never points at another batch's or model's scores: a batch whose output file
is already the output of another (batch, model) row is refused (`OutputOwnedError`) before
anything is written, so its file is never published over the other's. Batches stay keyed by
bytes, so the same applications re-exported with one byte changed (a CRLF, a trailing newline)
are a new batch; the record then counts the batch's ids that the same model already scored in
other batches of the data set and says so loudly when they are most of them
(`BatchRecord.mostly_rescored`). A
process killed mid-write leaves the transaction uncommitted, which DuckDB discards on the next
open: readers see the batch whole or not at all.

    from risk_app.storage.scores import record_scored_batch, ScoredBatch
    result = record_scored_batch(ScoredBatch(batch_id=..., model_version=..., dataset=..., ...))
    print(result.message)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from risk_app import paths
from risk_app.errors import RiskAppError
from risk_app.storage.hashing import sha256_file
from risk_app.storage.locks import file_lock
from risk_app.storage.sql import qualified, quote_ident, sql_type

SCHEMA = "risk"
BATCHES, SCORES, APPLICATIONS, QUARANTINE = (
    "scoring_batches",
    "scored_applications",
    "scoring_applications",
    "scoring_quarantine",
)
BATCH_COLUMNS = ("batch_id", "dataset", "source_file")
Origin = Literal["cli", "dagster", "library"]
WriteMode = Literal["append", "replace"]
Status = Literal["appended", "replaced", "already_recorded"]


@dataclass(frozen=True)
class ScoredBatch:
    """One scored input file and everything about it the warehouse keeps."""

    batch_id: str
    model_version: str
    dataset: str
    source_file: str
    # A frame, or (for batches larger than memory) a Path/glob of Parquet files whose rows
    # already carry the BATCH_COLUMNS tags; DuckDB then reads them in a stream.
    scores: pd.DataFrame | Path
    applications: pd.DataFrame | Path | None = None
    quarantine: pd.DataFrame | Path | None = None
    partition_key: str | None = None
    output_path: str | None = None
    origin: Origin = "library"
    n_in: int | None = None
    # The credit policy that made the decisions (`scoring.batch.policy_of`), beside the model version.
    policy_id: str = ""
    policy_cutoff: float | None = None
    policy_objective: str = ""


@dataclass(frozen=True)
class BatchRecord:
    """What `record_scored_batch` did."""

    status: Status
    batch_id: str
    model_version: str
    rows: int
    replaced_rows: int = 0
    previous: dict[str, Any] | None = None
    # Ids of this batch that the same model already scored in other batches of the data set.
    rescored_ids: int = 0
    rescored_from: tuple[str, ...] = ()

    @property
    def mostly_rescored(self) -> bool:
        """Most of the batch's ids were already scored by this model: likely a re-export."""
        return self.status != "already_recorded" and self.rows > 0 and 2 * self.rescored_ids > self.rows

    @property
    def rescored_warning(self) -> str:
        """One sentence when `mostly_rescored`, else empty."""
        if not self.mostly_rescored:
            return ""
        shown = ", ".join(b[:12] for b in self.rescored_from[:3])
        more = f" and {len(self.rescored_from) - 3} more" if len(self.rescored_from) > 3 else ""
        share = 100 * self.rescored_ids / self.rows
        return (
            f"WARNING: {self.rescored_ids} of {self.rows} application ids ({share:.0f}%) of batch "
            f"{self.batch_id[:12]} were already scored by model {self.model_version} in batch "
            f"{shown}{more}: a re-export of a file scored before (a CRLF or a trailing newline "
            "makes new bytes)? They are now recorded twice."
        )

    @property
    def message(self) -> str:
        short = self.batch_id[:12]
        if self.status == "already_recorded":
            when = (self.previous or {}).get("scored_at", "earlier")
            return (
                f"batch {short} was already scored by model {self.model_version} at {when}; "
                "nothing added to the warehouse"
            )
        if self.status == "replaced":
            done = f"batch {short}: {self.replaced_rows} earlier row(s) replaced by {self.rows}"
        else:
            done = f"batch {short}: {self.rows} row(s) appended to {SCHEMA}.{SCORES}"
        return f"{done}. {self.rescored_warning}" if self.mostly_rescored else done


class OutputOwnedError(RiskAppError):
    """The output file of a batch is already the recorded output of another batch or model."""


def file_batch_id(path: str | os.PathLike[str]) -> str:
    """The batch id of a file: sha256 of its bytes (hex)."""
    return sha256_file(path)


def _lock_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.lock")


@contextmanager
def warehouse_connection(
    path: str | os.PathLike[str] | None = None, *, read_only: bool = False, timeout_s: float = 120.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection under risk_app's warehouse lock, retried while another program holds the file.

    DuckDB lets one process open a file for writing; the lock orders risk_app's own writers and
    the retry waits out others (a Dagster IO manager, an analyst's notebook).
    """
    db = Path(path) if path is not None else paths.warehouse_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(db), timeout_s=timeout_s):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                con = duckdb.connect(str(db), read_only=read_only and db.exists())
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise RiskAppError(
                        f"{db}: cannot open the warehouse ({' '.join(str(exc).split())})"
                    ) from None
                time.sleep(0.2)
        try:
            yield con
        finally:
            con.close()


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [SCHEMA, table],
    ).fetchall()
    return [r[0] for r in rows]


def _retire_legacy(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A table from before the ledger (replaced per run, no batch_id) is kept aside, not mixed in."""
    columns = _columns(con, table)
    if columns and "batch_id" not in columns:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        con.execute(
            f"alter table {qualified(SCHEMA, table)} "
            f"rename to {quote_ident(f'{table}_before_ledger_{stamp}', 'table')}"
        )


def _parquet(con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyRelation:
    """Staged Parquet file(s) (a path or a glob) as a relation: the path never becomes SQL text."""
    return con.read_parquet(str(path), union_by_name=True)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame | Path) -> None:
    """Insert rows by column name, adding columns the table does not have yet."""
    if isinstance(frame, Path):
        _parquet(con, frame).create_view("_incoming", replace=True)
    else:
        # Empty object columns have no type for DuckDB; declare them as text.
        incoming = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
        con.register("_incoming", incoming)
    try:
        existing = _columns(con, table)
        if not existing:
            con.execute(f"create table {qualified(SCHEMA, table)} as select * from _incoming")
            return
        types = dict(
            con.execute("select column_name, column_type from (describe select * from _incoming)").fetchall()
        )
        for column in types:  # the incoming columns, in order
            if column not in existing:
                con.execute(
                    f"alter table {qualified(SCHEMA, table)} "
                    f"add column {quote_ident(column)} {sql_type(types[column])}"
                )
        con.execute(f"insert into {qualified(SCHEMA, table)} by name select * from _incoming")
    finally:
        if isinstance(frame, Path):
            con.execute("drop view if exists _incoming")
        else:
            con.unregister("_incoming")


def _tagged(frame: pd.DataFrame | Path, batch: ScoredBatch) -> pd.DataFrame | Path:
    if isinstance(frame, Path):
        return frame  # tagged by whoever wrote the files
    out = frame.copy()
    for column, value in zip(BATCH_COLUMNS, (batch.batch_id, batch.dataset, batch.source_file), strict=True):
        out[column] = pd.Series([value] * len(out), index=out.index, dtype="string")
    return out


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def _facts(batch: ScoredBatch) -> tuple[int, int, Any]:
    """(rows scored, rows quarantined, first scored_at) of frames or of staged Parquet files."""
    scores, quarantine = batch.scores, batch.quarantine
    if isinstance(scores, Path):
        with duckdb.connect() as con:  # in memory: only reads the staged files
            n_scored, scored_at = _parquet(con, scores).aggregate("count(*), min(scored_at)").fetchall()[0]
    else:
        n_scored = len(scores)
        scored_at = scores["scored_at"].iloc[0] if n_scored and "scored_at" in scores else None
    if isinstance(quarantine, Path):
        with duckdb.connect() as con:
            n_quarantined = _parquet(con, quarantine).aggregate("count(distinct row_number)").fetchall()[0][0]
    elif quarantine is not None and "row_number" in quarantine:
        n_quarantined = quarantine["row_number"].nunique()
    else:
        n_quarantined = 0
    return int(n_scored), int(n_quarantined), scored_at if scored_at is not None else pd.Timestamp.now()


def _ledger_row(batch: ScoredBatch) -> pd.DataFrame:
    n_scored, n_quarantined, scored_at = _facts(batch)
    n_in = batch.n_in if batch.n_in is not None else n_scored + n_quarantined
    row = {
        "batch_id": batch.batch_id,
        "model_version": batch.model_version,
        "policy_id": batch.policy_id,
        "policy_cutoff": batch.policy_cutoff,
        "policy_objective": batch.policy_objective,
        "dataset": batch.dataset,
        "source_file": batch.source_file,
        "partition_key": batch.partition_key or "",
        "n_in": int(n_in),
        "n_scored": n_scored,
        "n_quarantined": n_quarantined,
        "output_path": batch.output_path or "",
        "origin": batch.origin,
        "scored_at": _utc(scored_at),
        "recorded_at": _utc(pd.Timestamp.now(tz="UTC")),
    }
    return pd.DataFrame([row]).astype({"policy_cutoff": "float64"})  # None: NULL, not text


def _previous(con: duckdb.DuckDBPyConnection, batch_id: str, model_version: str) -> dict[str, Any] | None:
    if not _columns(con, BATCHES):
        return None
    found = con.execute(
        f"select * from {qualified(SCHEMA, BATCHES)} where batch_id = ? and model_version = ? "
        "order by recorded_at limit 1",
        [batch_id, model_version],
    ).fetchdf()
    return None if found.empty else {k: str(v) for k, v in found.iloc[0].to_dict().items()}


def _same_file(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _check_output_free(con: duckdb.DuckDBPyConnection, batch: ScoredBatch) -> None:
    """`OutputOwnedError` when another (batch, model) row of the ledger names `batch`'s output
    file: publishing over it would leave that row pointing at scores it did not make."""
    if not batch.output_path or "output_path" not in _columns(con, BATCHES):
        return
    rows = con.execute(
        f"select batch_id, model_version, output_path, scored_at from {qualified(SCHEMA, BATCHES)} "
        "where output_path <> '' and not (batch_id = ? and model_version = ?)",
        [batch.batch_id, batch.model_version],
    ).fetchall()
    for batch_id, version, output, scored_at in rows:
        if _same_file(str(output), batch.output_path):
            raise OutputOwnedError(
                f"{batch.output_path}: holds the scores of batch {str(batch_id)[:12]} by model {version} "
                f"(scored {scored_at}), as the ledger records; scores of batch {batch.batch_id[:12]} by "
                f"model {batch.model_version} must go to another file (leave the output out: the "
                "default name carries the batch and the model version)"
            )


def _rescored(con: duckdb.DuckDBPyConnection, batch: ScoredBatch) -> tuple[int, tuple[str, ...]]:
    """(ids of `batch` the same model already scored in other batches of its data set, those
    batches), read before the batch's own rows are inserted."""
    needed = {"application_id", "model_version", "dataset", "batch_id"}
    if not needed <= set(_columns(con, SCORES)):
        return 0, ()
    if isinstance(batch.scores, Path):
        _parquet(con, batch.scores).project("application_id").create_view("_incoming_ids", replace=True)
    else:
        ids = pd.DataFrame({"application_id": batch.scores["application_id"].astype("string")})
        con.register("_incoming_ids", ids)
    try:
        n, batches = con.execute(
            f"select count(distinct application_id), list(distinct batch_id order by batch_id) "
            f"from {qualified(SCHEMA, SCORES)} where model_version = ? and dataset = ? and batch_id <> ? "
            "and application_id in (select application_id from _incoming_ids)",
            [batch.model_version, batch.dataset, batch.batch_id],
        ).fetchall()[0]
    finally:
        if isinstance(batch.scores, Path):
            con.execute("drop view if exists _incoming_ids")
        else:
            con.unregister("_incoming_ids")
    return int(n or 0), tuple(str(b) for b in (batches or []))


def _delete_batch(con: duckdb.DuckDBPyConnection, batch_id: str, model_version: str) -> int:
    """Delete `model_version`'s ledger row and scores of `batch_id`; other models' rows stay.

    The batch's input rows (applications, quarantine) are shared by every model that scored
    it, so they go only when no other model's ledger row is left for the batch."""
    removed = 0
    for table in (BATCHES, SCORES):
        columns = _columns(con, table)
        if "batch_id" not in columns:
            continue
        # DuckDB answers a delete with the number of rows it deleted.
        if "model_version" in columns:
            deleted = con.execute(
                f"delete from {qualified(SCHEMA, table)} where batch_id = ? and model_version = ?",
                [batch_id, model_version],
            ).fetchall()[0][0]
        else:  # a table from before the model column: the batch's rows are this model's
            deleted = con.execute(
                f"delete from {qualified(SCHEMA, table)} where batch_id = ?", [batch_id]
            ).fetchall()[0][0]
        if table == SCORES:
            removed = int(deleted)
    if not _has_batch_rows(con, BATCHES, batch_id):
        for table in (APPLICATIONS, QUARANTINE):
            if "batch_id" in _columns(con, table):
                con.execute(f"delete from {qualified(SCHEMA, table)} where batch_id = ?", [batch_id])
    return removed


def _has_batch_rows(con: duckdb.DuckDBPyConnection, table: str, batch_id: str) -> bool:
    """Whether `table` holds any row of `batch_id` (of any model)."""
    if "batch_id" not in _columns(con, table):
        return False
    found = con.execute(
        f"select count(*) from {qualified(SCHEMA, table)} where batch_id = ?", [batch_id]
    ).fetchall()[0][0]
    return bool(found)


def record_scored_batch(
    batch: ScoredBatch,
    *,
    mode: WriteMode = "append",
    path: str | os.PathLike[str] | None = None,
    timeout_s: float = 120.0,
) -> BatchRecord:
    """Write one scored batch into the warehouse, exactly once (see the module docstring)."""
    if not batch.batch_id or not batch.model_version:
        raise RiskAppError("record_scored_batch: batch_id and model_version are required")
    with warehouse_connection(path, timeout_s=timeout_s) as con:
        con.execute(f"create schema if not exists {quote_ident(SCHEMA, 'schema')}")
        con.begin()
        try:
            for table in (BATCHES, SCORES, APPLICATIONS, QUARANTINE):
                _retire_legacy(con, table)
            previous = _previous(con, batch.batch_id, batch.model_version)
            if previous is not None and mode == "append":
                con.rollback()
                return BatchRecord(
                    "already_recorded", batch.batch_id, batch.model_version, 0, previous=previous
                )
            replaced = _delete_batch(con, batch.batch_id, batch.model_version) if mode == "replace" else 0
            _check_output_free(con, batch)
            rescored, rescored_from = _rescored(con, batch)
            _insert(con, BATCHES, _ledger_row(batch))
            _insert(con, SCORES, _tagged(batch.scores, batch))
            # The input rows belong to the batch, not to a model: recorded once, by the first.
            if batch.applications is not None and not _has_batch_rows(con, APPLICATIONS, batch.batch_id):
                _insert(con, APPLICATIONS, _tagged(batch.applications, batch))
            if batch.quarantine is not None and not _has_batch_rows(con, QUARANTINE, batch.batch_id):
                _insert(con, QUARANTINE, _tagged(batch.quarantine, batch))
            con.commit()
        except BaseException:
            con.rollback()
            raise
    status: Status = "replaced" if replaced else "appended"
    n_scored = _facts(batch)[0] if isinstance(batch.scores, Path) else len(batch.scores)
    return BatchRecord(
        status, batch.batch_id, batch.model_version, n_scored, replaced, previous, rescored, rescored_from
    )


def recorded_batch(
    batch_id: str, model_version: str, path: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """The ledger row of `batch_id` scored by `model_version` (the first, values as text), or None."""
    with warehouse_connection(path, read_only=True) as con:
        return _previous(con, batch_id, model_version)


def scoring_ledger(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """All recorded batches, oldest first (empty frame when nothing was scored yet)."""
    with warehouse_connection(path) as con:
        if not _columns(con, BATCHES):
            return pd.DataFrame(columns=["batch_id", "model_version", "dataset", "source_file", "n_scored"])
        return con.execute(f"select * from {qualified(SCHEMA, BATCHES)} order by recorded_at").fetchdf()


__all__ = [
    "BatchRecord",
    "OutputOwnedError",
    "ScoredBatch",
    "file_batch_id",
    "record_scored_batch",
    "scoring_ledger",
    "warehouse_connection",
]
