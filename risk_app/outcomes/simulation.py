"""SIMULATION, for tests and the demo only: a lender's year of scoring and outcomes, made up.

Nothing here is real lending data. A built-in data set (applications with their true labels)
is turned into a simulated lender:
- a copy of the spec named `<data set>_simulation`, whose description says SIMULATION, with a
  synthesised `application_date` column (monthly vintages) when the spec has no date column;
- a labeled history file (the loans the first model is trained on, dated before the year);
- one application file per month, without labels (`applications_<YYYY-MM>.csv`);
- the true labels of each month's *approved* applications, released `lag_months` later as an
  outcome file (`outcomes_<YYYY-MM>.csv`, observed at the end of the release month), with one
  made-up unknown id per file so quarantine is exercised.

The loop itself runs in Dagster, driven by `tests/pipelines/test_outcome_loop.py`: each
month's file lands in `landing/` and the landing sensor has the champion score it (so the
book fills exactly as a lender's would), outcome files land in `landing_outcomes/`, and the
outcome sensor, the labeled book, the backtests and the weekly retraining do the rest.

    sim = build_simulation(tmp_dir, base="german_credit", months=12, per_month=40)
    path = release_outcomes(sim, "2025-01", outcomes_landing_dir())   # once 2025-01 is scored
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.outcome import OBSERVATION_DATE
from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_model import ColumnSpec
from risk_app.outcomes.book import labeled_book

SIMULATION_LABEL = "SIMULATION (tests and demo only; not real lending data)"
DATE_COLUMN = "application_date"
UNKNOWN_ID_PREFIX = "SIMULATED-UNKNOWN-"


@dataclass
class Simulation:
    """Where a simulation's files are and which month holds which applications."""

    folder: Path
    spec: DatasetSpec
    spec_path: Path
    history_path: Path
    months: list[str]
    truth: pd.DataFrame  # id, month, label (the data set's own), application date
    lag_months: int

    def applications_path(self, month: str) -> Path:
        return self.folder / f"applications_{month}.csv"


def _month_starts(start: str, months: int) -> list[pd.Timestamp]:
    return list(pd.date_range(pd.Timestamp(f"{start}-01"), periods=months, freq="MS"))


def _random_days(rng: np.random.Generator, month: pd.Timestamp, n: int) -> pd.Series:
    days = rng.integers(0, month.days_in_month, size=n)
    return pd.Series(month + pd.to_timedelta(np.sort(days), unit="D"))


def _shares(total: int, parts: int) -> list[int]:
    """`total` rows spread over `parts` months as evenly as possible."""
    return [len(chunk) for chunk in np.array_split(np.arange(total), parts)]


def simulation_spec(
    base: DatasetSpec, data_path: Path, folder: Path, hidden_columns: Sequence[str] = ()
) -> Path:
    """The simulated lender's spec file: the base spec, renamed, labeled SIMULATION, with dates,
    and `hidden_columns` added to what the spec excludes from the model."""
    unknown = [c for c in hidden_columns if c not in base.feature_columns]
    if unknown:
        raise ValueError(f"{base.name}: hidden_columns {unknown} are not feature columns of the spec")
    columns = dict(base.columns)
    date_column = base.date_column
    if date_column is None:
        date_column = DATE_COLUMN
        columns[DATE_COLUMN] = ColumnSpec(
            type="date",
            label="Application date",
            description=f"{SIMULATION_LABEL}: synthesised monthly vintages.",
        )
    spec = base.model_copy(
        update={
            "name": f"{base.name}_simulation",
            "description": f"{SIMULATION_LABEL}. {base.description}",
            "columns": columns,
            "date_column": date_column,
            "exclude": [*base.exclude, *hidden_columns],
            "data": str(data_path.resolve()),
        }
    )
    path = folder / "spec.yaml"
    path.write_text(f"# {SIMULATION_LABEL}\n" + spec.to_yaml(), encoding="utf-8")
    return path


def build_simulation(
    folder: str | os.PathLike[str],
    *,
    base: str = "german_credit",
    months: int = 12,
    per_month: int = 40,
    history_rows: int = 160,
    start: str = "2025-01",
    lag_months: int = 3,
    seed: int = 7,
    hidden_columns: Sequence[str] = (),
) -> Simulation:
    """Write the simulated lender's spec, labeled history and monthly application files.
    `hidden_columns`: columns its model is not given (the spec excludes them) but the files
    carry, so simulated analysts can see them (`risk_app.overrides.simulation`)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    base_spec = load_spec(base)
    rng = np.random.default_rng(seed)
    rows = pd.read_csv(base_spec.data_path, dtype=str)
    needed = history_rows + months * per_month
    if len(rows) < needed:
        raise ValueError(f"{base}: {len(rows)} rows, the simulation needs {needed}")
    rows = rows.sample(n=needed, random_state=seed).reset_index(drop=True)
    rows[base_spec.id_column] = [f"sim-{i:05d}" for i in range(needed)]
    date_column = base_spec.date_column or DATE_COLUMN
    starts = _month_starts(start, months)
    history = rows.iloc[:history_rows].copy()
    before = _month_starts((starts[0] - pd.DateOffset(months=6)).strftime("%Y-%m"), 6)
    history[date_column] = (
        pd.concat(
            [_random_days(rng, m, n) for m, n in zip(before, _shares(history_rows, 6), strict=True)],
            ignore_index=True,
        )
        .dt.strftime("%Y-%m-%d")
        .to_numpy()
    )
    history_path = out / "history.csv"
    history.to_csv(history_path, index=False)
    spec_path = simulation_spec(base_spec, history_path, out, hidden_columns)
    truth = []
    labels = [m.strftime("%Y-%m") for m in starts]
    for i, month in enumerate(starts):
        batch = rows.iloc[history_rows + i * per_month : history_rows + (i + 1) * per_month].copy()
        batch[date_column] = _random_days(rng, month, len(batch)).dt.strftime("%Y-%m-%d").to_numpy()
        batch.drop(columns=[base_spec.target.column]).to_csv(
            out / f"applications_{labels[i]}.csv", index=False
        )
        truth.append(
            pd.DataFrame(
                {
                    "application_id": batch[base_spec.id_column].to_numpy(),
                    "month": labels[i],
                    "label": batch[base_spec.target.column].to_numpy(),
                    "application_date": batch[date_column].to_numpy(),
                }
            )
        )
    return Simulation(
        folder=out, spec=load_spec(spec_path), spec_path=spec_path, history_path=history_path,
        months=labels, truth=pd.concat(truth, ignore_index=True), lag_months=lag_months,
    )  # fmt: skip


def release_outcomes(sim: Simulation, vintage: str, release_folder: str | os.PathLike[str]) -> Path:
    """The true labels of `vintage`'s booked loans (approved by the model or, overriding it, by
    an analyst) as an outcome file, observed `lag_months` later, plus one unknown id (which the
    ingest must quarantine). Returns the file's path."""
    book = labeled_book(sim.spec)
    booked = (book["vintage"] == vintage) & (book["booked_decision"] == "approve")
    approved = book.loc[booked, "application_id"]
    truth = sim.truth.loc[sim.truth["month"] == vintage].set_index("application_id")
    observed = pd.Timestamp(f"{vintage}-01") + pd.DateOffset(months=sim.lag_months + 1) - pd.Timedelta(days=1)
    rows = pd.DataFrame(
        {
            sim.spec.id_column: approved.astype(str).to_numpy(),
            sim.spec.target.column: truth.loc[approved.astype(str), "label"].to_numpy(),
            OBSERVATION_DATE: observed.strftime("%Y-%m-%d"),
        }
    )
    unknown = {
        sim.spec.id_column: f"{UNKNOWN_ID_PREFIX}{vintage}",
        sim.spec.target.column: rows.iloc[0, 1] if len(rows) else truth["label"].iloc[0],
        OBSERVATION_DATE: observed.strftime("%Y-%m-%d"),
    }
    rows = pd.concat([rows, pd.DataFrame([unknown])], ignore_index=True)
    folder = Path(release_folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"outcomes_{vintage}.csv"
    rows.to_csv(path, index=False)
    # The marker tells the outcome sensor the file is complete (see pipelines.sensors).
    path.with_name(path.name + ".done").touch()
    return path


__all__ = [
    "SIMULATION_LABEL",
    "Simulation",
    "build_simulation",
    "release_outcomes",
    "simulation_spec",
]
