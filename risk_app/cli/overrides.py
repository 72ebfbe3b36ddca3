"""`risk-app overrides`: take in analyst override files, exactly once.

    risk-app overrides add overrides_2025-04.csv --dataset german_credit
    risk-app overrides add overrides.csv --reason-codes verified_income,adverse_information,other

`add` validates the file against the override contract (`data_contracts.override`) and the
scoring ledger (ids never scored or scored in another batch, another data set's batch, a model
decision the ledger does not show, contradicting or repeated overrides), quarantines what fails
with file, row and reason, records the rest once per file content and prints rows in =
accepted + quarantined. The reason codes in force are the deployment's list (`--reason-codes`,
else `$RISK_APP_OVERRIDE_REASON_CODES`, else the contract's defaults). Self-contained (no
import of `risk_app.cli.main`), mounted by the main CLI with one line. See docs/monitoring.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from data_contracts.spec import default_dataset
from risk_app.cli.options import DatasetOption
from risk_app.errors import ConfigError, RiskAppError

overrides_app = typer.Typer(no_args_is_help=True, help="Analyst overrides: the override ledger.")
_console = Console()
REASON_CODES_ENV = "RISK_APP_OVERRIDE_REASON_CODES"


def reason_codes_in_force(option: str | None) -> tuple[str, ...]:
    """The reason codes of this deployment: the option, else the environment, else the defaults."""
    # CLI start-up: the override contract imports pandera; only the `overrides` commands need it.
    from data_contracts.override import DEFAULT_REASON_CODES

    text = option if option is not None else os.environ.get(REASON_CODES_ENV)
    if text is None:
        return DEFAULT_REASON_CODES
    codes = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    if not codes:
        raise ConfigError(f"no reason codes in {text!r}: give a comma-separated list")
    return codes


@overrides_app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="Override file (CSV or Parquet), one row per override.")],
    dataset: DatasetOption = None,
    reason_codes: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated reason codes in force (default: ${REASON_CODES_ENV})."),
    ] = None,
) -> None:
    """Take in one override file, exactly once; quarantined rows are listed with their reason."""
    # CLI start-up: the override ledger imports duckdb and pandera; only `overrides add` needs them.
    from risk_app.overrides.ingest import add_override_file

    try:
        report = add_override_file(
            file, dataset or default_dataset(), reason_codes=reason_codes_in_force(reason_codes), origin="cli"
        )
    except RiskAppError as exc:
        _console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    _console.print(report.message, highlight=False)
    if len(report.quarantine):
        table = Table(title="quarantined")
        for column in ("row_number", "application_id", "reason"):
            table.add_column(column)
        for row in (
            report.quarantine[["row_number", "application_id", "reason"]].head(40).itertuples(index=False)
        ):
            table.add_row(*("" if pd.isna(v) else str(v) for v in row))
        _console.print(table)


__all__ = ["overrides_app", "reason_codes_in_force"]
