"""`risk-app outcomes add | book | backtest` as an analyst would run them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from risk_app.cli.main import app
from tests.outcomes.conftest import outcome_file

runner = CliRunner()


def _text(output: str) -> str:
    """The output with the terminal's line wrapping undone."""
    return " ".join(output.split())


def test_add_book_and_backtest_from_the_command_line(scored_book, tmp_path: Path) -> None:
    truth = scored_book(months=("2025-01", "2025-02"), per_month=10)
    rows = truth.loc[(truth["month"] == "2025-01") & ~truth["declined"]]
    path = outcome_file(tmp_path / "outcomes.csv", rows)

    added = runner.invoke(app, ["outcomes", "add", path, "--dataset", "german_credit"])
    assert added.exit_code == 0, added.output
    assert "8 outcome row(s): 8 accepted, 0 quarantined" in _text(added.output)
    again = runner.invoke(app, ["outcomes", "add", path])
    assert again.exit_code == 0 and "nothing added" in _text(again.output)

    book = runner.invoke(app, ["outcomes", "book"])
    assert book.exit_code == 0, book.output
    assert "scored 20 = with outcome 8 + pending 8 + declined 4" in _text(book.output)

    backtest = runner.invoke(app, ["outcomes", "backtest", "--card"])
    assert backtest.exit_code == 0, backtest.output
    assert "Vintage 2025-01, model german_credit/1: 8 loan(s) with outcome" in _text(backtest.output)
    assert "no champion registered yet" in _text(backtest.output)


def test_a_bad_outcome_file_is_one_red_line(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text("application_id,observation_date\na,2025-01-01\n")
    result = runner.invoke(app, ["outcomes", "add", str(path)])
    assert result.exit_code == 2 and "missing column(s) creditability" in _text(result.output)
    assert "Traceback" not in result.output
