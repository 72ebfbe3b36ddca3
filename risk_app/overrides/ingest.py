"""Take in an analyst override file exactly once: validate it, quarantine what fails, record the rest.

An override file (`data_contracts.override`) goes through three sets of checks:

1. the contract, per row (pandera, lazily): a readable id, a scoring batch id, decisions, a
   reason code from the list in force, an analyst reference, a readable time;
2. the file, per row: the analyst's decision must differ from the model's (`overrides_the_model`),
   and one file may not decide one application twice: the same decision again is a duplicate
   (`field_uniqueness`, the first row is kept), different decisions are contradictory
   (`consistent_in_file`, every row of that id is quarantined);
3. the scoring ledger and the overrides already recorded, per row: the batch must exist
   (`known_batch`) and belong to this data set (`batch_of_dataset`), the id must have been
   scored in this data set (`known_application`) and in that batch (`scored_in_batch`), the
   model decision must be the one the ledger recorded (`matches_ledger`), and an earlier
   override of the same application must not be contradicted (`consistent_override`) or
   repeated (`not_already_recorded`).

Rows in = accepted + quarantined, enforced. The file is identified by the sha256 of its bytes:
the same content a second time (another name, a re-run, the CLI after the sensor) adds nothing
and says so. The ledger checks and the write run in one warehouse transaction under the
warehouse lock, so two files overriding the same application at once are ordered and the
second sees the first; a process killed mid-write leaves nothing (DuckDB discards the
uncommitted transaction).

    report = add_override_file("overrides_2025-04.csv", spec="german_credit", origin="cli")
    print(report.message)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from data_contracts.override import (
    ANALYST,
    ANALYST_DECISION,
    BATCH_ID,
    DECIDED_AT,
    DEFAULT_REASON_CODES,
    MODEL_DECISION,
    REASON_CODE,
    override_columns,
    override_schema,
    override_side,
)
from data_contracts.spec import DatasetSpec, load_spec
from risk_app import paths
from risk_app.data.load import SOURCE_ROW_COLUMN
from risk_app.data.validate import collect_failures
from risk_app.errors import DataFileError, RiskAppError
from risk_app.overrides import store
from risk_app.storage import scores as ledger
from risk_app.storage.file_ledger import (
    Failure,
    FileReport,
    check_accounting,
    file_id_of,
    quarantine_rows,
    read_ledger_file,
    record_once,
    recorded_report,
)
from risk_app.storage.sql import qualified

OverrideOrigin = Literal["cli", "dagster", "library", "simulation"]

_REASONS = {
    "not_nullable": "missing value",
    "field_uniqueness": "an earlier row of this file overrides this application the same way",
    "consistent_in_file": "this file gives this application different analyst decisions; none is taken",
    "overrides_the_model": "the analyst's decision equals the model's: not an override",
    "known_batch": "no scoring batch has this id",
    "batch_of_dataset": "this scoring batch belongs to another data set",
    "known_application": "no application of this data set was ever scored under this id",
    "scored_in_batch": "this application was not scored in this batch",
    "matches_ledger": "the scoring ledger shows the model made the other decision",
    "consistent_override": "contradicts an override already recorded for this application",
    "not_already_recorded": "this override was already recorded from an earlier file",
}


def _reason(check: str) -> str:
    if check in _REASONS:
        return _REASONS[check]
    if check.startswith("isin("):
        return f"not one of the allowed values: {check[5:-1]}"
    if check.startswith("str_matches("):
        return "not a scoring batch id (64 lowercase hexadecimal characters, as `risk-app score` prints)"
    if check.startswith("str_length("):
        return "empty or longer than 128 characters"
    if check.startswith("coerce_dtype("):
        return "cannot be read as " + ("a date and time" if "datetime" in check else check[13:-1])
    if "control" in check:
        return "contains control or bidirectional-override characters (e.g. U+202E)"
    return f"fails check {check}"


def overrides_landing_dir() -> Path:
    """The folder the override sensor watches: `<home>/landing_overrides/`."""
    folder = paths.home() / "landing_overrides"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class OverrideFileReport(FileReport):
    """What taking in one override file did (or found already done)."""

    KIND = "override"


# ---- reading and the contract ----------------------------------------------------------------
def read_override_file(path: str | os.PathLike[str], spec: DatasetSpec) -> pd.DataFrame:
    """The file's rows as written (text for CSV), with `source_row`; file-level problems raise."""
    columns = override_columns(spec)
    frame = read_ledger_file(path, spec, columns, f"override file of {spec.name} has {', '.join(columns)}")
    for column in (BATCH_ID, MODEL_DECISION, ANALYST_DECISION, REASON_CODE):
        # Case and stray spaces are not worth quarantining a row for.
        frame[column] = frame[column].where(
            frame[column].isna(), frame[column].astype(str).str.strip().str.lower()
        )
    return frame


def _file_failures(frame: pd.DataFrame, spec: DatasetSpec, contract: list[Failure]) -> list[Failure]:
    """Rows that are not overrides, and the rows of ids this file decides differently twice."""
    bad_decision = {i for i, c, _ in contract if c in (MODEL_DECISION, ANALYST_DECISION)}
    failures: list[Failure] = []
    for index in frame.index:
        if index not in bad_decision and frame.at[index, MODEL_DECISION] == frame.at[index, ANALYST_DECISION]:
            failures.append((int(index), ANALYST_DECISION, "overrides_the_model"))
    ids = frame[spec.id_column]
    repeated = frame[ids.notna() & ids.duplicated(keep=False)].drop(
        index=sorted(bad_decision), errors="ignore"
    )
    split = repeated.groupby(repeated[spec.id_column].astype(str))[ANALYST_DECISION].nunique()
    torn = set(split[split > 1].index)
    failures += [
        (int(i), ANALYST_DECISION, "consistent_in_file")
        for i in repeated.index
        if str(repeated.at[i, spec.id_column]) in torn
    ]
    return failures


def check_contract(
    frame: pd.DataFrame, source: str, spec: DatasetSpec, reason_codes: Sequence[str]
) -> tuple[pd.DataFrame, list[Failure]]:
    """(typed rows that pass the contract and the file checks, every failure as (row, column,
    check)). Needs no warehouse, so it runs before the lock is taken."""
    schema = override_schema(spec, reason_codes)
    columns = list(override_columns(spec))
    row_level, file_level = collect_failures(schema, frame[columns], spec.id_column)
    if not file_level.empty:
        raise DataFileError(source, f"file-level override contract failure: {file_level.to_dict('records')}")
    contract = [
        (int(i), str(c), str(k))
        for i, c, k in row_level[["index", "column", "check"]].itertuples(index=False)
    ]
    own = _file_failures(frame, spec, contract)
    torn = {i for i, _, k in own if k == "consistent_in_file"}
    # The contradiction is the reason for those rows; "duplicate" would say the first was fine.
    contract = [f for f in contract if not (f[0] in torn and f[2] == "field_uniqueness")] + own
    bad = {i for i, _, _ in contract}
    survivors = frame.drop(index=sorted(bad))
    typed = schema.validate(survivors[columns].copy(), lazy=False)
    typed[SOURCE_ROW_COLUMN] = survivors[SOURCE_ROW_COLUMN]
    return typed, sorted(set(contract))


# ---- the ledger ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerView:
    """What the checks need from the warehouse, read under the lock: the scoring batches named
    by the file, the data set's scored rows, and the overrides already recorded."""

    batches: pd.DataFrame  # batch_id, dataset (of the batches the file names)
    scored: pd.DataFrame  # application_id, batch_id, decision, model_version, PD, grade, scored_at
    earlier: pd.DataFrame  # the data set's recorded overrides


def read_ledger(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, batch_ids: Sequence[str]) -> LedgerView:
    """The ledger rows the override checks need, inside the caller's transaction."""
    batches = pd.DataFrame(columns=["batch_id", "dataset"])
    scored = pd.DataFrame(columns=["application_id", "batch_id", "decision", "model_version"])
    if store.has_table(con, ledger.BATCHES) and batch_ids:
        batches = con.execute(
            f"select distinct batch_id, dataset from {qualified(ledger.SCHEMA, ledger.BATCHES)} "
            "where list_contains(?, batch_id)",
            [list(batch_ids)],
        ).fetchdf()
    if store.has_table(con, ledger.SCORES):
        scored = con.execute(
            "select application_id, batch_id, decision, model_version, probability_of_default, risk_grade, "
            f"scored_at from {qualified(ledger.SCHEMA, ledger.SCORES)} where dataset = ?",
            [spec.name],
        ).fetchdf()
        scored["application_id"] = scored["application_id"].astype(str)
    earlier = store.read_rows(store.OVERRIDES, {"dataset": spec.name}, con=con)
    return LedgerView(batches, scored, earlier)


def _ledger_failures(typed: pd.DataFrame, spec: DatasetSpec, view: LedgerView) -> list[Failure]:
    """Failures of contract-valid rows against the scoring ledger and the recorded overrides."""
    batch_dataset = dict(
        zip(view.batches["batch_id"].astype(str), view.batches["dataset"].astype(str), strict=True)
    )
    scored_ids = set(view.scored["application_id"])
    decisions = view.scored.groupby(["batch_id", "application_id"])["decision"].agg(set).to_dict()
    earlier = view.earlier.sort_values("recorded_at").drop_duplicates("application_id", keep="first")
    before = dict(zip(earlier["application_id"].astype(str), earlier["analyst_decision"], strict=True))
    failures: list[Failure] = []
    for index, row in typed.iterrows():
        ident, batch = str(row[spec.id_column]), str(row[BATCH_ID])
        if batch not in batch_dataset:
            failures.append((int(index), BATCH_ID, "known_batch"))
        elif batch_dataset[batch] != spec.name:
            failures.append((int(index), BATCH_ID, "batch_of_dataset"))
        elif ident not in scored_ids:
            failures.append((int(index), spec.id_column, "known_application"))
        elif (batch, ident) not in decisions:
            failures.append((int(index), BATCH_ID, "scored_in_batch"))
        elif row[MODEL_DECISION] not in decisions[(batch, ident)]:
            failures.append((int(index), MODEL_DECISION, "matches_ledger"))
        elif ident in before:
            same = before[ident] == row[ANALYST_DECISION]
            failures.append(
                (int(index), ANALYST_DECISION, "not_already_recorded" if same else "consistent_override")
            )
    return failures


def check_against_ledger(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    contract: list[Failure],
    source: str,
    spec: DatasetSpec,
    view: LedgerView,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted rows, quarantine table); rows in = accepted + quarantined, enforced."""
    failures_ledger = _ledger_failures(typed, spec, view)
    quarantine = quarantine_rows(frame, sorted(contract + failures_ledger), source, spec, _reason)
    accepted = typed.drop(index=sorted({i for i, _, _ in failures_ledger}))
    n_quarantined = len({i for i, _, _ in contract}) + len({i for i, _, _ in failures_ledger})
    check_accounting(source, "override", len(frame), len(accepted), n_quarantined)
    return accepted, quarantine


def _override_rows(
    accepted: pd.DataFrame, view: LedgerView, spec: DatasetSpec, file_id: str, source: str, now: pd.Timestamp
) -> pd.DataFrame:
    """The accepted overrides with what the ledger knew when the model decided: the latest
    scoring of (batch, id) that made the decision the analyst overrode."""
    keys = accepted.assign(application_id=accepted[spec.id_column].astype(str))
    scored = view.scored.sort_values("scored_at").drop_duplicates(
        ["batch_id", "application_id", "decision"], keep="last"
    )
    merged = keys.merge(
        scored.rename(columns={"decision": MODEL_DECISION}),
        on=["batch_id", "application_id", MODEL_DECISION],
        how="left",
        validate="many_to_one",
    )
    return pd.DataFrame(
        {
            "application_id": merged["application_id"],
            "batch_id": merged[BATCH_ID].astype(str),
            "model_version": merged["model_version"].astype(str),
            "model_decision": merged[MODEL_DECISION].astype(str),
            "analyst_decision": merged[ANALYST_DECISION].astype(str),
            "side": override_side(merged[MODEL_DECISION]),
            "reason_code": merged[REASON_CODE].astype(str),
            "analyst": merged[ANALYST].astype(str),
            "decided_at": pd.to_datetime(merged[DECIDED_AT]),
            "probability_of_default": merged["probability_of_default"].astype(float),
            "risk_grade": merged["risk_grade"].astype(str),
            "file_id": file_id,
            "dataset": spec.name,
            "source_file": source,
            "source_row": merged[SOURCE_ROW_COLUMN].astype("int64").to_numpy(),
            "recorded_at": now,
        }
    )


# ---- taking a file in ------------------------------------------------------------------------
def _check_and_write(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    contract: list[Failure],
    source: str,
    spec: DatasetSpec,
    file_row: pd.DataFrame,
) -> OverrideFileReport:
    """Check the rows against the ledger and earlier overrides and write the file, inside the
    transaction of `record_once` (under the warehouse lock)."""
    file_id, now = str(file_row["file_id"].iloc[0]), file_row["recorded_at"].iloc[0]
    view = read_ledger(con, spec, sorted(set(typed[BATCH_ID].astype(str))))
    accepted, quarantine = check_against_ledger(frame, typed, contract, source, spec, view)
    n_quarantined = int(quarantine["row_number"].nunique()) if len(quarantine) else 0
    store.insert_rows(
        con, store.FILES, file_row.assign(n_accepted=len(accepted), n_quarantined=n_quarantined)
    )
    store.insert_rows(con, store.OVERRIDES, _override_rows(accepted, view, spec, file_id, source, now))
    store.insert_rows(con, store.QUARANTINE, quarantine.assign(file_id=file_id, dataset=spec.name))
    return OverrideFileReport(
        "recorded", file_id, spec.name, source, len(frame), len(accepted), n_quarantined, quarantine
    )


def add_override_file(
    input_path: str | os.PathLike[str],
    spec: DatasetSpec | str | None = None,
    *,
    reason_codes: Sequence[str] = DEFAULT_REASON_CODES,
    origin: OverrideOrigin = "library",
    partition_key: str | None = None,
    expected_file_id: str = "",
    path: str | os.PathLike[str] | None = None,
) -> OverrideFileReport:
    """Validate one override file and record it exactly once (keyed by the sha256 of its bytes).

    `reason_codes` is the list in force (the deployment's settings; `DEFAULT_REASON_CODES`
    otherwise). A file whose content was taken in before adds nothing and reports what the
    first time recorded; `expected_file_id` (the sensor's sha256) refuses a file that changed
    since. A file that cannot be read, or lacks a column, raises one `DataFileError` naming it;
    every row-level problem is quarantined with file, row and reason instead."""
    spec = load_spec(spec)
    source = str(input_path)
    file_id = file_id_of(input_path, source, "override", expected_file_id)
    if (done := recorded_report(store.TABLES, OverrideFileReport, file_id, spec.name, path)) is not None:
        return done
    frame = read_override_file(input_path, spec)
    typed, contract = check_contract(frame, source, spec, reason_codes)
    file_row = pd.DataFrame(
        [{
            "file_id": file_id, "dataset": spec.name, "source_file": source,
            "partition_key": partition_key or "", "n_in": len(frame), "n_accepted": 0,
            "n_quarantined": 0, "reason_codes": ",".join(reason_codes),
            "origin": origin, "recorded_at": pd.Timestamp.now(tz="UTC"),
        }]
    )  # fmt: skip
    written = record_once(
        store.TABLES, file_id, spec.name, path,
        lambda con: _check_and_write(con, frame, typed, contract, source, spec, file_row),
    )  # fmt: skip
    if written is not None:
        return written
    # Taken in by another caller since the first look: report what it recorded.
    recorded = recorded_report(store.TABLES, OverrideFileReport, file_id, spec.name, path)
    if recorded is None:
        raise RiskAppError(f"{source}: override file {file_id[:12]} vanished from the warehouse")
    return recorded


__all__ = [
    "OverrideFileReport",
    "add_override_file",
    "check_against_ledger",
    "check_contract",
    "overrides_landing_dir",
    "read_ledger",
    "read_override_file",
]
