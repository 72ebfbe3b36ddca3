"""The labeled book: one row per scored application, statuses that add up, training rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.data.split import latest_vintage_fractions, out_of_time_split
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from risk_app.outcomes.book import (
    book_counts,
    book_ready_for_training,
    book_training_frame,
    labeled_book,
    vintage_counts,
)
from risk_app.outcomes.ingest import add_outcome_file
from tests.outcomes.conftest import SPEC, outcome_file

MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04")


def _release(book: pd.DataFrame, months: tuple[str, ...], folder: Path) -> None:
    for month in months:
        rows = book.loc[(book["month"] == month) & ~book["declined"]]
        add_outcome_file(outcome_file(folder / f"outcomes_{month}.csv", rows), SPEC)


def test_statuses_add_up_and_declined_applicants_never_have_an_outcome(scored_book, tmp_path: Path) -> None:
    truth = scored_book(months=MONTHS, per_month=20)
    _release(truth, MONTHS[:2], tmp_path)
    book = labeled_book(SPEC)
    counts = book_counts(book)
    assert counts == {"scored": 80, "with_outcome": 32, "pending": 32, "declined": 16}
    per_vintage = vintage_counts(book).set_index("vintage")
    assert per_vintage.loc["2025-01", "with_outcome"] == 16 and per_vintage.loc["2025-03", "pending"] == 16
    labelled = book.loc[book["status"] == "with_outcome"].set_index("application_id")
    expected = truth.set_index("application_id").loc[labelled.index, "default"]
    assert (labelled["outcome_default"].astype(int) == expected).all()
    # The book keeps the decision-time features, never the label given at scoring time.
    assert "credit_amount" in book.columns and SPEC.target.column not in book.columns


def test_training_rows_exclude_declined_and_pending_and_respect_the_window(
    scored_book, tmp_path: Path
) -> None:
    truth = scored_book(months=MONTHS, per_month=20)
    _release(truth, MONTHS[:3], tmp_path)
    extract = book_training_frame(SPEC, window_months=2)
    assert extract.vintages == ["2025-02", "2025-03"]
    assert len(extract.frame) == 32 and extract.outside_window == 16
    assert extract.declined_excluded == 16 and extract.pending_excluded == 16
    assert any("reject inference: none" in note for note in extract.notes)
    # The rows are the data set's own columns: the one validator takes them as training data.
    validation = validate_applications(extract.frame, source=extract.source, spec=SPEC)
    assert validation.n_quarantined == 0 and validation.n_valid == 32
    assert book_ready_for_training(SPEC)


def test_reject_inference_is_a_named_option_not_silently_ignored(scored_book, tmp_path: Path) -> None:
    scored_book(months=MONTHS[:1], per_month=10)
    with pytest.raises(ConfigError, match="reject_inference='parceling' is not available yet"):
        book_training_frame(SPEC, reject_inference="parceling")  # type: ignore[arg-type]
    with pytest.raises(RiskAppError, match="no application with a known outcome"):
        book_training_frame(SPEC)


def test_latest_vintage_fractions_make_the_newest_month_the_test_set() -> None:
    dates = pd.Series(
        pd.to_datetime(
            [f"2025-01-{d:02d}" for d in range(1, 21)]
            + [f"2025-02-{d:02d}" for d in range(1, 8)]
            + [f"2025-03-{d:02d}" for d in range(1, 12)]
        )
    )
    split = out_of_time_split(dates, fractions=latest_vintage_fractions(dates))
    months = dates.dt.strftime("%Y-%m")
    assert set(months[split == "test"]) == {"2025-03"} and (split[months == "2025-03"] == "test").all()
    assert set(months[split == "validation"]) == {"2025-02"}
    with pytest.raises(ConfigError, match="at least 3 months"):
        latest_vintage_fractions(dates[:25])
