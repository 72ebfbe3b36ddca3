"""Scoring outputs a bank can hand around: named by batch, never clobbered, safe in a spreadsheet.

* `batch_output_path` names an output after its input file, the input's content hash *and*
  the model version (`batch_A.csv.3f2a9c1b7d4e.german_credit_3.scores.parquet`), so
  `batch_A.csv` and `batch_A.parquet` never write the same file, one batch never overwrites
  another's output, and a second model's scores never replace the first's (the ledger refuses
  a row whose output file another batch or model's row points at: `risk_app.storage.scores`).
* `write_output` writes atomically and, unless asked to overwrite, refuses an existing file;
  the no-clobber check is the atomic `link()` itself, so two processes cannot both win.
* `neutralize_csv_cells` defuses spreadsheet formulas in CSV text cells (OWASP "CSV
  injection"): a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
  Numeric columns (a negative amount is a number) and Parquet files keep values as they are.
* `score_and_record` is the whole CLI path for one file: hash, then read, validate and score it
  in chunks (`risk_app.data.load.iter_applications`), stage the outputs on disk
  (`risk_app.scoring.stream`), append the batch to the warehouse ledger exactly once
  (`risk_app.storage.scores`) and publish the outputs atomically.

    from risk_app.scoring.output import score_and_record
    outcome = score_and_record("landing/batch_A.csv", model_ref="champion")
    print(outcome.summary())
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from risk_app import paths
from risk_app.atomic import atomic_write_bytes
from risk_app.errors import RiskAppError
from risk_app.scoring.batch import OUTPUT_COLUMNS, check_output_suffix, default_quarantine_path, policy_of
from risk_app.scoring.stream import BatchStage
from risk_app.storage.scores import BatchRecord, Origin, ScoredBatch, WriteMode, file_batch_id

# OWASP: cells starting with these are run as formulas by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
OutputFormat = Literal["parquet", "csv"]
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Rows read, validated and scored at a time: big enough that per-call overheads vanish, small
# enough that a chunk with its reason codes stays far below a gigabyte.
DEFAULT_CHUNK_ROWS = 50_000
# What the ledger records for a file with no valid row at all.
_EMPTY_SCORES = pd.DataFrame({c: pd.Series(dtype="string") for c in OUTPUT_COLUMNS}).astype(
    {"probability_of_default": "float64", "policy_cutoff": "float64", "scored_at": "datetime64[ns, UTC]"}
)


class OutputExistsError(RiskAppError):
    """The output file is already there and overwriting was not asked for."""


def neutralize_csv_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas; numbers are left alone."""
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        text = series.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_TRIGGERS))
        if text.any():
            out[column] = series.astype(object)
            out.loc[text, column] = "'" + series[text].astype(str)
    return out


def encode_frame(df: pd.DataFrame, suffix: str) -> bytes:
    """The bytes of `df` as Parquet (values as they are) or CSV (formula cells neutralized)."""
    if suffix == ".parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return buffer.getvalue()
    # RFC 4180 line ends: a cell holding a bare CR is then quoted instead of splitting the row.
    return neutralize_csv_cells(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def write_output(df: pd.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write `df` atomically by suffix; `OutputExistsError` if the file exists and not `overwrite`."""
    target = Path(path)
    data = encode_frame(df, check_output_suffix(target, "output"))
    try:
        return atomic_write_bytes(target, data, overwrite=overwrite)
    except FileExistsError:
        raise OutputExistsError(
            f"{target}: already exists; not overwritten (pass overwrite=True / --overwrite)"
        ) from None


def batch_output_path(
    input_path: str | os.PathLike[str],
    batch_id: str,
    *,
    model_version: str,
    folder: str | os.PathLike[str] | None = None,
    fmt: OutputFormat = "parquet",
) -> Path:
    """`<folder>/<input name>.<first 12 of batch id>.<model version>.scores.<fmt>` (folder:
    `outputs/`; names made safe for a path: `german_credit/3` -> `german_credit_3`)."""
    name = _UNSAFE_NAME.sub("_", Path(input_path).name).strip("._") or "batch"
    version = _UNSAFE_NAME.sub("_", str(model_version)).strip("._") or "model"
    root = Path(folder) if folder is not None else paths.outputs_dir()
    return root / f"{name}.{batch_id[:12]}.{version}.scores.{fmt}"


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


def _target_path(source: Path, batch_id: str, output_path: Any, fmt: OutputFormat, model: Any = None) -> Path:
    """Where the scores go: `output_path`, or the file named after the batch and `model`'s version."""
    if output_path is not None:
        target = Path(output_path)
    else:
        target = batch_output_path(source, batch_id, model_version=str(model.version), fmt=fmt)
    check_output_suffix(target, "output")
    return target


def _exists_error(target: Path) -> OutputExistsError:
    return OutputExistsError(f"{target}: already exists; not overwritten (use --overwrite)")


def _score_chunks(
    source: Path, data_spec: Any, model: Any, reasons: int, stage: BatchStage, chunk_rows: int | None
) -> tuple[int, int, int, int]:
    """Read, validate, score and stage the file chunk by chunk: (rows in, scored, quarantined, declined)."""
    # The same chunk steps as the two-step (Dagster) path; imported here, it imports this module.
    from risk_app.scoring.staged import iter_validated, score_chunk

    n_in = n_scored = n_quarantined = n_declined = 0
    for validation in iter_validated(source, data_spec, chunk_rows):
        scored = score_chunk(validation, model, reasons, stage)
        n_in += validation.n_in
        n_scored += len(scored)
        n_quarantined += validation.n_quarantined
        n_declined += int((scored["decision"] == "decline").sum())
    return n_in, n_scored, n_quarantined, n_declined


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
    """Score one file, write its outputs and append it to the warehouse ledger exactly once.

    `output_path` defaults to `batch_output_path(input_path, batch id)`; quarantined rows go to
    `<output stem>.quarantine.parquet` beside it. The model is `risk_model`, or `model_ref`
    resolved in `model_name` (default: the registered model named after `spec`, as in
    Dagster); the file must pass the model's own spec (a different `spec` named explicitly is
    refused). The file is read, validated and scored `chunk_rows` rows at a time (None: whole),
    the outputs are staged on disk as they come (`risk_app.scoring.stream`), so memory does not
    grow with the file. The ledger row is written before the files are published, so a run
    killed in between is finished by running it again (the ledger then says "already
    recorded", the files are written); a run that fails earlier leaves no output at all.
    """
    from data_contracts.spec import load_spec
    from risk_app import scoring
    from risk_app.data.load import check_data_file
    from risk_app.storage.scores import record_scored_batch

    # A bad file is refused before hashing it or loading the (slow) model.
    source = check_data_file(input_path)
    batch_id = file_batch_id(source)
    if output_path is not None:
        explicit = _target_path(source, batch_id, output_path, fmt)
        if explicit.exists() and not overwrite:
            raise _exists_error(explicit)  # refused before loading the (slow) model
    asked = load_spec(spec)
    model = risk_model or scoring.load_model(model_ref, model_name=model_name or asked.name)
    target = _target_path(source, batch_id, output_path, fmt, model)
    if target.exists() and not overwrite:
        # The batch-and-version-named output exists: if the ledger has this model's scoring of
        # this batch (a re-run, or a second run started at the same moment that finished
        # first) that is "already scored"; else a file nobody recorded, left alone.
        done = _already_scored(source, batch_id, target, model, warehouse)
        if done is None:
            raise _exists_error(target)
        return done
    data_spec = model_spec_for(model, asked, explicit=spec is not None)
    tags = {"batch_id": batch_id, "dataset": dataset or data_spec.name, "source_file": str(source.resolve())}
    with BatchStage(target, tags) as stage:
        n_in, n_scored, n_quarantined, n_declined = _score_chunks(
            source, data_spec, model, reasons, stage, chunk_rows
        )
        if file_batch_id(source) != batch_id:
            raise RiskAppError(f"{source}: the file changed while it was read; score it once it is complete")
        batch = ScoredBatch(
            batch_id=batch_id, model_version=str(model.version), dataset=tags["dataset"],
            source_file=tags["source_file"], scores=stage.ledger_path("scores") or _EMPTY_SCORES,
            applications=stage.ledger_path("applications"), quarantine=stage.ledger_path("quarantine"),
            output_path=str(target), origin=origin, n_in=n_in, **policy_of(model),
        )  # fmt: skip
        record = record_scored_batch(batch, mode=mode, path=warehouse)
        written_q = default_quarantine_path(target) if n_quarantined else None
        explicit = output_path is not None
        _publish(stage, target, written_q, record, overwrite=overwrite, explicit_output=explicit)
    return ScoringOutcome(
        batch_id=batch_id, input_path=str(source), output_path=str(target),
        quarantine_path=str(written_q) if written_q else None, model_version=str(model.version), n_in=n_in,
        n_scored=n_scored, n_quarantined=n_quarantined, n_declined=n_declined, record=record,
        stale_stages_removed=tuple(str(p) for p in stage.removed_stale),
    )  # fmt: skip


def _already_scored(
    source: Path, batch_id: str, target: Path, model: Any, warehouse: Any
) -> ScoringOutcome | None:
    """The outcome of this batch's earlier scoring by this model version, read from the ledger
    (None when the ledger has no such batch: then the existing file is someone else's)."""
    from risk_app.storage.scores import recorded_batch

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
            raise OutputExistsError(
                f"{target}: already exists; not overwritten (pass overwrite=True / --overwrite)"
            ) from None


__all__ = [
    "FORMULA_TRIGGERS",
    "DEFAULT_CHUNK_ROWS",
    "OutputExistsError",
    "ScoringOutcome",
    "batch_output_path",
    "encode_frame",
    "neutralize_csv_cells",
    "score_and_record",
    "write_output",
]
