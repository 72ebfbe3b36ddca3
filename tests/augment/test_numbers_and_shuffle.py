"""number_perturbation (row stage) and clause_shuffle (layout stage)."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app.augment import AugmentConfig
from risk_app.augment.base import AugmentSample
from risk_app.augment.numbers import NumberPerturbation, contract_bounds, perturbed_columns
from risk_app.augment.shuffle import ClauseShuffle
from risk_app.data.serialize import parse_clauses
from risk_app.errors import ConfigError
from tests.data.german import FIELD_LABELS

from .conftest import augmented_rows, source_text

NUMBER_IN_CLAUSE = {
    "duration_in_month": re.compile(r"(?:^|\. )Duration: (\d+) months?\."),
    "credit_amount": re.compile(r"(?:^|\. )Credit amount: (\d+) DM\."),
    "age_in_years": re.compile(r"(?:^|\. )Age: (\d+) years?\."),
}


def numbers_in(text: str) -> dict[str, int]:
    return {field: int(pattern.search(text).group(1)) for field, pattern in NUMBER_IN_CLAUSE.items()}


def test_bounds_and_columns_come_from_the_spec() -> None:
    assert contract_bounds("duration_in_month") == (1, 120)
    assert contract_bounds("credit_amount") == (1, 10_000_000)
    assert contract_bounds("age_in_years") == (18, 100)
    german = load_spec("german_credit")
    assert perturbed_columns(german) == ("duration_in_month", "credit_amount")
    assert perturbed_columns(german, include_protected=True) == (
        "duration_in_month",
        "credit_amount",
        "age_in_years",
    )
    # Another data set: its own perturb columns and float ranges.
    cards = load_spec("uci_credit_card")
    assert perturbed_columns(cards) == ("LIMIT_BAL", "BILL_AMT1")
    assert contract_bounds("BILL_AMT1", cards) == (-1_000_000.0, 10_000_000.0)
    with pytest.raises(ConfigError, match="not a numeric column of data set uci_credit_card"):
        contract_bounds("EDUCATION", cards)


def test_float_columns_move_by_cents_within_range() -> None:
    cards = load_spec("uci_credit_card")
    augmenter = NumberPerturbation(AugmentConfig(number_scale=0.2), cards)
    row = {"EDUCATION": "2", "MARRIAGE": "1", "LIMIT_BAL": 50000.0, "BILL_AMT1": -120.5}
    out = augmenter.apply(AugmentSample(row=row, field_order=tuple(row)), random.Random(5))
    assert out.row["EDUCATION"] == "2" and out.row["MARRIAGE"] == "1"  # categories untouched
    assert 40000 <= out.row["LIMIT_BAL"] <= 60000 and out.row["LIMIT_BAL"] != 50000.0
    assert round(out.row["BILL_AMT1"], 2) == out.row["BILL_AMT1"]


def test_perturbed_numbers_stay_in_range_and_mostly_move(run_augment, examples_df: pd.DataFrame) -> None:
    scale = 0.1
    rows = augmented_rows(run_augment(augmenters=["number_perturbation"], number_scale=scale))
    sources = source_text(examples_df)
    moved = {"duration_in_month": 0, "credit_amount": 0}
    for sid, text in zip(rows["source_application_id"], rows["text"], strict=True):
        before, after = numbers_in(sources[sid]), numbers_in(text)
        assert after["age_in_years"] == before["age_in_years"]  # protected: only with perturb_protected
        for field in moved:
            low, high = contract_bounds(field)
            assert low <= after[field] <= high
            # Within ±scale of the source, give or take the rounding to whole numbers.
            assert abs(after[field] - before[field]) <= scale * before[field] + 0.5
            moved[field] += after[field] != before[field]
    n = len(rows)
    assert n > 100
    assert moved["credit_amount"] >= 0.95 * n  # amounts are in the thousands: 10% always shows
    assert moved["duration_in_month"] >= 0.5 * n  # short durations can round back to themselves


def test_perturbation_is_clipped_to_the_contract_range() -> None:
    config = AugmentConfig(number_scale=0.5, perturb_protected=True)
    augmenter = NumberPerturbation(config)
    edge = {"duration_in_month": 120, "credit_amount": 1, "age_in_years": 99}
    seen: dict[str, set[int]] = {field: set() for field in edge}
    for seed in range(200):
        out = augmenter.apply(AugmentSample(row=dict(edge), field_order=tuple(edge)), random.Random(seed))
        for field, value in out.row.items():
            low, high = contract_bounds(field)
            assert low <= value <= high
            seen[field].add(value)
    assert max(seen["duration_in_month"]) == 120 and min(seen["duration_in_month"]) < 120
    assert min(seen["credit_amount"]) == 1
    assert max(seen["age_in_years"]) == 100  # 99 * 1.5 clipped to the contract's maximum age


def test_clause_shuffle_keeps_the_same_clauses(run_augment, examples_df: pd.DataFrame) -> None:
    rows = augmented_rows(run_augment(augmenters=["clause_shuffle"]))
    sources = source_text(examples_df)
    assert len(rows) == int((examples_df["split"] == "train").sum())
    for sid, text in zip(rows["source_application_id"], rows["text"], strict=True):
        before, after = parse_clauses(sources[sid]), parse_clauses(text)
        assert sorted(after) == sorted(before)
        assert after != before
        assert len(after) == len(FIELD_LABELS)


def test_clause_shuffle_respects_excluded_fields() -> None:
    order = ("duration_in_month", "credit_amount", "purpose")
    out = ClauseShuffle(AugmentConfig()).apply(AugmentSample(row={}, field_order=order), random.Random(3))
    assert sorted(out.field_order) == sorted(order) and out.field_order != order
    single = AugmentSample(row={}, field_order=("purpose",))
    assert ClauseShuffle(AugmentConfig()).apply(single, random.Random(0)) == single


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_scale_limits_are_honoured(scale: float) -> None:
    augmenter = NumberPerturbation(AugmentConfig(number_scale=scale))
    row = {"duration_in_month": 24, "credit_amount": 5000}
    out = augmenter.apply(AugmentSample(row=row, field_order=tuple(row)), random.Random(1))
    if scale == 0.0:
        assert out.row == row
    else:
        assert 2500 <= out.row["credit_amount"] <= 7500
