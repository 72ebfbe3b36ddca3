"""The scoring path for one file, the same for the CLI and for Dagster: validate it into a stage
on disk, then score, record and publish it. Memory holds one chunk at a time.

1. `validate_to_stage` reads the file chunk by chunk (`risk_app.data.load.iter_applications`),
   validates each chunk (an id repeated from an earlier chunk quarantined, as the contract's
   uniqueness check does within one), writes the chunk's valid rows and quarantine lines as
   Parquet parts into a staging folder, checks the file did not change while it was read, and
   returns a `StagedBatch`: the folder, the counts and the batch's identity, small enough to
   pickle (Dagster hands it from `scoring_batch` to `scored_applications`).
2. `score_staged` scores the staged parts one by one into a `risk_app.scoring.stream.BatchStage`
   (the scores file written incrementally, the ledger rows staged), records the batch in the
   warehouse exactly once (`risk_app.storage.scores`), publishes the scores (and the
   quarantine beside them) atomically, and returns a `StagedScoring`: the outcome, a
   `ScoreSummary` and, when asked, the drift verdict on a bounded random sample of the batch
   (`risk_app.scoring.summary`).

`score_and_record` is both steps for one call (`risk-app score`): it hashes the file, refuses an
existing output before loading the (slow) model, resolves the model, answers "already scored"
for a batch the ledger has from this model, and otherwise runs 1 then 2 on a stage of its own
(marked with its owner process: the next call removes one a `kill -9` left, `remove_dead_stages`).
The Dagster partition runs the same two steps as two assets. The ledger row is written before
the files are published, so a run killed in between is finished by running it again; a run
that fails earlier leaves no output at all. Rows in = scored + quarantined is checked chunk by
chunk and for the batch.

    outcome = score_and_record("landing/batch_A.csv", model_ref="champion")     # the CLI
    batch = validate_to_stage("landing/batch_A.csv", spec, stage_folder("batch_A.csv-3f2a", "run-1"))
    result = score_staged(batch, model, drift=BatchDriftThresholds())           # Dagster
    batch.remove()
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from data_contracts.spec import deployment_spec, load_spec
from risk_app import paths
from risk_app.atomic import atomic_write_json
from risk_app.data.load import check_data_file, iter_applications
from risk_app.data.validate import QUARANTINE_COLUMNS, ValidationResult, validate_applications
from risk_app.errors import RiskAppError
from risk_app.evaluate.batch_drift import BatchDrift, BatchDriftThresholds
from risk_app.policy.grades import grade_names
from risk_app.registry.processes import process_is_gone, process_tags
from risk_app.scoring.batch import OUTPUT_COLUMNS, check_scored_output, grade_bands_of, policy_of
from risk_app.scoring.output import (
    OutputExistsError,
    OutputFormat,
    batch_output_path,
    check_output_suffix,
    default_quarantine_path,
)
from risk_app.scoring.service import load_model, score_with_reasons
from risk_app.scoring.stream import STAGE_OWNER, BatchStage, RepeatedIds
from risk_app.scoring.summary import DRIFT_SAMPLE_ROWS, HEAD_ROWS, ScoreSummary, ScoreTally, model_drift
from risk_app.storage.scores import (
    BatchRecord,
    Origin,
    ScoredBatch,
    WriteMode,
    file_batch_id,
    record_scored_batch,
    recorded_batch,
)

Staged = Literal["valid", "quarantine"]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A stage left by a run that failed after validating is kept for re-execution from the failure;
# one this old belongs to a run nobody will resume.
STALE_STAGE_S = 7 * 24 * 3600.0
# Rows read, validated and scored at a time: big enough that per-call overheads vanish, small
# enough that a chunk with its reason codes stays far below a gigabyte.
DEFAULT_CHUNK_ROWS = 50_000
# What the ledger records for a file with no valid row at all.
EMPTY_SCORES = pd.DataFrame({c: pd.Series(dtype="string") for c in OUTPUT_COLUMNS}).astype(
    {"probability_of_default": "float64", "policy_cutoff": "float64", "scored_at": "datetime64[ns, UTC]"}
)


def stage_root() -> Path:
    return paths.home() / "scoring_stage"


def stage_folder(*names: str) -> Path:
    """`<home>/scoring_stage/<name>/...`, each name made safe for a path."""
    return stage_root().joinpath(*(_UNSAFE.sub("_", n).strip(".") or "_" for n in names))


def remove_stage(folder: str | os.PathLike[str]) -> None:
    """A stage folder, and the folder above when no other run's stage is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another run of the partition is staged
        Path(folder).parent.rmdir()


def remove_dead_stages(prefix: str) -> list[Path]:
    """Remove the stage folders `<root>/<key>/<prefix>...` whose owner process is known dead (a
    `risk-app score` killed with `kill -9` leaves the file's validated rows behind); the removed.
    Only a call's own kind of stage: a failed Dagster run's stage waits for re-execution."""
    removed = []
    for folder in sorted(stage_root().glob(f"*/{prefix}*")):
        try:
            owner = json.loads((folder / STAGE_OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # no marker (yet): never taken for a dead one
        if isinstance(owner, dict) and process_is_gone({str(k): str(v) for k, v in owner.items()}):
            remove_stage(folder)
            removed.append(folder)
    return removed


def prune_stale_stages(max_age_s: float = STALE_STAGE_S) -> list[Path]:
    """Remove stage folders (two levels under the root) untouched for `max_age_s`; the removed."""
    removed, cutoff = [], time.time() - max_age_s
    for folder in stage_root().glob("*/*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclass(frozen=True)
class ScoringOutcome:
    """One file scored and recorded: where things went and what the ledger did."""

    batch_id: str
    input_path: str
    output_path: str
    quarantine_path: str | None
    model_version: str
    n_in: int
    n_scored: int
    n_quarantined: int
    n_declined: int
    record: BatchRecord
    stale_stages_removed: tuple[str, ...] = ()  # stage folders of killed scorings, removed first

    def summary(self) -> str:
        text = (
            f"{self.input_path}: {self.n_in} rows: {self.n_scored} scored, {self.n_quarantined} quarantined; "
            f"{self.n_declined} declined; model {self.model_version} -> {self.output_path}. "
            f"{self.record.message}"
        )
        if self.stale_stages_removed:
            text += (
                f" Removed {len(self.stale_stages_removed)} stage folder(s) left by killed scoring runs: "
                + ", ".join(self.stale_stages_removed)
                + "."
            )
        return text


@dataclass(frozen=True)
class StagedBatch:
    """One file validated in chunks: where its parts are staged, its counts and its identity."""

    batch_id: str
    dataset: str
    source: str  # as given: quarantine lines and messages name it so
    source_file: str  # resolved: the warehouse's tag
    folder: str
    parts: int
    n_in: int
    n_valid: int
    n_quarantined: int
    contract_version: str
    quarantine_head: pd.DataFrame

    @property
    def tags(self) -> dict[str, str]:
        """The BATCH_COLUMNS values every ledger row of the batch carries."""
        return {"batch_id": self.batch_id, "dataset": self.dataset, "source_file": self.source_file}

    def part(self, kind: Staged, index: int) -> Path:
        return Path(self.folder) / f"{kind}-{index:06d}.parquet"

    def chunk(self, index: int) -> ValidationResult:
        """Chunk `index` as it was validated (its valid rows with their dtypes, its quarantine)."""
        valid_file, quarantine_file = self.part("valid", index), self.part("quarantine", index)
        if not valid_file.is_file():
            raise RiskAppError(
                f"batch {self.batch_id[:12]}: its validated rows are gone from {self.folder} (they are "
                "removed once scored); validate the file again (materialize scoring_batch with it)"
            )
        valid = pd.read_parquet(valid_file)
        quarantine = (
            pd.read_parquet(quarantine_file) if quarantine_file.is_file()
            else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        )  # fmt: skip
        n_bad = int(quarantine["row_number"].nunique()) if len(quarantine) else 0
        return ValidationResult(
            source=self.source, valid=valid, quarantine=quarantine, n_in=len(valid) + n_bad,
            n_valid=len(valid), n_quarantined=n_bad, contract_version=self.contract_version,
            require_target=False, dataset=self.dataset,
        )  # fmt: skip

    def remove(self) -> None:
        """The staged parts, and the folder above when no other run's stage is left in it."""
        remove_stage(self.folder)


@dataclass(frozen=True)
class StagedScoring:
    """A staged batch scored, recorded and published: the outcome, its summary, its drift."""

    outcome: ScoringOutcome
    summary: ScoreSummary
    drift: BatchDrift | None  # None: not asked for
    chunks: int


def iter_validated(source: Path, spec: Any, chunk_rows: int | None) -> Iterator[ValidationResult]:
    """The file's chunks validated for scoring (no target needed), an id repeated from an earlier
    chunk quarantined as the contract's uniqueness check does within one chunk."""
    repeated = RepeatedIds()
    for chunk in iter_applications(source, spec, chunk_rows=chunk_rows):
        checked = validate_applications(chunk, source=str(source), require_target=False, spec=spec)
        yield repeated.split(checked, chunk, spec.id_column)


def score_chunk(validation: ValidationResult, model: Any, reasons: int, stage: BatchStage) -> pd.DataFrame:
    """Score one validated chunk, check its scores and row accounting, stage it; its scores."""
    scored = score_with_reasons(validation.valid, model, top_k=reasons)
    check_scored_output(scored, grade_names(grade_bands_of(model)))
    if validation.n_in != len(scored) + validation.n_quarantined:
        raise RiskAppError(f"{validation.source}: scored {len(scored)} + quarantined "
                           f"{validation.n_quarantined} != {validation.n_in} rows read")  # fmt: skip
    stage.add(scored, validation)
    return scored


def validate_to_stage(
    input_path: str | os.PathLike[str],
    spec: Any,
    folder: str | os.PathLike[str],
    *,
    batch_id: str | None = None,
    dataset: str | None = None,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
) -> StagedBatch:
    """Validate the file `chunk_rows` rows at a time into Parquet parts under `folder` (emptied
    first). `batch_id`: the file's sha256 when already known; the file must still have it once
    read. A failure leaves no folder behind."""
    source = check_data_file(input_path)
    spec = load_spec(spec)
    batch_id = batch_id or file_batch_id(source)
    stage = Path(folder)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    atomic_write_json(stage / STAGE_OWNER, process_tags())  # whose stage, should the process die
    parts = n_in = n_valid = n_quarantined = 0
    head: list[pd.DataFrame] = []
    try:
        for validation in iter_validated(source, spec, chunk_rows):
            # Written even when empty: scoring a part needs its columns and dtypes.
            validation.valid.to_parquet(stage / f"valid-{parts:06d}.parquet", index=False)
            if len(validation.quarantine):
                validation.quarantine.to_parquet(stage / f"quarantine-{parts:06d}.parquet", index=False)
                head.append(validation.quarantine.head(HEAD_ROWS))
                head = [pd.concat(head, ignore_index=True).head(HEAD_ROWS)]
            parts += 1
            n_in, n_valid = n_in + validation.n_in, n_valid + validation.n_valid
            n_quarantined += validation.n_quarantined
        if file_batch_id(source) != batch_id:
            raise RiskAppError(f"{source}: the file changed while it was read; score it once it is complete")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    quarantine_head = head[0] if head else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    return StagedBatch(
        batch_id=batch_id, dataset=dataset or spec.name, source=str(source),
        source_file=str(source.resolve()), folder=str(stage), parts=parts, n_in=n_in, n_valid=n_valid,
        n_quarantined=n_quarantined, contract_version=spec.contract_version, quarantine_head=quarantine_head,
    )  # fmt: skip


def output_target(
    source: str | os.PathLike[str], batch_id: str, output_path: Any, fmt: OutputFormat, model: Any = None
) -> Path:
    """Where the scores go: `output_path`, or the file named after the batch and `model`'s version."""
    if output_path is not None:
        target = Path(output_path)
    else:
        target = batch_output_path(source, batch_id, model_version=str(model.version), fmt=fmt)
    check_output_suffix(target, "output")
    return target


def _exists_error(target: Path) -> OutputExistsError:
    return OutputExistsError(
        f"{target}: already exists; not overwritten (ask for overwrite: --overwrite, overwrite=True, "
        "or overwrite in the launchpad)"
    )


def score_staged(
    batch: StagedBatch,
    model: Any,
    *,
    output_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    fmt: OutputFormat = "parquet",
    reasons: int = 4,
    partition_key: str | None = None,
    origin: Origin = "dagster",
    mode: WriteMode = "replace",
    warehouse: str | os.PathLike[str] | None = None,
    drift: BatchDriftThresholds | None = None,
    sample_rows: int = DRIFT_SAMPLE_ROWS,
) -> StagedScoring:
    """Score `batch` part by part, record it once (`mode`: "replace" its earlier rows, or
    "append" once), publish `output_path` (default: `batch_output_path` in `fmt`) and, when any
    row was quarantined, `<output stem>.quarantine.parquet` beside it, each whole or absent.
    `drift`: judge drift on a seeded random sample of at most `sample_rows` scored rows."""
    target = output_target(batch.source, batch.batch_id, output_path, fmt, model)
    if output_path is not None and target.exists() and not overwrite:
        raise _exists_error(target)  # refused before scoring anything
    tally = ScoreTally(sample_rows=sample_rows if drift is not None else 1)
    with BatchStage(target, batch.tags) as stage:
        for index in range(batch.parts):
            validation = batch.chunk(index)
            tally.add(validation.valid, score_chunk(validation, model, reasons, stage))
        if tally.n_scored + batch.n_quarantined != batch.n_in:
            raise RiskAppError(f"{batch.source}: scored {tally.n_scored} + quarantined "
                               f"{batch.n_quarantined} != {batch.n_in} rows read")  # fmt: skip
        record = record_scored_batch(
            ScoredBatch(
                batch_id=batch.batch_id, model_version=str(model.version), dataset=batch.dataset,
                source_file=batch.source_file, scores=stage.ledger_path("scores") or EMPTY_SCORES,
                applications=stage.ledger_path("applications"), quarantine=stage.ledger_path("quarantine"),
                partition_key=partition_key, output_path=str(target), origin=origin, n_in=batch.n_in,
                **policy_of(model),
            ),
            mode=mode, path=warehouse,
        )  # fmt: skip
        quarantine = default_quarantine_path(target) if batch.n_quarantined else None
        explicit = output_path is not None
        _publish(stage, target, quarantine, record, overwrite=overwrite, explicit_output=explicit)
    summary = tally.summary()
    outcome = ScoringOutcome(
        batch_id=batch.batch_id, input_path=batch.source, output_path=str(target),
        quarantine_path=str(quarantine) if quarantine else None, model_version=str(model.version),
        n_in=batch.n_in, n_scored=summary.n_scored, n_quarantined=batch.n_quarantined,
        n_declined=summary.n_declined, record=record,
        stale_stages_removed=tuple(str(p) for p in stage.removed_stale),
    )  # fmt: skip
    report = model_drift(model, tally.sample(), tally.sample_scores(), drift) if drift is not None else None
    return StagedScoring(outcome=outcome, summary=summary, drift=report, chunks=batch.parts)


def _publish(
    stage: BatchStage, target: Path, quarantine: Path | None, record: BatchRecord, *, overwrite: bool,
    explicit_output: bool,
) -> None:  # fmt: skip
    """The quarantine beside the scores, then the scores, each complete or absent."""
    try:
        # The quarantine file belongs to the output beside it (checked absent above), so a
        # leftover from a run killed between the two writes is simply replaced.
        stage.publish(overwrite=overwrite, quarantine_path=quarantine)
    except FileExistsError:
        # Two runs of the same batch at once: the other one wrote this batch's own file first.
        if explicit_output or record.status != "already_recorded":
            raise _exists_error(target) from None


def model_spec_for(model: Any, asked: Any, *, explicit: bool) -> Any:
    """The spec a file must pass to be scored by `model`: the model's own (artifacts carry it);
    a data set named explicitly that is not the model's is refused, naming both."""
    own = getattr(model, "dataset_spec", None)
    if own is None:
        return asked  # artifacts made before models carried their spec
    if explicit and own.hash != asked.hash:
        raise RiskAppError(
            f"model {model.version} was trained on data set {own.name!r} (spec {own.hash[:12]}), "
            f"not {asked.name!r} (spec {asked.hash[:12]}); score this file with a model of {asked.name!r}"
        )
    return own


def score_and_record(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    model_ref: str = "champion",
    model_name: str | None = None,
    reasons: int = 4,
    spec: Any | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
    fmt: OutputFormat = "parquet",
    mode: WriteMode = "append",
    origin: Origin = "cli",
    risk_model: Any | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
) -> ScoringOutcome:
    """Score one file, write its outputs and append it to the warehouse ledger exactly once:
    `validate_to_stage` then `score_staged`, as the Dagster partition runs them.

    `output_path` defaults to `batch_output_path(input_path, batch id, model version)`;
    quarantined rows go to `<output stem>.quarantine.parquet` beside it. The model is
    `risk_model`, or `model_ref` resolved in `model_name` (default: the registered model named
    after `spec`, as in Dagster; no `spec`: after the deployment's default data set,
    `data_contracts.spec.deployment_spec`, as the CLI resolves it); the file must pass the
    model's own spec (a different `spec` named explicitly is refused). The file is validated
    `chunk_rows` rows at a time (None: whole) into a stage of this call's own under
    `<home>/scoring_stage/`, removed at the end.
    """
    # A bad file is refused before hashing it or loading the (slow) model.
    source = check_data_file(input_path)
    batch_id = file_batch_id(source)
    if output_path is not None:
        explicit = output_target(source, batch_id, output_path, fmt)
        if explicit.exists() and not overwrite:
            raise _exists_error(explicit)  # refused before loading the (slow) model
    asked = deployment_spec(spec)
    model = risk_model or load_model(model_ref, model_name=model_name or asked.name)
    target = output_target(source, batch_id, output_path, fmt, model)
    if target.exists() and not overwrite:
        # The batch-and-version-named output exists: if the ledger has this model's scoring of
        # this batch (a re-run, or a second run started at the same moment that finished
        # first) that is "already scored"; else a file nobody recorded, left alone.
        done = _already_scored(source, batch_id, target, model, warehouse)
        if done is None:
            raise _exists_error(target)
        return done
    data_spec = model_spec_for(model, asked, explicit=spec is not None)
    dead = remove_dead_stages(f"{origin}-")  # left by killed runs of this door
    folder = stage_folder(f"{source.name}-{batch_id[:12]}", f"{origin}-{uuid.uuid4().hex[:12]}")
    try:
        batch = validate_to_stage(
            source, data_spec, folder, batch_id=batch_id, dataset=dataset, chunk_rows=chunk_rows
        )
        result = score_staged(
            batch, model, output_path=output_path, overwrite=overwrite, fmt=fmt, reasons=reasons,
            origin=origin, mode=mode, warehouse=warehouse,
        )  # fmt: skip
    finally:
        remove_stage(folder)
    removed = result.outcome.stale_stages_removed + tuple(str(p) for p in dead)
    return dataclasses.replace(result.outcome, stale_stages_removed=removed)


def _already_scored(
    source: Path, batch_id: str, target: Path, model: Any, warehouse: Any
) -> ScoringOutcome | None:
    """The outcome of this batch's earlier scoring by this model version, read from the ledger
    (None when the ledger has no such batch: then the existing file is someone else's)."""
    version = str(model.version)
    row = recorded_batch(batch_id, version, warehouse)
    if row is None:
        return None
    quarantine = default_quarantine_path(target)
    # The same record `record_scored_batch` returns for a batch it finds already recorded.
    record = BatchRecord("already_recorded", batch_id, version, int(row["n_scored"]), previous=row)
    return ScoringOutcome(
        batch_id=batch_id, input_path=str(source), output_path=str(target),
        quarantine_path=str(quarantine) if quarantine.exists() else None, model_version=version,
        n_in=int(row["n_in"]), n_scored=int(row["n_scored"]), n_quarantined=int(row["n_quarantined"]),
        n_declined=_declines_in(target), record=record,
    )  # fmt: skip


def _declines_in(output: Path) -> int:
    """Declined rows in a published scores file (the ledger does not keep the count)."""
    if output.suffix == ".csv":
        decisions = pd.read_csv(output, usecols=["decision"])["decision"]
    else:
        decisions = pd.read_parquet(output, columns=["decision"])["decision"]
    return int((decisions == "decline").sum())


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ScoringOutcome",
    "StagedBatch",
    "StagedScoring",
    "iter_validated",
    "model_spec_for",
    "output_target",
    "prune_stale_stages",
    "remove_dead_stages",
    "remove_stage",
    "score_and_record",
    "score_chunk",
    "score_staged",
    "stage_folder",
    "validate_to_stage",
]
