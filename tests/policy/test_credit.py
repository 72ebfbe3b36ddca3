"""The credit policy: calibration, a cut-off by objective, costs, the strategy table, grades."""

import numpy as np
import pytest
from pydantic import ValidationError

from risk_app.policy.credit import DEFAULT_COSTS, PolicyConfig, choose_policy, strategy_table


def _scores(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.3, n)))
    return (rng.random(n) < p).astype(int), p


def test_min_cost_cutoff_is_the_cheapest_on_validation() -> None:
    y, p = _scores()
    chosen = choose_policy(y, p, PolicyConfig(calibration="none", objective="min_cost"))
    table = strategy_table(y, p, chosen.costs, n_points=101)
    at_cut = strategy_table(y, p, chosen.costs, cutoffs=[chosen.threshold])["expected_cost"].iloc[0]
    assert at_cut <= table["expected_cost"].min() + 1e-12
    # With calibrated PDs, the Bayes cut-off for 5:1 costs is near 1/6.
    assert 0.08 < chosen.threshold < 0.3


def test_costs_come_from_the_launchpad_then_the_spec_then_the_textbook_ratio() -> None:
    assert PolicyConfig().costs() == DEFAULT_COSTS
    assert PolicyConfig().costs((3.0, 1.0)) == (3.0, 1.0)
    assert PolicyConfig(cost_missed_default=10.0).costs((3.0, 2.0)) == (10.0, 2.0)
    y, p = _scores()
    cheap_misses = choose_policy(y, p, PolicyConfig(calibration="none", cost_missed_default=1.0))
    dear_misses = choose_policy(y, p, PolicyConfig(calibration="none", cost_missed_default=20.0))
    assert dear_misses.threshold < cheap_misses.threshold  # dearer misses -> decline more


def test_target_approval_and_decline_cap() -> None:
    y, p = _scores()
    chosen = choose_policy(
        y, p, PolicyConfig(calibration="none", objective="target_approval", target_approval_rate=0.7)
    )
    assert np.mean(p < chosen.threshold) == pytest.approx(0.7, abs=0.01)
    capped = choose_policy(y, p, PolicyConfig(calibration="none", objective="f1", max_decline_rate=0.1))
    assert np.mean(p >= capped.threshold) <= 0.1


def test_strategy_table_moves_one_way() -> None:
    y, p = _scores()
    table = strategy_table(y, p, (5.0, 1.0))
    assert table["cutoff"].is_monotonic_increasing
    assert table["approval_rate"].is_monotonic_increasing
    assert table["defaults_caught"].is_monotonic_decreasing
    assert table.columns.tolist() == [
        "cutoff", "approval_rate", "bad_rate_approved", "defaults_caught", "expected_cost"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"objective": "target_approval"}, "needs target_approval_rate"),
        ({"grade_bands": {"A": 0.2, "B": 0.1, "C": 1.0}}, "increase strictly"),
        ({"grade_bands": {"A": 0.2, "B": 0.5}}, "last one be 1"),
        ({"objective": "max_profit"}, "objective"),
        ({"cutoff": 0.3}, "extra"),
    ],
)
def test_bad_policy_is_refused(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PolicyConfig.model_validate(values)


def test_grade_bands_open_the_last_band() -> None:
    bands = PolicyConfig().bands()
    assert bands[0] == ("A", 0.05) and bands[-1][0] == "E" and bands[-1][1] == float("inf")


def test_fast_cost_count_matches_the_strategy_table() -> None:
    from risk_app.policy.credit import _expected_costs

    y, p = _scores(n=400, seed=5)
    cutoffs = np.append(np.unique(p), np.nextafter(p.max(), np.inf))
    table = strategy_table(y, p, (5.0, 1.0), cutoffs=cutoffs)
    np.testing.assert_allclose(_expected_costs(y, p, cutoffs, (5.0, 1.0)), table["expected_cost"], rtol=0)
