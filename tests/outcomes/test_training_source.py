"""Training on the labeled book, from the library and from `risk-app train --source book`:
`risk_app.workflow.TrainingSource` is the one description of where a run's applications come
from (the Dagster launchpad's `raw_applications` config is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from risk_app import workflow
from risk_app.cli.main import app
from risk_app.errors import RiskAppError
from risk_app.outcomes.ingest import add_outcome_file
from tests.outcomes.conftest import SPEC, outcome_file

MONTHS = ("2025-01", "2025-02", "2025-03")
runner = CliRunner()


def _book_with_outcomes(scored_book: Any, folder: Path) -> pd.DataFrame:
    """Three months scored, the first two with outcomes: the ids the book can train on."""
    truth = scored_book(months=MONTHS, per_month=20)
    for month in MONTHS[:2]:
        rows = truth.loc[(truth["month"] == month) & ~truth["declined"]]
        add_outcome_file(outcome_file(folder / f"outcomes_{month}.csv", rows), SPEC)
    return truth.loc[truth["month"].isin(MONTHS[:2]) & ~truth["declined"]]


def test_the_library_reads_the_books_rows_with_an_outcome(scored_book: Any, tmp_path: Path) -> None:
    labelled = _book_with_outcomes(scored_book, tmp_path)
    source = workflow.TrainingSource(source="book", window_months=1)
    read, validation = workflow.validate_for_training(source, SPEC)
    assert read.source == f"labeled book of {SPEC.name} (vintages 2025-02..2025-02)"
    assert read.book is not None and read.book.outside_window == 16 and read.book.declined_excluded == 12
    last = labelled.loc[labelled["month"] == "2025-02"]
    assert validation.n_quarantined == 0
    assert sorted(validation.valid["application_id"]) == sorted(last["application_id"])
    # The labels are the outcomes recorded, not anything the scoring file carried.
    by_id = validation.valid.set_index("application_id")["default"]
    assert (by_id.loc[last["application_id"]].to_numpy() == last["default"].to_numpy()).all()


def test_a_file_and_the_book_at_once_are_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="source=book the labeled book: give one"):
        workflow.TrainingSource(source="book", path="loans.csv")
    result = runner.invoke(app, ["train", "--source", "book", "--data", "loans.csv"], terminal_width=300)
    assert result.exit_code == 2
    assert "source=book the labeled book: give one" in " ".join(result.output.split())


def test_risk_app_train_from_the_book(
    scored_book: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labelled = _book_with_outcomes(scored_book, tmp_path)
    handed: dict[str, Any] = {}

    def capture(valid: pd.DataFrame, examples: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        handed.update(valid=valid, examples=examples, **kwargs)
        raise RiskAppError("stopped before fine-tuning")

    monkeypatch.setattr(workflow, "train_run", capture)
    result = runner.invoke(app, ["train", "--source", "book", "--dataset", SPEC.name], terminal_width=300)
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "stopped before fine-tuning" in output, output
    assert f"labeled book of {SPEC.name} (vintages 2025-01..2025-02): 32 valid, 0 quarantined of 32" in output
    assert "declined application(s) excluded" in output
    assert handed["source"].startswith(f"labeled book of {SPEC.name}")
    assert sorted(handed["examples"]["application_id"]) == sorted(labelled["application_id"])


def test_risk_app_train_from_an_empty_book_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["train", "--source", "book", "--dataset", SPEC.name], terminal_width=300)
    assert result.exit_code == 2
    assert "has no application with a known outcome yet" in " ".join(result.output.split())
