"""SIMULATION (tests only): simulated analysts who see a column the model does not, and analysts
who see nothing more; the columns are the simulation's config, chosen from the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.evaluate.baselines import default_target, fit_baseline, predict_default
from risk_app.outcomes.simulation import build_simulation
from risk_app.overrides.simulation import (
    AnalystConfig,
    hidden_evidence,
    informative_columns,
    only_columns,
    overridden,
)

SPEC = load_spec("german_credit")


def test_the_hidden_column_is_chosen_from_the_data_and_the_model_is_not_given_it(tmp_path: Path) -> None:
    hidden = informative_columns(SPEC, n=1)
    assert len(hidden) == 1 and hidden[0] in SPEC.feature_columns
    sim = build_simulation(tmp_path, months=2, per_month=10, history_rows=40, hidden_columns=hidden)
    assert hidden[0] in sim.spec.exclude and hidden[0] not in sim.spec.feature_columns
    with pytest.raises(ValueError, match="not feature columns"):
        build_simulation(tmp_path / "x", months=2, per_month=10, history_rows=40, hidden_columns=["nope"])


def test_overrides_respect_the_rate_and_the_sides() -> None:
    rng = np.random.default_rng(0)
    model_pd = rng.uniform(size=200)
    declined = model_pd > 0.7
    evidence = rng.normal(scale=2.0, size=200)
    informed = overridden(model_pd, declined, evidence, AnalystConfig(override_rate=0.1), rng)
    assert 0 < len(informed) <= 20
    # Informed analysts override where their view crosses the model's: approve the declines the
    # evidence lightens, decline the approvals it darkens.
    assert (evidence[informed][declined[informed]] < 0).all()
    assert (evidence[informed][~declined[informed]] > 0).all()
    blind = overridden(model_pd, declined, evidence, AnalystConfig(informed=False, override_rate=0.1), rng)
    assert len(blind) == len(informed) and declined[blind].sum() == declined[informed].sum()


def test_informed_analysts_carry_information_and_uninformed_ones_none() -> None:
    # The model reads every column but the hidden one; the analysts judge with it too. The
    # applicants informed analysts approve against the model must default less than those
    # approved at random, or the simulation gives RLHF nothing to learn.
    hidden = informative_columns(SPEC, n=1)
    valid = workflow.ingest_and_validate(SPEC.data_path, spec=SPEC).valid
    history, year = valid.iloc[:500], valid.iloc[500:].reset_index(drop=True)
    visible = SPEC.model_copy(update={"exclude": [*SPEC.exclude, *hidden]})
    model = fit_baseline("logistic", history, seed=0, spec=visible)
    model_pd = predict_default(model, year, spec=visible)
    declined = model_pd >= np.quantile(model_pd, 0.7)
    evidence = hidden_evidence(SPEC, hidden, history, year)
    label = default_target(year, SPEC)
    rates = {}
    for informed in (True, False):
        config = AnalystConfig(informed=informed, override_rate=0.15)
        picked = np.concatenate(
            [overridden(model_pd, declined, evidence, config, np.random.default_rng(s)) for s in range(20)]
        )
        low = picked[declined[picked]]
        rates[informed] = label[low].mean()
    assert rates[True] < rates[False] - 0.1, rates
    assert only_columns(SPEC, hidden).feature_columns == tuple(hidden)
