"""Record-level DP-SGD in Flower's Simulation Engine: each lender's ε reaches the outcome and the record."""

from __future__ import annotations

import pytest

from data_contracts.spec import load_spec
from risk_app.federated.dpsgd import lender_epsilon
from risk_app.federated.lender import LenderData
from risk_app.federated.product import federation_facts
from risk_app.federated.simulation import run_sites
from tests.federated.conftest import quick_config
from tests.federated.test_record_privacy import HEAD_TRAIN

pytestmark = [pytest.mark.slow, pytest.mark.ray]  # ray: one Ray cluster at a time (tests/conftest.py)


def test_each_lender_reports_its_own_epsilon_and_the_consortium_the_largest(
    tiny_qwen2, make_sites, tmp_path
) -> None:
    sites = make_sites(2, 100)
    config = quick_config(rounds=2, min_lenders=2, train={**HEAD_TRAIN, "max_train_rows": None},
                          record_privacy={"enabled": True, "noise_multiplier": 1.5})  # fmt: skip
    outcome = run_sites(sites, load_spec("german_credit"), config, tmp_path / "dp-sgd")
    assert [r.status for r in outcome.rounds] == ["aggregated", "aggregated"]
    rows = {s.name: len(LenderData.load(s).train.train_texts) for s in sites}
    expected = {name: lender_epsilon(config.record_privacy, n, 16, 2) for name, n in rows.items()}
    assert outcome.record_epsilon == pytest.approx(expected)
    assert outcome.rounds[0].record_epsilon == pytest.approx(
        {name: lender_epsilon(config.record_privacy, n, 16, 1) for name, n in rows.items()}
    )
    assert outcome.epsilon == pytest.approx(max(expected.values())) and outcome.delta == 1e-5
    facts = federation_facts(outcome)
    assert facts.privacy_level == "record" and facts.lender_epsilon == outcome.record_epsilon
    assert facts.clipping_norm == 1.0 and facts.noise_multiplier == 1.5
