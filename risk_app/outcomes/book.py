"""The labeled book: every scored application of a data set, joined with its outcome once known.

One row per application, as it was decided: the first time the scoring ledger
(`risk_app.storage.scores`) scored it gives the score, grade, decision, model version and time,
and `risk.scoring_applications` of that batch gives the features the model saw. The outcome
comes from `risk.outcomes` (`risk_app.outcomes.ingest`). An analyst override accepted into
`risk.overrides` (`risk_app.overrides`) replaces the model's decision for what was booked:
`override_side` says low (the analyst approved a model decline: a loan was booked) or high
(the analyst declined a model approval: none was), `booked_decision` is the decision that
stood, and `decision` stays the model's. Each row has a status:

    declined      declined (by the model, or by an analyst's override): no loan was booked, so
                  no outcome will ever come
    pending       approved, outcome not known yet
    with_outcome  approved and its outcome is known

and the accounting holds by construction and is checked: scored = with_outcome + pending +
declined. The vintage of an application is the month of its application date (the spec's date
column when the data set has one, otherwise the day it was scored).

Training on the book uses only `with_outcome` rows: declined applicants are excluded, counted
and shown. Reject inference (inferring the outcomes the declined would have had) is a named
option for later; `reject_inference` accepts only "none" today and says so.

    book = labeled_book("german_credit")
    counts = book_counts(book)          # scored / with_outcome / pending / declined
    extract = book_training_frame(spec, window_months=12)
    validation = validate_applications(extract.frame, source=extract.source, spec=spec)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import ConfigError, RiskAppError
from risk_app.outcomes import store
from risk_app.overrides import store as override_store
from risk_app.storage.holds import held_batch_ids
from risk_app.storage.scores import warehouse_connection
from risk_app.storage.sql import qualified

BookStatus = Literal["with_outcome", "pending", "declined"]
STATUSES: tuple[BookStatus, ...] = ("with_outcome", "pending", "declined")
RejectInference = Literal["none"]
SCORE_COLUMNS = ("probability_of_default", "risk_grade", "decision", "model_version", "scored_at", "batch_id")
# Library columns of the ledger that are not the applicant's data.
_LEDGER_ONLY = {"batch_id", "dataset", "source_file", "source_row", "default"}


@dataclass(frozen=True)
class BookExtract:
    """Training rows taken from the book, in the data set's own columns, and what was left out."""

    frame: pd.DataFrame
    vintages: list[str]
    counts: dict[str, int]
    source: str
    declined_excluded: int
    pending_excluded: int
    outside_window: int = 0
    notes: list[str] = field(default_factory=list)


def _ledger_frames(dataset: str, con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, applications) of a data set from the scoring ledger; empty when none were scored."""
    frames = []
    for table in ("scored_applications", "scoring_applications"):
        if store.has_table(con, table) and _has_column(con, table, "dataset"):
            frames.append(
                con.execute(
                    f"select * from {qualified(store.SCHEMA, table)} where dataset = ?", [dataset]
                ).fetchdf()
            )
        else:
            frames.append(pd.DataFrame(columns=["application_id", "batch_id"]))
    # Batches held for drift (`risk_app.storage.holds`) stay out until an analyst releases them.
    held = held_batch_ids(con, dataset)
    if held:
        frames = [frame.loc[~frame["batch_id"].astype(str).isin(held)] for frame in frames]
    return frames[0], frames[1]


def _has_column(con: Any, table: str, column: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
        "and column_name = ?",
        [store.SCHEMA, table, column],
    ).fetchall()[0]
    return bool(found and found[0])


def _decision_time_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The first scoring of each application: the one its decision was made on."""
    if scores.empty:
        return pd.DataFrame(columns=["application_id", *SCORE_COLUMNS])
    ordered = scores.assign(application_id=scores["application_id"].astype(str)).sort_values(
        ["scored_at", "batch_id"], kind="stable"
    )
    return ordered.drop_duplicates("application_id", keep="first")[["application_id", *SCORE_COLUMNS]]


def _application_dates(book: pd.DataFrame, spec: DatasetSpec) -> pd.Series:
    """The spec's application date when the data set has one, else the day it was scored."""
    scored = pd.to_datetime(book["scored_at"], utc=True).dt.tz_localize(None).dt.normalize()
    if spec.date_column and spec.date_column in book.columns:
        own = pd.to_datetime(book[spec.date_column], errors="coerce")
        return own.fillna(scored)
    return scored


def labeled_book(
    spec: DatasetSpec | str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """The book of data set `spec`: one row per scored application (see the module docstring).
    `con`: read inside the caller's connection (and transaction, under its lock)."""
    spec = load_spec(spec)
    if con is None:
        with warehouse_connection(path) as own:
            return labeled_book(spec, con=own)
    scores, applications = _ledger_frames(spec.name, con)
    decided = _decision_time_scores(scores)
    features = applications.assign(application_id=applications["application_id"].astype(str))
    keep = [c for c in features.columns if c not in _LEDGER_ONLY and c != spec.target.column]
    book = decided.merge(
        features[[*keep, "batch_id"]].drop_duplicates(["application_id", "batch_id"]),
        on=["application_id", "batch_id"],
        how="left",
    )
    outcomes = store.read_rows(store.OUTCOMES, {"dataset": spec.name}, con=con)
    outcomes = outcomes.sort_values("recorded_at").drop_duplicates("application_id", keep="first")
    book = book.merge(
        outcomes[["application_id", "outcome_label", "outcome_default", "observation_date"]],
        on="application_id",
        how="left",
    )
    book["application_date"] = _application_dates(book, spec)
    book["vintage"] = book["application_date"].dt.strftime("%Y-%m")
    book = _with_overrides(book, spec, con)
    declined = book["booked_decision"].astype(str).eq("decline")
    known = book["outcome_default"].notna()
    book["status"] = np.where(declined, "declined", np.where(known, "with_outcome", "pending"))
    book["outcome_default"] = book["outcome_default"].astype("Int64")
    check_book_accounting(book, len(decided))
    return book.sort_values(["application_date", "application_id"], kind="stable").reset_index(drop=True)


def _with_overrides(book: pd.DataFrame, spec: DatasetSpec, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """`override_side` (low / high / missing) and `booked_decision`: the analyst's decision where
    an override was accepted (`risk_app.overrides`), else the model's."""
    overrides = override_store.read_rows(override_store.OVERRIDES, {"dataset": spec.name}, con=con)
    first = overrides.sort_values("recorded_at").drop_duplicates("application_id", keep="first")
    taken = first[["application_id", "side", "analyst_decision"]].rename(
        columns={"side": "override_side", "analyst_decision": "_analyst_decision"}
    )
    book = book.merge(taken.astype({"application_id": str}), on="application_id", how="left")
    analyst = book["_analyst_decision"]
    book["booked_decision"] = analyst.where(analyst.notna(), book["decision"])
    return book.drop(columns="_analyst_decision")


def book_counts(book: pd.DataFrame) -> dict[str, int]:
    """scored, with_outcome, pending, declined (scored = the other three)."""
    counts = {status: int((book["status"] == status).sum()) for status in STATUSES}
    return {"scored": len(book), **counts}


def check_book_accounting(book: pd.DataFrame, scored: int) -> None:
    """Raise unless every scored application is exactly one of with_outcome / pending / declined."""
    counts = book_counts(book)
    if counts["scored"] != scored or scored != sum(counts[s] for s in STATUSES):
        raise RiskAppError(f"labeled book: row accounting broken: {counts} for {scored} scored applications")
    if book.loc[book["status"] == "declined", "outcome_default"].notna().any():
        raise RiskAppError("labeled book: a declined application has an outcome")


def vintage_counts(book: pd.DataFrame) -> pd.DataFrame:
    """Per vintage: scored, with_outcome, pending, declined, defaults and default rate."""
    if book.empty:
        return pd.DataFrame(columns=["vintage", "scored", *STATUSES, "defaults", "default_rate"])
    table = pd.crosstab(book["vintage"], book["status"]).reindex(columns=list(STATUSES), fill_value=0)
    table.insert(0, "scored", table.sum(axis=1))
    labelled = book.loc[book["status"] == "with_outcome"]
    table["defaults"] = labelled.groupby("vintage")["outcome_default"].sum().reindex(table.index).fillna(0)
    table["defaults"] = table["defaults"].astype(int)
    table["default_rate"] = (
        table["defaults"] / table["with_outcome"].where(table["with_outcome"] > 0)
    ).round(4)
    return table.reset_index().rename_axis(None, axis=1)


def vintage_outcome_counts(spec: DatasetSpec | str | None = None) -> dict[str, int]:
    """Vintage -> applications with a known outcome (vintages without any are left out)."""
    book = labeled_book(spec)
    labelled = book.loc[book["status"] == "with_outcome"]
    return {str(k): int(v) for k, v in labelled.groupby("vintage").size().items()}


def book_ready_for_training(spec: DatasetSpec | str | None = None, min_vintages: int = 3) -> bool:
    """Whether at least `min_vintages` vintages have known outcomes (enough for an out-of-time
    split: train, validate on the month before the newest, test on the newest)."""
    return len(vintage_outcome_counts(spec)) >= min_vintages


def check_reject_inference(reject_inference: str) -> None:
    if reject_inference != "none":
        raise ConfigError(
            f"reject_inference={reject_inference!r} is not available yet: declined applicants have no "
            "outcome and are excluded from training (counted in the book); the only option today is 'none'"
        )


def _label_values(spec: DatasetSpec, labels: pd.Series) -> pd.Series:
    """Outcome labels (stored as text) back in the type of the spec's target column."""
    kind = spec.columns[spec.target.column].type
    if kind == "integer":
        return pd.to_numeric(labels).astype("int64")
    if kind == "float":
        return pd.to_numeric(labels).astype(float)
    return labels.astype(str)


def book_training_frame(
    spec: DatasetSpec | str | None = None,
    *,
    window_months: int = 0,
    reject_inference: RejectInference = "none",
    path: str | os.PathLike[str] | None = None,
) -> BookExtract:
    """Rows with a known outcome from the last `window_months` vintages (0: all), in the data
    set's own columns (id, features, label, date), ready for `validate_applications`."""
    check_reject_inference(reject_inference)
    if window_months < 0:
        raise ConfigError(f"window_months must be >= 0 (0 = every vintage), got {window_months}")
    spec = load_spec(spec)
    book = labeled_book(spec, path=path)
    counts = book_counts(book)
    labelled = book.loc[book["status"] == "with_outcome"]
    if labelled.empty:
        raise RiskAppError(
            f"the labeled book of {spec.name} has no application with a known outcome yet "
            f"({counts['scored']} scored, {counts['pending']} pending, {counts['declined']} declined)"
        )
    vintages = sorted(labelled["vintage"].unique())
    if window_months:
        vintages = vintages[-window_months:]
    inside = labelled.loc[labelled["vintage"].isin(vintages)]
    columns = [c for c in spec.columns if c in inside.columns or c == spec.target.column]
    frame = inside.assign(**{spec.target.column: _label_values(spec, inside["outcome_label"])})
    if spec.id_column not in frame.columns:
        frame[spec.id_column] = frame["application_id"]
    frame = frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)
    source = f"labeled book of {spec.name} (vintages {vintages[0]}..{vintages[-1]})"
    return BookExtract(
        frame=frame,
        vintages=list(vintages),
        counts=counts,
        source=source,
        declined_excluded=counts["declined"],
        pending_excluded=counts["pending"],
        outside_window=len(labelled) - len(inside),
        notes=[
            f"{counts['declined']} declined application(s) excluded: no loan, no outcome "
            "(reject inference: none)",
            f"{counts['pending']} approved application(s) still pending their outcome",
        ],
    )


__all__ = [
    "STATUSES",
    "BookExtract",
    "BookStatus",
    "RejectInference",
    "book_counts",
    "book_ready_for_training",
    "book_training_frame",
    "check_book_accounting",
    "check_reject_inference",
    "labeled_book",
    "vintage_counts",
    "vintage_outcome_counts",
]
