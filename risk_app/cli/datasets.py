"""`risk-app datasets`: the data sets the app knows, and drafting a spec for your own file.

    risk-app datasets list                                   # built-in data sets
    risk-app datasets show german_credit                     # a spec: identity, columns, roles
    risk-app datasets show my_loans.yaml --yaml              # ... or the reviewed file itself
    risk-app datasets init --input loans.csv --target default --positive 1 --output my_loans.yaml

`init` infers a draft (types, categories, ranges with a margin, labels from column names),
marks every guess in the columns' `inferred` lists, prints what to review, and writes the spec
atomically; it refuses to overwrite a file without `--force`. See docs/datasets.md. This module
is self-contained (no import of `risk_app.cli.main`) so the main CLI mounts it with one line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from data_contracts.spec import DatasetSpec, list_datasets, load_spec
from data_contracts.spec_draft import draft_spec
from risk_app.atomic import atomic_write_text
from risk_app.errors import DataFileError, RiskAppError

datasets_app = typer.Typer(
    no_args_is_help=True, help="Data sets: list the built-in ones, show a spec, draft one."
)
_console = Console()


def _fail(exc: RiskAppError) -> typer.Exit:
    _console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@datasets_app.command("list")
def list_command() -> None:
    """Each built-in data set: name, version, columns, target, data file and licence."""
    table = Table(title="Built-in data sets (use the name with --dataset)")
    for column in ("name", "version", "features", "target (default =)", "data", "licence"):
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for name in list_datasets():
        spec = load_spec(name)
        data = spec.data_path.name if spec.data_path is not None else "-"
        target = f"{spec.target.column} = {spec.target.positive}"
        table.add_row(spec.name, spec.version, str(len(spec.feature_columns)), target, data, spec.licence)
    _console.print(table)
    _console.print(
        "Your own data: `risk-app datasets init --input FILE --target COL --positive VALUE --output SPEC`."
    )


def _roles(spec_columns: list[str], spec: DatasetSpec) -> dict[str, str]:
    roles = {spec.id_column: "id", spec.target.column: f"target (default = {spec.target.positive})"}
    for name in spec.exclude:
        roles[name] = "excluded"
    if spec.date_column:
        roles[spec.date_column] = "date"
    for item in spec.protected:
        how = (
            f"bands {item.edges}"
            if item.edges
            else (f"groups {sorted(item.groups)}" if item.groups else "values")
        )
        roles[item.column] = f"protected: {item.group_name} ({how})"
    return {c: roles.get(c, "feature") for c in spec_columns}


@datasets_app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="A built-in name (see `datasets list`) or a spec file.")],
    as_yaml: Annotated[
        bool, typer.Option("--yaml", help="Print the spec as YAML instead of a summary.")
    ] = False,
) -> None:
    """A spec: identity, every column with its type, label and role, and what still needs review."""
    try:
        spec = load_spec(dataset)
    except RiskAppError as exc:
        raise _fail(exc) from None
    if as_yaml:
        _console.print(spec.to_yaml(), highlight=False, markup=False, end="")
        return
    _console.print(
        f"[bold]{spec.name}[/bold] v{spec.version}  (spec {spec.spec_path}, sha256 {spec.hash[:12]})"
    )
    _console.print(spec.description, highlight=False)
    _console.print(f"source: {spec.source}\nlicence: {spec.licence}", highlight=False)
    if spec.data_path is not None:
        _console.print(f"data: {spec.data_path}", highlight=False)
    table = Table()
    for column in ("column", "type", "label", "values", "role", "inferred"):
        table.add_column(column, overflow="fold", no_wrap=column == "column")
    roles = _roles(list(spec.columns), spec)
    for name, col in spec.columns.items():
        if col.categories:
            values = f"{len(col.categories)} categories"
        elif col.min is not None or col.max is not None:
            values = f"{col.min:g} .. {col.max:g}" if col.min is not None and col.max is not None else "open"
        else:
            values = f"<= {col.max_chars} chars" if col.max_chars else ""
            if col.text is not None:  # free text: its budget, place and cleaning in a few words
                rules = col.text
                values += f", {rules.max_tokens} tokens" if rules.max_tokens else ""
                values += ", read last" if rules.position == "end" else ""
                values += f", {len(rules.clean.remove)} patterns" if rules.clean.remove else ""
                values += ", HTML stripped" if rules.clean.strip_html else ""
        unit = f" ({col.unit.plural})" if col.unit else ""
        table.add_row(name, col.type, col.label + unit, values, roles[name], ", ".join(col.inferred))
    _console.print(table)
    guessed = [name for name, col in spec.columns.items() if col.inferred]
    if guessed:
        _console.print(
            f"[yellow]still marked inferred (review, then delete the `inferred` lists):[/yellow] {guessed}"
        )


def _spec_name(output: Path, name: str | None) -> str:
    base = name or output.name.removesuffix(".yaml").removesuffix(".yml").removesuffix(".spec")
    cleaned = re.sub(r"[^a-z0-9_]+", "_", base.lower()).strip("_")
    return cleaned if cleaned and cleaned[0].isalpha() else f"dataset_{cleaned or 'draft'}"


@datasets_app.command("init")
def init(
    input: Annotated[Path, typer.Option("--input", help="CSV or Parquet file of applications.")],
    target: Annotated[str, typer.Option("--target", help="The label column.")],
    positive: Annotated[str, typer.Option("--positive", help="The value of --target that means default.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write the draft spec (.yaml).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Data set name (default: from --output).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
) -> None:
    """Infer a draft spec from a file; print what to review; write it atomically."""

    try:
        if output.suffix not in (".yaml", ".yml"):
            raise DataFileError(output, "the spec file must end in .yaml or .yml")
        if output.exists() and not force:
            raise DataFileError(output, "already exists; pass --force to overwrite it")
        frame = _read_as_text(input)
        data_ref = os.path.relpath(input.resolve(), output.resolve().parent)
        draft = draft_spec(
            frame,
            name=_spec_name(output, name),
            target=target,
            positive=positive,
            source_file=input,
            data_ref=data_ref,
        )
        header = "".join(f"#   - {note}\n" for note in draft.review_notes)
        text = (
            f"# Draft dataset spec written by `risk-app datasets init` from {input}.\n"
            "# Review before use (docs/datasets.md), then delete each column's `inferred` list:\n"
            f"{header}"
        ) + draft.spec.to_yaml()
        atomic_write_text(output, text)
        load_spec(output)  # the written file must load as it will later
    except RiskAppError as exc:
        raise _fail(exc) from None
    spec = draft.spec
    _console.print(
        f"wrote {output}: data set {spec.name!r}, {len(spec.feature_columns)} features, target "
        f"{spec.target.column} = {spec.target.positive!r} means default",
        highlight=False,
    )
    _console.print("[bold]Review before training:[/bold]")
    for note in draft.review_notes:
        _console.print(f"  - {note}", highlight=False)
    _console.print(f"Then check it: risk-app validate --input {input} --dataset {output}", highlight=False)


def _read_as_text(path: Path) -> pd.DataFrame:
    """Every column as text (missing stays missing), so inference sees the file as written."""
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            return frame.astype(object).where(frame.notna(), None).map(lambda v: v if v is None else str(v))
        return pd.read_csv(path, dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(path, f"cannot read: {' '.join(str(exc).split())}") from None


__all__ = ["datasets_app"]
