"""PD backtests: Jeffreys intervals and p-values, traffic lights, per-vintage records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from risk_app.outcomes.backtest import (
    backtest_markdown,
    backtest_vintage,
    grade_table,
    jeffreys_interval,
    jeffreys_p_value,
    latest_backtest,
    record_backtest,
    recorded_backtests,
    traffic_light,
)
from risk_app.outcomes.book import labeled_book
from risk_app.outcomes.ingest import add_outcome_file
from tests.outcomes.conftest import SPEC, outcome_file


def test_jeffreys_interval_and_p_value_are_those_of_the_beta_posterior() -> None:
    low, high = jeffreys_interval(100, 10)
    assert low == pytest.approx(beta.ppf(0.025, 10.5, 90.5))
    assert high == pytest.approx(beta.ppf(0.975, 10.5, 90.5))
    # The interval holds the realized rate, with 2.5% of the posterior on either side.
    assert low < 0.10 < high
    assert beta.cdf(low, 10.5, 90.5) == pytest.approx(0.025)
    assert jeffreys_p_value(100, 10, 0.10) > 0.5  # the prediction came true
    assert jeffreys_p_value(100, 30, 0.10) < 1e-6  # three times the predicted defaults


@pytest.mark.parametrize(
    ("p_value", "realized", "predicted", "light"),
    [
        (0.5, 0.1, 0.1, "green"),
        (0.01, 0.2, 0.1, "amber"),
        (1e-5, 0.3, 0.1, "red"),
        (1e-5, 0.01, 0.1, "amber"),
    ],
)
def test_traffic_lights_are_red_only_when_pds_are_underestimated(
    p_value: float, realized: float, predicted: float, light: str
) -> None:
    assert traffic_light(p_value, realized, predicted) == light


def test_grade_table_flags_an_underestimated_grade_in_plain_words() -> None:
    rows = pd.DataFrame(
        {
            "risk_grade": ["B"] * 100 + ["D"] * 100,
            "probability_of_default": [0.08] * 100 + [0.25] * 100,
            "outcome_default": [1] * 8 + [0] * 92 + [1] * 70 + [0] * 30,
        }
    )
    table = grade_table(rows).set_index("grade")
    assert table.loc["B", "light"] == "green" and bool(table.loc["B", "inside_interval"])
    assert table.loc["D", "light"] == "red" and not bool(table.loc["D", "inside_interval"])
    assert "PDs underestimated" in table.loc["D", "verdict"] and "70 defaulted" in table.loc["D", "verdict"]


def test_each_vintage_is_backtested_per_deciding_model_and_recorded_once(scored_book, tmp_path: Path) -> None:
    truth = scored_book(months=("2025-01", "2025-02"), per_month=30, pd_value=0.3)
    rows = truth.loc[(truth["month"] == "2025-01") & ~truth["declined"]]
    add_outcome_file(outcome_file(tmp_path / "o.csv", rows), SPEC)
    book = labeled_book(SPEC)
    (result,) = backtest_vintage(book, "2025-01")
    y = rows["default"].to_numpy()
    assert result.n == len(rows) == 24 and result.defaults == int(y.sum())
    assert result.brier == pytest.approx(float(np.mean((0.3 - y) ** 2)))
    assert result.auc == pytest.approx(0.5)  # both classes occur; one PD for all ranks nothing
    record_backtest(book, SPEC.name, "2025-01")
    record_backtest(book, SPEC.name, "2025-01")  # a re-run replaces, never duplicates
    assert len(recorded_backtests(SPEC.name)) == len(result.grades)
    latest = latest_backtest(SPEC.name, "german_credit/1")
    assert latest is not None and latest.vintage == "2025-01"
    assert "Jeffreys 95%" in backtest_markdown(latest)
    with pytest.raises(Exception, match="no application with a known outcome"):
        backtest_vintage(book, "2025-02")
