"""Outcome files: contract and book checks quarantine with reasons; each file counts once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.outcome import outcome_columns, outcome_schema
from data_contracts.spec import load_spec
from risk_app.errors import DataFileError
from risk_app.outcomes import store
from risk_app.outcomes.ingest import add_outcome_file, outcome_files
from tests.outcomes.conftest import SPEC, outcome_file


@pytest.mark.parametrize("dataset", ["german_credit", "uci_credit_card"])
def test_the_outcome_contract_follows_the_data_sets_own_id_and_labels(dataset: str) -> None:
    spec = load_spec(dataset)
    schema = outcome_schema(spec)
    assert list(schema.columns) == list(outcome_columns(spec))
    assert outcome_columns(spec)[1] == spec.target.column


def test_every_bad_row_is_quarantined_with_its_reason_and_rows_add_up(scored_book, tmp_path: Path) -> None:
    book = scored_book(months=("2025-01",), per_month=20)
    approved = book.loc[~book["declined"]]
    rows = pd.concat(
        [
            approved.head(6),
            approved.head(1),  # duplicate within the file
            book.loc[book["declined"]].head(1),  # declined: no loan
        ]
    )
    path = outcome_file(tmp_path / "outcomes.csv", rows)
    frame = pd.read_csv(path, dtype=str)
    extra = pd.DataFrame(
        [
            {"application_id": "nobody", SPEC.target.column: "good", "observation_date": "2025-09-30"},
            {"application_id": approved["application_id"].iloc[7], SPEC.target.column: "maybe",
             "observation_date": "2025-09-30"},
            {"application_id": approved["application_id"].iloc[8], SPEC.target.column: "bad",
             "observation_date": "2024-12-01"},  # before the application
            {"application_id": approved["application_id"].iloc[9], SPEC.target.column: "bad",
             "observation_date": "not a date"},
            {"application_id": "evil\u202eid", SPEC.target.column: "bad", "observation_date": "2025-09-30"},
        ]
    )  # fmt: skip
    pd.concat([frame, extra]).to_csv(path, index=False)

    report = add_outcome_file(path, SPEC, origin="cli")
    assert (report.n_in, report.n_accepted, report.n_quarantined) == (13, 6, 7)
    checks = dict(zip(report.quarantine["row_number"], report.quarantine["check"], strict=True))
    assert checks == {
        7: "field_uniqueness",
        8: "booked_application",
        9: "known_application",
        10: "isin(['good', 'bad'])",
        11: "observed_after_application",
        12: "coerce_dtype('datetime64[ns]')",
        13: "contains control or bidirectional-override characters",
    }
    reasons = dict(zip(report.quarantine["row_number"], report.quarantine["reason"], strict=True))
    assert "declined" in reasons[8] and "no scored application" in reasons[9]
    assert "before the application" in reasons[11] and "a date" in reasons[12]
    assert "\\u202e" in report.quarantine.set_index("row_number").at[13, "failure_value"]
    stored = store.read_rows(store.OUTCOMES)
    assert len(stored) == 6 and set(stored["outcome_label"]) <= {"good", "bad"}


def test_a_file_is_taken_in_once_whatever_its_name(scored_book, tmp_path: Path) -> None:
    book = scored_book(months=("2025-01",), per_month=10)
    rows = book.loc[~book["declined"]].head(4)
    first = add_outcome_file(outcome_file(tmp_path / "a.csv", rows), SPEC)
    (tmp_path / "copy.csv").write_bytes((tmp_path / "a.csv").read_bytes())
    again = add_outcome_file(tmp_path / "copy.csv", SPEC)
    assert first.status == "recorded" and again.status == "already_recorded"
    assert "nothing added" in again.message
    assert len(store.read_rows(store.OUTCOMES)) == 4 and len(outcome_files(SPEC.name)) == 1


def test_a_contradicting_or_repeated_outcome_in_a_later_file_is_quarantined(
    scored_book, tmp_path: Path
) -> None:
    book = scored_book(months=("2025-01",), per_month=10)
    rows = book.loc[~book["declined"]].head(2).copy()
    add_outcome_file(outcome_file(tmp_path / "first.csv", rows), SPEC)
    flipped = rows.copy()
    flipped.loc[flipped.index[0], SPEC.target.column] = (
        "good" if rows[SPEC.target.column].iloc[0] == "bad" else "bad"
    )
    later = add_outcome_file(outcome_file(tmp_path / "later.csv", flipped, observed="2025-10-31"), SPEC)
    assert later.n_accepted == 0
    assert list(later.quarantine["check"]) == ["consistent_outcome", "not_already_recorded"]


def test_a_file_without_the_label_column_is_refused_naming_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    pd.DataFrame({"application_id": ["a"], "observation_date": ["2025-01-01"]}).to_csv(path, index=False)
    with pytest.raises(DataFileError, match="creditability"):
        add_outcome_file(path, SPEC)
