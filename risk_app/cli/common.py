"""What every `risk-app` command shares: one console, one-line errors, key=value options, tables.

Kept apart from `risk_app.cli.main` so the sub-apps (`models`, `datasets`, `bases`, `outcomes`) and
`pipelines.cli` can use them without importing the main CLI module.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from risk_app.config_errors import validated
from risk_app.errors import ConfigError, RiskAppError

console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def clear_errors(fn: F) -> F:
    """Print a RiskAppError as one red line and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RiskAppError as exc:
            console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def parse_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """`--param key=value` pairs (values parsed as JSON when they can be) over `--params-json`."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            params.update(json.loads(params_json))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params-json is not valid JSON: {exc}") from exc
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw.split(",") if "," in raw else raw
        # A dotted key reaches a nested config (`speed.token_budget=16384`, `reward.epochs=2`),
        # the way its keys are named in error messages.
        *parents, leaf = [part.strip() for part in key.split(".")]
        target = params
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {pair!r}: {part!r} is not a nested setting")
        target[leaf] = value
    return params


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    out = Table(title=title, title_justify="left")
    # The first column names the row (a model such as hybrid:lora+logistic): the other columns give
    # way before it does, up to a width that still leaves them room.
    name_width = min(max((len(str(r.get(columns[0], ""))) for r in rows), default=0), 32) if columns else 0
    for i, column in enumerate(columns):
        out.add_column(column, **({"no_wrap": True, "min_width": name_width} if i == 0 else {}))
    for row in rows:
        out.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in (row.get(c) for c in columns)])
    console.print(out)


def parse_config(config_cls: Any, values: dict[str, Any]) -> Any:
    """Validate CLI values with a library config class; one clear line on a mistake."""
    return validated(config_cls, values, config_cls.__name__)
