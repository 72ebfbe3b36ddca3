"""Scoring a file larger than memory: chunks in, outputs staged on disk, published whole.

`BatchStage` collects what scoring one file produces, chunk by chunk, in a hidden staging
folder beside the output (same file system, so publishing is a rename):

* the scores file, written incrementally (a Parquet writer or CSV text with formula cells
  neutralized), so memory holds one chunk, never the file;
* the rows the warehouse ledger keeps (scores, valid applications, quarantine), as Parquet
  parts already tagged with the batch, which `risk_app.storage.scores.record_scored_batch`
  reads in a stream inside its one transaction;
* the quarantine, published beside the scores as one Parquet file.

Publishing goes through `risk_app.atomic.atomic_file`: the output is complete or absent, and
the staging folder is removed whatever happens (an exception in a writer, a failed ledger). A
`kill -9` leaves it behind: each stage is marked with its owner process, and the next stage
opened in the same folder removes the stages whose owners are gone (`remove_stale_stages`).

`RepeatedIds` quarantines an id that an earlier chunk already had, as the contract's
uniqueness check does inside one chunk, keeping 8 bytes per row read (a hash of each id).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from risk_app.atomic import atomic_file, atomic_write_json
from risk_app.data.load import SOURCE_ROW_COLUMN
from risk_app.data.validate import QUARANTINE_COLUMNS, ValidationResult, describe_check
from risk_app.registry.processes import process_is_gone, process_tags
from risk_app.scoring.output import encode_frame, neutralize_csv_cells
from risk_app.storage.scores import BATCH_COLUMNS

Part = Literal["scores", "applications", "quarantine"]
STAGE_SUFFIX = ".stage"
STAGE_OWNER = "owner.json"  # pid, host and the pid's start time of the process staging here
_log = logging.getLogger(__name__)
_DUPLICATE_CHECK = "field_uniqueness"


class RepeatedIds:
    """Ids seen in earlier chunks of one file, kept as sorted 64-bit hashes."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

    def _hashes(self, ids: pd.Series) -> np.ndarray:
        return pd.util.hash_array(ids.astype(str).to_numpy(dtype=object))

    def _known(self, ids: pd.Series) -> np.ndarray:
        if not len(self._seen) or not len(ids):
            return np.zeros(len(ids), dtype=bool)
        hashes = self._hashes(ids)
        at = np.minimum(np.searchsorted(self._seen, hashes), len(self._seen) - 1)
        return self._seen[at] == hashes

    def split(self, validation: ValidationResult, chunk: pd.DataFrame, id_column: str) -> ValidationResult:
        """The chunk's validation with rows whose id an earlier chunk had moved to quarantine;
        then remembers every id of the chunk (valid or not, as the uniqueness check counts them)."""
        valid = validation.valid
        repeated = self._known(valid["application_id"]) if len(valid) else np.zeros(0, dtype=bool)
        result = validation
        if repeated.any():
            moved = valid.loc[repeated]
            repeats = _duplicate_rows(moved, validation.source, id_column)
            quarantine = pd.concat([validation.quarantine, repeats])
            kept = valid.loc[~repeated].reset_index(drop=True)
            result = ValidationResult(
                source=validation.source, valid=kept, quarantine=quarantine.reset_index(drop=True),
                n_in=validation.n_in, n_valid=len(kept), n_quarantined=validation.n_quarantined + len(moved),
                contract_version=validation.contract_version, require_target=validation.require_target,
                dataset=validation.dataset, extra_columns_ignored=validation.extra_columns_ignored,
            )  # fmt: skip
        ids = chunk[id_column].dropna()
        self._seen = np.union1d(self._seen, self._hashes(ids))
        return result


def _duplicate_rows(rows: pd.DataFrame, source: str, id_column: str) -> pd.DataFrame:
    """Quarantine lines for rows whose id occurred earlier in the file (as validate writes them)."""
    why = describe_check(  # the one wording of every check
        _DUPLICATE_CHECK
    )
    records = [
        {
            "source_file": source,
            "row_number": int(row),
            "application_id": str(ident),
            "column": id_column,
            "check": _DUPLICATE_CHECK,
            "failure_value": str(ident),
            "reason": f"row {int(row)}, field {id_column}={str(ident)!r}: {why}",
        }  # fmt: skip
        for row, ident in zip(rows[SOURCE_ROW_COLUMN], rows["application_id"], strict=True)
    ]
    table = pd.DataFrame.from_records(records, columns=list(QUARANTINE_COLUMNS))
    return table.astype({"row_number": "int64"})


def _arrow(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    """The frame as Arrow; a column with no values yet is text, so later chunks can fill it."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if schema is not None:
        return table.select(schema.names).cast(schema)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def remove_stale_stages(folder: Path) -> list[Path]:
    """Remove the hidden stage folders in `folder` whose owner process is gone (a scorer killed
    with `kill -9` leaves its stage, with the batch's applications and scores, behind); the removed.

    A stage is removed only when its owner marker (pid, host, the pid's start time) names a
    process known dead on this host (`registry.processes.process_is_gone`): a live run's stage,
    another host's, or one without a marker (made by an older risk_app, or a moment before its
    marker is written) is left alone."""
    removed = []
    for stage in sorted(folder.glob(f".*{STAGE_SUFFIX}")):
        if stage.is_symlink() or not stage.is_dir():
            continue
        try:
            owner = json.loads((stage / STAGE_OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(owner, dict) and process_is_gone({str(k): str(v) for k, v in owner.items()}):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
            _log.warning("removed %s, left by a scoring run whose process is gone", stage)
    return removed


class BatchStage:
    """Staged outputs of one scored file; use as a context manager (the stage is always removed).

    The stage is marked with its owner process (`STAGE_OWNER`), and opening one first removes
    the stages beside it whose owners were killed (`remove_stale_stages`; `removed_stale`)."""

    def __init__(self, target: Path, tags: dict[str, str]) -> None:
        if tuple(tags) != BATCH_COLUMNS:
            raise ValueError(f"BatchStage: tags must be {BATCH_COLUMNS}, got {tuple(tags)}")
        self.target, self.tags = target, tags
        self.csv = target.suffix.lower() == ".csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.removed_stale = remove_stale_stages(target.parent)
        hidden = f".{target.name}."
        self.folder = Path(tempfile.mkdtemp(prefix=hidden, suffix=STAGE_SUFFIX, dir=target.parent))
        atomic_write_json(self.folder / STAGE_OWNER, process_tags())
        self.scores_file = self.folder / f"scores{target.suffix.lower()}"
        self._writer: Any = None  # pq.ParquetWriter or a text handle, opened by the first rows
        self._schema: pa.Schema | None = None
        self._columns: list[str] | None = None
        self._template: pd.DataFrame | None = None
        self._parts = 0

    def __enter__(self) -> BatchStage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def ledger_path(self, part: Part) -> Path | None:
        """The glob of one ledger table's staged parts; None when no chunk had such rows."""
        folder = self.folder / part
        return folder / "*.parquet" if folder.is_dir() else None

    def add(self, scored: pd.DataFrame, validation: ValidationResult) -> None:
        """One chunk: its scores to the output, its rows to the ledger parts."""
        self._write_scores(scored)
        self._parts += 1
        for part, frame in (("scores", scored), ("applications", validation.valid),
                            ("quarantine", validation.quarantine)):  # fmt: skip
            if len(frame):
                self._stage(part, frame)

    def _stage(self, part: Part, frame: pd.DataFrame) -> None:
        tagged = frame.copy()
        for column, value in self.tags.items():
            tagged[column] = pd.Series([value] * len(tagged), index=tagged.index, dtype="string")
        (self.folder / part).mkdir(exist_ok=True)
        tagged.to_parquet(self.folder / part / f"part-{self._parts:06d}.parquet", index=False)

    def _write_scores(self, scored: pd.DataFrame) -> None:
        if self._template is None:
            self._template = scored.iloc[:0]
        if scored.empty:
            return
        if self.csv:
            first = self._writer is None
            if first:
                self._columns = list(scored.columns)
                self._writer = open(self.scores_file, "w", encoding="utf-8", newline="")  # noqa: SIM115
            # RFC 4180 line ends, as `encode_frame` writes them.
            neutralize_csv_cells(scored[self._columns]).to_csv(
                self._writer, index=False, header=first, lineterminator="\r\n"
            )
            return
        table = _arrow(scored, self._schema)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.scores_file, self._schema)
        self._writer.write_table(table)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _finish_scores(self) -> None:
        """Close the writer; a file with no scored row still gets its (empty) output."""
        self._close()
        if not self.scores_file.exists():
            empty = self._template if self._template is not None else pd.DataFrame()
            self.scores_file.write_bytes(encode_frame(empty, self.scores_file.suffix))

    def publish(self, *, overwrite: bool, quarantine_path: Path | None) -> None:
        """The quarantine (when any row was quarantined) then the scores, each atomically.

        Raises `FileExistsError` when the scores file exists and not `overwrite`."""
        self._finish_scores()
        staged_q = self.ledger_path("quarantine")
        if quarantine_path is not None and staged_q is not None:
            # The relation API: neither path becomes SQL text.
            with atomic_file(quarantine_path, overwrite=True) as tmp, duckdb.connect() as con:
                rows = con.read_parquet(str(staged_q), union_by_name=True)
                columns = [duckdb.ColumnExpression(c) for c in QUARANTINE_COLUMNS]
                rows.select(*columns).order("row_number").write_parquet(str(tmp))
        with atomic_file(self.target, overwrite=overwrite) as tmp:
            os.replace(self.scores_file, tmp)


__all__ = ["BatchStage", "RepeatedIds"]
