"""Take in an outcome file exactly once: validate it, quarantine what fails, record the rest.

An outcome file (`data_contracts.outcome`) goes through two sets of checks:
1. the contract, per row (pandera, lazily, with `risk_app.data.validate.collect_failures`): a
   readable id without control characters, unique within the file, a label of the data set,
   a readable observation date;
2. the book, per row: the id must be a scored application of the data set (`known_application`),
   approved (`booked_application`: a declined applicant got no loan), observed on or after its
   application date (`observed_after_application`), and not contradict (`consistent_outcome`)
   or repeat (`not_already_recorded`) an outcome already accepted.

Within one file, an id given two different labels is contradictory: every row of it is
quarantined (`consistent_in_file`), none is taken; the same label twice keeps the first row.

Rows in = accepted + quarantined, enforced. The file is identified by the sha256 of its bytes:
the same content a second time (another name, a re-run, the CLI after the sensor) adds nothing
and says so. The contract is checked first; the checks against the book and the outcomes
already recorded then run inside the one warehouse transaction, under the warehouse lock, that
writes the file: two files with the same new ids and opposite labels taken in at once are
ordered, and the second finds the first's outcomes.

    report = add_outcome_file("outcomes_2025-04.csv", spec="german_credit", origin="cli")
    print(report.message)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from data_contracts.outcome import OBSERVATION_DATE, outcome_columns, outcome_schema
from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.load import SOURCE_ROW_COLUMN
from risk_app.data.validate import collect_failures
from risk_app.errors import DataFileError, RiskAppError
from risk_app.outcomes import store
from risk_app.outcomes.book import labeled_book
from risk_app.outcomes.routing import outcomes_landing_dir
from risk_app.storage.file_ledger import (
    FileReport,
    check_accounting,
    file_id_of,
    quarantine_rows,
    read_ledger_file,
    record_once,
    recorded_report,
)

OutcomeOrigin = Literal["cli", "dagster", "library", "simulation"]

_REASONS = {
    "not_nullable": "missing value",
    "field_uniqueness": "duplicate id in this file (an earlier row has the same id)",
    "consistent_in_file": "this file gives this application different outcomes in different rows; "
    "none of them is taken",
    "known_application": "no scored application of this data set has this id",
    "booked_application": "the application was declined: no loan was booked, so it cannot have an outcome",
    "observed_after_application": "observed before the application was made",
    "consistent_outcome": "contradicts the outcome already recorded for this application",
    "not_already_recorded": "this outcome was already recorded from an earlier file",
}


def _reason(check: str) -> str:
    if check in _REASONS:
        return _REASONS[check]
    if check.startswith("isin("):
        return f"not a label of the data set; allowed: {check[5:-1]}"
    if check.startswith("coerce_dtype("):
        return "cannot be read as " + ("a date" if "datetime" in check else check[13:-1])
    if "control" in check:
        return "contains control or bidirectional-override characters (e.g. U+202E)"
    return f"fails check {check}"


class OutcomeFileReport(FileReport):
    """What taking in one outcome file did (or found already done)."""

    KIND = "outcome"


def read_outcome_file(path: str | os.PathLike[str], spec: DatasetSpec) -> pd.DataFrame:
    """The file's rows as written (text for CSV), with `source_row`; file-level problems raise."""
    columns = outcome_columns(spec)
    return read_ledger_file(
        path,
        spec,
        columns,
        f"outcome file of {spec.name} has {', '.join(columns)} ({spec.target.column} in the data "
        f"set's labels, {spec.target.positive!r} = default)",
    )


def _book_failures(
    valid: pd.DataFrame, spec: DatasetSpec, book: pd.DataFrame, earlier: pd.DataFrame
) -> list[tuple[int, str, str]]:
    """Failures of contract-valid rows against the book and the outcomes already recorded."""
    id_column, _, _ = outcome_columns(spec)
    by_id = book.set_index("application_id")
    known_before = earlier.drop_duplicates("application_id").set_index("application_id")["outcome_default"]
    failures = []
    for index, row in valid.iterrows():
        ident = str(row[id_column])
        if ident not in by_id.index:
            failures.append((index, id_column, "known_application"))
        elif by_id.at[ident, "status"] == "declined":
            failures.append((index, id_column, "booked_application"))
        elif pd.Timestamp(row[OBSERVATION_DATE]) < pd.Timestamp(by_id.at[ident, "application_date"]):
            failures.append((index, OBSERVATION_DATE, "observed_after_application"))
        elif ident in known_before.index:
            same = int(known_before.at[ident]) == int(row["outcome_default"])
            failures.append(
                (index, spec.target.column, "not_already_recorded" if same else "consistent_outcome")
            )
    return failures


def _contradictions(
    frame: pd.DataFrame, spec: DatasetSpec, contract: list[tuple[int, str, str]]
) -> set[int]:
    """Rows of ids that this file gives different labels (among rows whose label is valid)."""
    id_column, label_column, _ = outcome_columns(spec)
    bad_label = {i for i, c, _ in contract if c == label_column}
    ids = frame[id_column]
    repeated = frame[ids.notna() & ids.duplicated(keep=False)]
    labelled = repeated.drop(index=[i for i in repeated.index if i in bad_label])
    if labelled.empty:
        return set()
    flags = spec.default_flag(labelled[label_column])
    split = flags.groupby(labelled[id_column].astype(str)).nunique()
    torn = set(split[split > 1].index)
    return {int(i) for i in repeated.index if str(repeated.at[i, id_column]) in torn}


def check_contract(
    frame: pd.DataFrame, source: str, spec: DatasetSpec
) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """(typed rows that pass the outcome contract, their failures as (row, column, check)).

    Needs no warehouse, so it runs before the lock is taken. An id with different labels in
    different rows fails `consistent_in_file` in every one of them (not only the later ones)."""
    schema = outcome_schema(spec)
    columns = list(outcome_columns(spec))
    row_level, file_level = collect_failures(schema, frame[columns], spec.id_column)
    if not file_level.empty:
        raise DataFileError(source, f"file-level outcome contract failure: {file_level.to_dict('records')}")
    contract = [
        (int(i), str(c), str(k))
        for i, c, k in row_level[["index", "column", "check"]].itertuples(index=False)
    ]
    torn = _contradictions(frame, spec, contract)
    if torn:
        # The contradiction is the reason for these rows; "duplicate" would say the first was fine.
        contract = [f for f in contract if not (f[0] in torn and f[2] == "field_uniqueness")]
        contract += [(i, spec.target.column, "consistent_in_file") for i in sorted(torn)]
    bad = {i for i, _, _ in contract}
    survivors = frame.drop(index=sorted(bad))
    typed = schema.validate(survivors[columns].copy(), lazy=False)
    typed["outcome_default"] = spec.default_flag(typed[spec.target.column])
    typed[SOURCE_ROW_COLUMN] = survivors[SOURCE_ROW_COLUMN]
    return typed, sorted(contract)


def check_against_book(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    contract: list[tuple[int, str, str]],
    source: str,
    spec: DatasetSpec,
    book: pd.DataFrame,
    earlier: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted rows, quarantine table) once the contract survivors `typed` are checked against
    the book and the outcomes already recorded; rows in = accepted + quarantined, enforced."""
    ledger = _book_failures(typed, spec, book, earlier)
    failures = sorted(contract + ledger)
    quarantine = quarantine_rows(frame, failures, source, spec, _reason)
    accepted = typed.drop(index=sorted({i for i, _, _ in ledger}))
    n_quarantined = len({i for i, _, _ in contract}) + len({i for i, _, _ in ledger})
    check_accounting(source, "outcome", len(frame), len(accepted), n_quarantined)
    return accepted, quarantine


def _outcome_rows(
    accepted: pd.DataFrame, spec: DatasetSpec, file_id: str, source: str, now: pd.Timestamp
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "application_id": accepted[spec.id_column].astype(str),
            "outcome_label": accepted[spec.target.column].astype(str),
            "outcome_default": accepted["outcome_default"].astype("int64"),
            "observation_date": pd.to_datetime(accepted[OBSERVATION_DATE]),
            "file_id": file_id,
            "dataset": spec.name,
            "source_file": source,
            "source_row": accepted[SOURCE_ROW_COLUMN].astype("int64"),
            "recorded_at": now,
        }
    )


def _check_and_write(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    contract: list[tuple[int, str, str]],
    source: str,
    spec: DatasetSpec,
    file_row: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the rows against the book and earlier outcomes and write the file, inside the
    transaction of `record_once` (under the warehouse lock): (accepted, quarantine)."""
    file_id, now = str(file_row["file_id"].iloc[0]), file_row["recorded_at"].iloc[0]
    # Read under the lock: a file taken in meanwhile is seen, never raced past.
    book = labeled_book(spec, con=con)
    earlier = store.read_rows(store.OUTCOMES, {"dataset": spec.name}, con=con)
    accepted, quarantine = check_against_book(frame, typed, contract, source, spec, book, earlier)
    n_quarantined = int(quarantine["row_number"].nunique()) if len(quarantine) else 0
    row = file_row.assign(n_accepted=len(accepted), n_quarantined=n_quarantined)
    store.insert_rows(con, store.FILES, row)
    store.insert_rows(con, store.OUTCOMES, _outcome_rows(accepted, spec, file_id, source, now))
    store.insert_rows(con, store.QUARANTINE, quarantine.assign(file_id=file_id, dataset=spec.name))
    return accepted, quarantine


def add_outcome_file(
    input_path: str | os.PathLike[str],
    spec: DatasetSpec | str | None = None,
    *,
    origin: OutcomeOrigin = "library",
    partition_key: str = "",
    expected_file_id: str = "",
    path: str | os.PathLike[str] | None = None,
) -> OutcomeFileReport:
    """Validate one outcome file against its contract and the book, and record it exactly once."""
    spec = load_spec(spec)
    source = Path(input_path)
    file_id = file_id_of(source, str(source), "outcome", expected_file_id)
    done = recorded_report(store.TABLES, OutcomeFileReport, file_id, spec.name, path)
    if done is not None:
        return done
    frame = read_outcome_file(source, spec)
    typed, contract = check_contract(frame, str(source), spec)
    now = pd.Timestamp.now(tz="UTC")
    file_row = pd.DataFrame(
        [
            {
                "file_id": file_id, "dataset": spec.name, "source_file": str(source),
                "partition_key": partition_key, "n_in": len(frame), "n_accepted": 0,
                "n_quarantined": 0, "origin": origin, "recorded_at": now,
            }
        ]
    )  # fmt: skip
    written = record_once(
        store.TABLES, file_id, spec.name, path,
        lambda con: _check_and_write(con, frame, typed, contract, str(source), spec, file_row),
    )  # fmt: skip
    if written is None:
        # Another caller recorded the same file meanwhile: report what it recorded.
        done = recorded_report(store.TABLES, OutcomeFileReport, file_id, spec.name, path)
        if done is None:  # seen under the lock a moment ago; records are never deleted
            raise RiskAppError(f"{source}: outcome file {file_id[:12]} vanished from the warehouse")
        return done
    accepted, quarantine = written
    n_quarantined = int(quarantine["row_number"].nunique()) if len(quarantine) else 0
    return OutcomeFileReport(
        "recorded", file_id, spec.name, str(source), len(frame), len(accepted), n_quarantined, quarantine
    )


def outcome_files(dataset: str | None = None, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The outcome files taken in (all data sets, or one), oldest first."""
    return (
        store.read_rows(store.FILES, {"dataset": dataset} if dataset else None, path=path)
        .sort_values("recorded_at")
        .reset_index(drop=True)
    )


__all__ = [
    "OutcomeFileReport",
    "OutcomeOrigin",
    "add_outcome_file",
    "check_against_book",
    "check_contract",
    "outcome_files",
    "outcomes_landing_dir",
    "read_outcome_file",
]
