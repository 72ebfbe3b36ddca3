"""`risk-app models`: list registered versions, promote one or roll back, with a reason.

The reason goes to the same audit log as Dagster's `promote_version_job` and the automatic
promotion rule, so every move of the champion is accountable.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from data_contracts.spec import DEFAULT_DATASET
from risk_app.cli.common import clear_errors, console, print_table

models_app = typer.Typer(no_args_is_help=True, help="Registered model versions: list, promote, roll back.")


def _compact(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns that fit an 80-column terminal: short values, the reason left for its own line."""
    out = []
    for row in rows:
        auc = row.get("roc_auc")
        out.append(
            {
                "version": row.get("version"),
                "aliases": ", ".join(row.get("aliases") or []) or "-",
                "method": row.get("method") or "-",
                "auc": f"{auc:.3f}" if isinstance(auc, float) else "-",
                "created": str(row.get("created") or "")[:16].replace("T", " "),
                "decision": row.get("promotion_decision") or "undecided",
            }
        )
    return out


def reconcile_first(name: str) -> None:
    """Finish what a killed process left in the registry before a command reads it: an MLflow run
    left RUNNING by a dead process ends KILLED, a version killed before its promotion decision is
    decided, an interrupted champion move is completed (`registry.reconcile`); said when it did."""
    # CLI start-up: the registry imports mlflow; only commands that read it need it.
    from risk_app.registry.reconcile import reconcile_registry

    said = reconcile_registry(name).sentence(name)
    if said:
        console.print(f"[yellow]{said}[/yellow]")


@models_app.command("list")
@clear_errors
def models_list(
    name: Annotated[str, typer.Option(help="Registered model name (one per data set).")] = DEFAULT_DATASET,
    wide: Annotated[bool, typer.Option("--wide", help="Every field in one wide table.")] = False,
) -> None:
    """Registered versions with aliases, method, test AUC and promotion decision."""
    # CLI start-up: the registry imports mlflow; only the `models` commands need it.
    from risk_app.registry.mlflow_registry import list_versions

    reconcile_first(name)
    rows = list_versions(name)
    if not rows:
        console.print(f"no versions of {name!r} registered yet; run `risk-app train` first")
        return
    if wide:
        print_table(f"{name} versions", rows)
        return
    print_table(f"{name} versions", _compact(rows))
    for row in rows:  # each reason on its own line, wrapped by the terminal, not squeezed into a column
        if row.get("promotion_reason"):
            console.print(f"  v{row['version']}: {row['promotion_reason']}", soft_wrap=False, overflow="fold")


@models_app.command("promote")
@clear_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
    name: Annotated[str, typer.Option(help="Registered model name (one per data set).")] = DEFAULT_DATASET,
) -> None:
    """Make a version champion by hand; the reason is recorded."""
    # CLI start-up: the registry imports mlflow; only the `models` commands need it.
    from risk_app.registry.mlflow_registry import set_champion

    reconcile_first(name)
    set_champion(name, version, reason=reason)
    console.print(f"version {version} is now champion of {name}")


@models_app.command("rollback")
@clear_errors
def models_rollback(
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
    name: Annotated[str, typer.Option(help="Registered model name (one per data set).")] = DEFAULT_DATASET,
) -> None:
    """Give the champion alias back to the previous champion; recorded."""
    # CLI start-up: the registry imports mlflow; only the `models` commands need it.
    from risk_app.registry.mlflow_registry import rollback_champion

    reconcile_first(name)
    version = rollback_champion(name, reason=reason)
    console.print(f"rolled back: version {version} is champion of {name} again")
