"""SIMULATION, for tests, the demo and the benchmarks only: analysts who override the model.

Nothing here is real analyst behaviour. A simulated lender (`risk_app.outcomes.simulation`)
hides some columns from its model (`build_simulation(hidden_columns=...)` puts them in the
simulation spec's `exclude`, so the model never reads them) while its analysts, who review the
whole application file, see them. Which columns those are is the simulation's config, never a
name in code: `informative_columns` picks them from the labeled history.

Each scored batch, `simulate_overrides` has the analysts override some of the model's decisions
and writes an override file in the contract's format (`data_contracts.override`):

* **informed** analysts (`AnalystConfig.informed`) learnt from the labeled history how the
  hidden columns move the risk (a logistic regression on those columns alone) and add that to
  the model's log-odds: analyst log-odds = logit(model PD) + (hidden-column log-odds - their
  mean on the history). They would decline as many applications as the model did, the riskiest
  by that view; where they disagree with the model they override, most confident first, at most
  `override_rate` of the batch;
* **uninformed** analysts override as many applications, on each side, as informed ones would,
  but chosen at random: the same override rates, no information.

Low-side overrides (approve a model decline) give a reason from the lender's list that says
the analyst saw something better than the application shows; high-side ones (decline a model
approval) one that says something worse. Analyst references are `SIM-ANALYST-<n>`.

    sim = build_simulation(folder, hidden_columns=informative_columns("german_credit", n=1))
    path = simulate_overrides(sim, month, AnalystConfig(), folder)   # once the month is scored
    add_override_file(path, sim.spec)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score

from data_contracts.override import (
    ANALYST,
    ANALYST_DECISION,
    BATCH_ID,
    DECIDED_AT,
    MODEL_DECISION,
    REASON_CODE,
    override_columns,
)
from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.evaluate.baselines import default_target, fit_baseline, predict_default
from risk_app.outcomes.book import labeled_book
from risk_app.outcomes.simulation import Simulation

# Reasons from the default list (`data_contracts.override.DEFAULT_REASON_CODES`) that fit what
# a simulated analyst saw: better than the application shows (low side), or worse (high side).
LOW_SIDE_REASON = "verified_income"
HIGH_SIDE_REASON = "adverse_information"
ANALYST_PREFIX = "SIM-ANALYST-"


class AnalystConfig(BaseModel):
    """The simulated analysts of one simulation (tests, demo and benchmarks only)."""

    model_config = ConfigDict(extra="forbid")

    informed: bool = Field(
        default=True,
        description="True: the analysts read the columns hidden from the model and judge with them; "
        "False: they override as often, at random (no information).",
    )
    override_rate: float = Field(
        default=0.15, gt=0.0, le=0.5, description="At most this share of a batch's decisions is overridden."
    )
    analysts: int = Field(
        default=3, ge=1, le=100, description="Analyst references the overrides spread over."
    )
    seed: int = Field(default=7, ge=0, description="Seed of the uninformed choice and of who decides.")


def informative_columns(spec: DatasetSpec | str, n: int = 1, frame: pd.DataFrame | None = None) -> list[str]:
    """The `n` feature columns of `spec` that rank its labels best on their own (univariate
    logistic regression, AUC on `frame`, default the data set's bundled file): a simulation hides
    these from its model to give its analysts something the model lacks."""
    spec = load_spec(spec)
    if frame is None:
        assert spec.data_path is not None, f"{spec.name} has no bundled file; give the labeled rows"
        frame = _valid_rows(spec.data_path, spec)
    labels = default_target(frame, spec)
    scores: dict[str, float] = {}
    for column in spec.feature_columns:
        if spec.columns[column].type == "text":
            continue
        view = only_columns(spec, [column])
        model = fit_baseline("logistic", frame, seed=0, spec=view)
        auc = float(roc_auc_score(labels, predict_default(model, frame, spec=view)))
        scores[column] = max(auc, 1.0 - auc)
    return sorted(scores, key=lambda c: -scores[c])[:n]


def only_columns(spec: DatasetSpec, columns: list[str]) -> DatasetSpec:
    """A view of `spec` whose features are `columns` alone (what the analysts' judgement reads)."""
    keep = set(columns)
    others = [c for c in spec.columns if c not in keep and c not in (spec.id_column, spec.target.column)]
    return spec.model_copy(update={"exclude": others, "date_column": None})


def analyst_evidence(sim: Simulation, frame: pd.DataFrame) -> np.ndarray:
    """What the hidden columns add to each application's log-odds of default, as the informed
    analysts learnt it from the simulation's labeled history (centred on the history)."""
    return hidden_evidence(sim.spec, list(sim.spec.exclude), _valid_rows(sim.history_path, sim.spec), frame)


def _valid_rows(path: Path, spec: DatasetSpec, require_target: bool = True) -> pd.DataFrame:
    """A simulation file's rows as the contract reads them (typed values)."""
    frame = load_applications(path, spec=spec)
    return validate_applications(frame, str(path), require_target=require_target, spec=spec).valid


def hidden_evidence(
    spec: DatasetSpec, hidden: list[str], history: pd.DataFrame, frame: pd.DataFrame
) -> np.ndarray:
    """Log-odds of default that `hidden` columns alone give each row of `frame`, learnt (a
    logistic regression on those columns) from the labeled `history`, less their mean there."""
    if not hidden:
        raise ValueError(f"{spec.name}: no column is hidden from the model; the analysts see nothing more")
    view = only_columns(spec, hidden)
    model = fit_baseline("logistic", history, seed=0, spec=view)

    def log_odds(rows: pd.DataFrame) -> np.ndarray:
        p = np.clip(predict_default(model, rows, spec=view), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    return log_odds(frame) - log_odds(history).mean()


def _informed(model_pd: np.ndarray, declined: np.ndarray, evidence: np.ndarray, cap: int) -> np.ndarray:
    """Informed overrides: where the analysts' own ranking (model log-odds + evidence) would
    decide otherwise than the model, the `cap` most confident."""
    p = np.clip(model_pd, 1e-6, 1 - 1e-6)
    view = np.log(p / (1 - p)) + evidence
    k = int(declined.sum())
    if k in (0, len(view)):
        return np.zeros(0, dtype=int)
    order = np.argsort(-view, kind="stable")
    analyst_declines = np.zeros(len(view), dtype=bool)
    analyst_declines[order[:k]] = True
    cut = (view[order[k - 1]] + view[order[k]]) / 2
    disagree = np.flatnonzero(analyst_declines != declined)
    confident = disagree[np.argsort(-np.abs(view[disagree] - cut), kind="stable")]
    return np.sort(confident[:cap])


def overridden(
    model_pd: np.ndarray,
    declined: np.ndarray,
    evidence: np.ndarray,
    config: AnalystConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices of the decisions the analysts override: the informed choice, or (uninformed) as
    many on each side chosen at random."""
    cap = int(np.floor(config.override_rate * len(model_pd)))
    informed = _informed(model_pd, declined, evidence, cap)
    if config.informed:
        return informed
    low = int(declined[informed].sum())
    high = len(informed) - low
    pick_low = rng.choice(np.flatnonzero(declined), size=low, replace=False)
    pick_high = rng.choice(np.flatnonzero(~declined), size=high, replace=False)
    return np.sort(np.concatenate([pick_low, pick_high]).astype(int))


def simulate_overrides(
    sim: Simulation, month: str, config: AnalystConfig, folder: str | os.PathLike[str]
) -> Path:
    """The analysts' override file for `month`'s scored applications (once the month is scored),
    written to `folder` as `overrides_<month>.csv` with a `.done` marker. Returns its path."""
    book = labeled_book(sim.spec)
    batch = book.loc[book["vintage"] == month].reset_index(drop=True)
    if batch.empty:
        raise ValueError(f"simulation {sim.spec.name}: nothing of {month} is scored yet")
    rows = _valid_rows(sim.applications_path(month), sim.spec, require_target=False)
    rows = rows.set_index(sim.spec.id_column).loc[batch["application_id"].astype(str)].reset_index()
    declined = batch["decision"].astype(str).eq("decline").to_numpy()
    rng = np.random.default_rng([config.seed, int(month.replace("-", ""))])
    chosen = overridden(
        batch["probability_of_default"].to_numpy(float), declined, analyst_evidence(sim, rows), config, rng
    )
    picked = batch.iloc[chosen]
    model_decision = picked["decision"].astype(str).to_numpy()
    analyst_decision = np.where(model_decision == "decline", "approve", "decline")
    decided = pd.to_datetime(picked["scored_at"], utc=True) + pd.Timedelta(days=1)
    overrides = pd.DataFrame(
        {
            sim.spec.id_column: picked["application_id"].astype(str).to_numpy(),
            BATCH_ID: picked["batch_id"].astype(str).to_numpy(),
            MODEL_DECISION: model_decision,
            ANALYST_DECISION: analyst_decision,
            REASON_CODE: np.where(analyst_decision == "approve", LOW_SIDE_REASON, HIGH_SIDE_REASON),
            ANALYST: [f"{ANALYST_PREFIX}{1 + int(i)}" for i in rng.integers(0, config.analysts, len(picked))],
            DECIDED_AT: decided.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        },
        columns=list(override_columns(sim.spec)),
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"overrides_{month}.csv"
    overrides.to_csv(path, index=False)
    path.with_name(path.name + ".done").touch()  # complete: the override sensor may take it
    return path


__all__ = [
    "AnalystConfig",
    "analyst_evidence",
    "hidden_evidence",
    "informative_columns",
    "only_columns",
    "overridden",
    "simulate_overrides",
]
