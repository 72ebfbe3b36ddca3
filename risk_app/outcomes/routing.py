"""Which data set an outcome file belongs to: one landing folder per data set.

Outcome files land in `<home>/landing_outcomes/<data set>/` (e.g.
`landing_outcomes/uci_credit_card/outcomes_2026-12.csv`); the folder names the data set, so
files of several data sets are taken in side by side by one sensor, whatever `$RISK_APP_DATASET`
says. A file directly in `landing_outcomes/` belongs to the default data set
(`$RISK_APP_DATASET`, else german_credit), as before.

Why a folder rather than matching a file's columns to the registered models' specs: outcome
files have three columns (id, label, observation date) and data sets often share their names
(every spec drafted by `risk-app datasets init` from a file with `id` and `default` columns), so
columns cannot tell two data sets apart; a folder is explicit, visible to the uploader, and a
wrong drop fails in one sentence naming the data set the folder stands for.

A folder's name resolves to a spec as `dataset_spec_named` says: a built-in data set, or the
data set of `$RISK_APP_DATASET` (a declared spec file) when the name is that spec's name.
Backtest vintages are partitioned per data set: `<data set>/<YYYY-MM>` (`vintage_key`).
"""

from __future__ import annotations

import stat
from pathlib import Path

from data_contracts.spec import DatasetSpec, default_dataset, list_datasets, load_spec
from risk_app import paths
from risk_app.errors import RiskAppError


def outcomes_landing_dir() -> Path:
    """The folder the outcome sensor watches: `<home>/landing_outcomes/`."""
    folder = paths.home() / "landing_outcomes"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dataset_spec_named(name: str) -> DatasetSpec:
    """The spec of data set `name`: built-in, or `$RISK_APP_DATASET`'s spec when it has that name."""
    if name in list_datasets():
        return load_spec(name)
    default = load_spec(default_dataset())
    if default.name == name:
        return default
    raise RiskAppError(
        f"no data set named {name!r}: built in are {', '.join(list_datasets())}; a declared data set "
        f"is known by its spec file in $RISK_APP_DATASET (now {default.name})"
    )


def known_dataset_names() -> list[str]:
    """Built-in data sets and the one of `$RISK_APP_DATASET`, sorted."""
    return sorted({*list_datasets(), load_spec(default_dataset()).name})


def dataset_folders() -> dict[str, Path]:
    """`landing_outcomes/<data set>/` of every known data set (made when missing), by name, plus
    any other real subfolder (a symlinked folder is never followed); unknown names are reported
    by the sensor, not taken."""
    root = outcomes_landing_dir()
    for name in known_dataset_names():
        (root / name).mkdir(exist_ok=True)
    folders = {}
    for path in sorted(root.iterdir()):
        if not path.name.startswith(".") and stat.S_ISDIR(path.lstat().st_mode):
            folders[path.name] = path
    return folders


def dataset_of_path(path: Path) -> str | None:
    """The data set whose landing folder holds `path` (None: not inside a data set's folder)."""
    root = outcomes_landing_dir().resolve()
    parent = path.resolve().parent
    return parent.name if parent.parent == root else None


def vintage_key(dataset: str, vintage: str) -> str:
    """The backtest partition of one vintage of one data set: `<data set>/<YYYY-MM>`."""
    return f"{dataset}/{vintage}"


def split_vintage_key(key: str) -> tuple[str | None, str]:
    """(data set, vintage) of a backtest partition; a bare `YYYY-MM` (older partitions) has none."""
    dataset, sep, vintage = key.rpartition("/")
    return (dataset, vintage) if sep else (None, key)


__all__ = [
    "dataset_folders",
    "dataset_of_path",
    "dataset_spec_named",
    "known_dataset_names",
    "outcomes_landing_dir",
    "split_vintage_key",
    "vintage_key",
]
