"""`risk-app outcomes`: take in outcome files, look at the labeled book, backtest the PDs.

    risk-app outcomes add outcomes_2025-04.csv --dataset german_credit   # once per file content
    risk-app outcomes book --dataset german_credit                       # counts per vintage
    risk-app outcomes backtest --dataset german_credit [--vintage 2025-01] [--card]

`add` validates the file against the outcome contract and the book (unknown ids, declined
applications, contradictions, dates before the application), quarantines what fails, records
the rest exactly once and prints rows in = accepted + quarantined. `backtest` recomputes and
records the backtest of every vintage with outcomes (or one), prints the traffic lights in plain
words and, with `--card`, the champion's model card with its latest backtest. Self-contained
(no import of `risk_app.cli.main`), mounted by the main CLI with one line. See docs/monitoring.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from data_contracts.spec import default_dataset, deployment_spec
from risk_app.cli.options import DatasetOption
from risk_app.errors import RiskAppError

outcomes_app = typer.Typer(
    no_args_is_help=True, help="Outcomes: take in outcome files, the labeled book, backtests."
)
_console = Console()


def _fail(exc: RiskAppError) -> typer.Exit:
    _console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _print_frame(title: str, frame: object, max_rows: int = 40) -> None:
    assert isinstance(frame, pd.DataFrame)
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*("" if pd.isna(v) else str(v) for v in row))
    _console.print(table)


@outcomes_app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="Outcome file (CSV or Parquet): id, label, observation_date.")],
    dataset: DatasetOption = None,
) -> None:
    """Take in one outcome file, exactly once; quarantined rows are listed with their reason."""
    # CLI start-up: the outcome store imports duckdb; only the `outcomes` commands need it.
    from risk_app.outcomes.ingest import add_outcome_file

    try:
        report = add_outcome_file(file, dataset or default_dataset(), origin="cli")
    except RiskAppError as exc:
        raise _fail(exc) from None
    _console.print(report.message, highlight=False)
    if len(report.quarantine):
        _print_frame("quarantined", report.quarantine[["row_number", "application_id", "reason"]])


@outcomes_app.command("book")
def book(dataset: DatasetOption = None) -> None:
    """The labeled book per vintage: scored = with outcome + pending + declined."""
    # CLI start-up: the outcome store imports duckdb; only the `outcomes` commands need it.
    from risk_app.outcomes.book import book_counts, labeled_book, vintage_counts

    try:
        spec = deployment_spec(dataset)
        frame = labeled_book(spec)
    except RiskAppError as exc:
        raise _fail(exc) from None
    counts = book_counts(frame)
    _print_frame(f"labeled book of {spec.name}", vintage_counts(frame), max_rows=120)
    _console.print(
        f"scored {counts['scored']} = with outcome {counts['with_outcome']} + pending "
        f"{counts['pending']} + declined {counts['declined']} (declined: no loan, no outcome; "
        "excluded from training, reject inference: none)",
        highlight=False,
    )


@outcomes_app.command("backtest")
def backtest(
    dataset: DatasetOption = None,
    vintage: Annotated[str | None, typer.Option(help="One vintage (YYYY-MM); default: all.")] = None,
    card: Annotated[bool, typer.Option(help="Print the champion's model card with its backtest.")] = False,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model name (default: the data set's name).")
    ] = None,
) -> None:
    """Backtest each vintage with outcomes: predicted PD vs realized default rate per grade."""
    # CLI start-up: backtests import duckdb and mlflow; only this command needs them.
    from risk_app.outcomes.backtest import record_backtest
    from risk_app.outcomes.book import labeled_book, vintage_outcome_counts
    from risk_app.outcomes.report import champion_card_with_backtest

    try:
        spec = deployment_spec(dataset)
        frame = labeled_book(spec)
        chosen = [vintage] if vintage else sorted(vintage_outcome_counts(spec))
        if not chosen:
            _console.print(f"no vintage of {spec.name} has outcomes yet; nothing to backtest")
            return
        for month in chosen:
            for result in record_backtest(frame, spec.name, month):
                _console.print(f"[bold]{result.light.upper()}[/bold] {result.summary}", highlight=False)
                for verdict in result.grades["verdict"]:
                    _console.print(f"  - {verdict}", highlight=False)
        if card:
            text = champion_card_with_backtest(spec.name, model_name)
            _console.print(text or "no champion registered yet", highlight=False, markup=False)
    except RiskAppError as exc:
        raise _fail(exc) from None


__all__ = ["outcomes_app"]
