"""`risk-app scoring`: the batches held for drift, and releasing one with a reason.

    risk-app scoring held                                   # held batches, why, since when
    risk-app scoring release 3f2a9c1e --reason "new branch opened; checked with credit policy"

A scoring batch whose drift check failed is held (`risk_app.storage.holds`): recorded, visible
here and in `risk.held_batches`, but out of the labeled book until released with a reason.
Self-contained (no import of `risk_app.cli.main`), mounted by the main CLI with one line.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from risk_app.errors import RiskAppError

scoring_app = typer.Typer(no_args_is_help=True, help="Scoring batches held for drift: list, release.")
_console = Console()


@scoring_app.command("held")
def held(
    all_: Annotated[bool, typer.Option("--all", help="Released batches too, with who and why.")] = False,
) -> None:
    """Batches held for drift (not in the labeled book until released)."""
    # CLI start-up: the warehouse imports duckdb; only the `scoring` commands need it.
    from risk_app.storage.holds import held_batches

    frame = held_batches(include_released=all_)
    if frame.empty:
        _console.print("no scoring batch is held" if not all_ else "no scoring batch was ever held")
        return
    table = Table(title="Scoring batches held for drift")
    for column in ("batch", "file", "data set", "held at", "released"):
        table.add_column(column, overflow="fold")
    for row in frame.itertuples():
        released = (
            "no"
            if row.released_at is None or str(row.released_at) == "NaT"
            else (f"{row.released_at:%Y-%m-%d %H:%M} by {row.released_by}: {row.release_reason}")
        )
        table.add_row(
            row.batch_id[:12], row.source_file, row.dataset, f"{row.held_at:%Y-%m-%d %H:%M}", released
        )
    _console.print(table)
    for row in frame.itertuples():
        _console.print(f"{row.batch_id[:12]}: {row.reason}", highlight=False, soft_wrap=True)


@scoring_app.command("release")
def release(
    batch: Annotated[str, typer.Argument(help="The held batch's id (or its first 8+ characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it may count despite the drift; kept.")],
) -> None:
    """Release a held batch with a reason: it counts in the labeled book from its next build."""
    # CLI start-up: the warehouse imports duckdb; only the `scoring` commands need it.
    from risk_app.storage.holds import release_batch

    try:
        sentence = release_batch(batch, reason=reason, by=f"cli:{getpass.getuser()}")
    except RiskAppError as exc:
        _console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    _console.print(sentence, highlight=False, soft_wrap=True)
