"""Dataset specs: one reviewed YAML file declares a data set, and everything else reads it.

A spec names the data set (name, version, source, licence), lists its columns in order (type,
label and unit for the model's text, nullability, categories or a range) and gives the roles:
the id column, the target and which of its values means default, the protected attributes and
how to group them for fairness, columns the model never sees, an optional date column. From it
the library derives the pandera schema (`data_contracts.spec_schema.build_schema`), the text template, the
baselines' feature handling, fairness groups, reason codes and drift features, so a new lender
needs one spec file and no code change.

    from data_contracts.spec import load_spec
    from data_contracts.spec_schema import build_schema
    spec = load_spec("german_credit")          # a built-in name, or a path to a spec.yaml
    spec.feature_columns, spec.label("credit_amount"), build_schema(spec, require_target=True)

Built-in specs live in `risk_app/datasets/<name>/spec.yaml` beside their data file. A spec with
a mistake is refused with one `SpecError` naming the file and, per mistake, the field. The
spec model itself lives in `data_contracts.spec_model`; this module loads, checks and dumps it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from data_contracts.spec_model import (
    BUILTIN_DIR,
    DEFAULT_DATASET,
    ColumnSpec,
    ColumnType,
    CreditCosts,
    DatasetSpec,
    ProtectedSpec,
    SpecError,
    SynonymGroup,
    TargetSpec,
    Unit,
)
from data_contracts.spec_yaml import SpecYamlError, load_spec_yaml

SPEC_FILE_NAME = "spec.yaml"


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<spec>"


def _pydantic_problems(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error: 'field.path: what is wrong'."""
    problems = []
    for error in exc.errors():
        loc, kind, message = error["loc"], error["type"], error["msg"]
        if kind == "extra_forbidden":
            problems.append(f"{_format_loc(loc)}: unknown key (not part of the spec format)")
        elif kind == "literal_error" and loc and loc[-1] == "type":
            allowed = ", ".join(ColumnType.__args__)  # type: ignore[attr-defined]
            problems.append(f"{_format_loc(loc)}: unknown type {error['input']!r}; allowed: {allowed}")
        elif kind == "missing":
            problems.append(f"{_format_loc(loc)}: required field is missing")
        elif kind == "value_error" and not loc:
            # The spec's own cross-field checks: already 'field: problem' lines.
            text = str(error["ctx"]["error"]) if "ctx" in error else message
            problems.extend(line for line in text.splitlines() if line.strip())
        else:
            problems.append(f"{_format_loc(loc)}: {message.removeprefix('Value error, ')}")
    return problems


def parse_spec(text: str, source: str | Path = "<spec>") -> DatasetSpec:
    """A spec from YAML text; `source` names the file in every error message."""
    try:
        raw = load_spec_yaml(text)
    except SpecYamlError as exc:
        raise SpecError(source, [f"<spec>: {exc}"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise SpecError(source, [f"<spec>: not valid YAML{line}: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(raw, dict):
        raise SpecError(source, ["<spec>: expected a mapping of spec fields (name, version, columns, ...)"])
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(source, _pydantic_problems(exc)) from None
    spec._spec_path = Path(source) if str(source) != "<spec>" else None
    return spec


def builtin_spec_path(name: str) -> Path:
    """Path of the built-in spec `name`; unknown names list the built-in ones."""
    path = BUILTIN_DIR / name / SPEC_FILE_NAME
    if not path.is_file():
        raise SpecError(
            name, [f"<name>: no built-in data set {name!r}; built in: {', '.join(list_datasets())}"]
        )
    return path


def list_datasets() -> list[str]:
    """Names of the built-in data sets (folders of risk_app/datasets with a spec.yaml), sorted."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob(f"*/{SPEC_FILE_NAME}"))


@cache
def _load_file(path: Path, mtime_ns: int) -> DatasetSpec:
    # Keyed on the modification time, so an edited spec file is re-read in a long-lived process.
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(path, [f"<file>: cannot read: {exc.strerror or exc}"]) from None
    return parse_spec(text, path)


DATASET_ENV = "RISK_APP_DATASET"


def default_dataset() -> str:
    """The data set used where none is named (a command without --dataset, an empty launchpad
    config, a file dropped directly into a landing folder): `$RISK_APP_DATASET` (a built-in name
    or a spec file), else the built-in default."""
    return os.environ.get(DATASET_ENV) or DEFAULT_DATASET


def deployment_spec(name_or_path: str | Path | DatasetSpec | None = None) -> DatasetSpec:
    """The spec of the data set named, else of the deployment's default (`default_dataset`).

    For everything a user runs without naming a data set (scoring from the CLI or the library);
    `load_spec(None)` stays the built-in default, which code that must not depend on the
    deployment (the tiny tokenizer's corpus) reads."""
    named = name_or_path is not None and not (isinstance(name_or_path, str) and not name_or_path)
    return load_spec(name_or_path if named else default_dataset())


def load_spec(name_or_path: str | Path | DatasetSpec | None = None) -> DatasetSpec:
    """The spec for a built-in name ("german_credit"), a spec file path, or the default (None).

    A `DatasetSpec` passes through unchanged, so callers can accept either. Loaded specs are
    cached per file; treat them as read-only.
    """
    if isinstance(name_or_path, DatasetSpec):
        return name_or_path
    ref = DEFAULT_DATASET if name_or_path is None else name_or_path
    text = str(ref)
    looks_like_path = isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text
    path = Path(text).expanduser() if looks_like_path else builtin_spec_path(text)
    if path.is_dir():
        path = path / SPEC_FILE_NAME
    if not path.is_file():
        raise SpecError(path, ["<file>: spec file not found"])
    resolved = path.resolve()
    return _load_file(resolved, resolved.stat().st_mtime_ns)


__all__ = [
    "DATASET_ENV",
    "DEFAULT_DATASET",
    "SPEC_FILE_NAME",
    "ColumnSpec",
    "ColumnType",
    "CreditCosts",
    "DatasetSpec",
    "ProtectedSpec",
    "SpecError",
    "SynonymGroup",
    "deployment_spec",
    "TargetSpec",
    "Unit",
    "builtin_spec_path",
    "list_datasets",
    "default_dataset",
    "load_spec",
    "parse_spec",
]
