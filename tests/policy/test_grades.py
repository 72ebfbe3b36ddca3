"""Risk grades: monotone in PD, exact at the band edges, bands validated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from risk_app.errors import ConfigError
from risk_app.policy.grades import GRADE_BANDS, assign_grades, check_bands, grade_names


def test_grades_monotone_in_pd() -> None:
    p = np.sort(np.random.default_rng(0).uniform(0, 1, 500))
    order = {g: i for i, g in enumerate(grade_names())}
    ranks = [order[g] for g in assign_grades(p)]
    assert all(a <= b for a, b in zip(ranks, ranks[1:], strict=False))
    assert set(assign_grades(np.linspace(0, 1, 1001))) == set("ABCDE")


@pytest.mark.parametrize(
    ("pd_", "grade"),
    [
        (0.0, "A"),
        (0.0499, "A"),
        (0.05, "B"),
        (0.0999, "B"),
        (0.10, "C"),
        (0.1999, "C"),
        (0.20, "D"),
        (0.3499, "D"),
        (0.35, "E"),
        (1.0, "E"),
    ],
)
def test_band_edges_go_to_riskier_grade(pd_: float, grade: str) -> None:
    assert assign_grades([pd_])[0] == grade


def test_custom_bands() -> None:
    bands = [("low", 0.3), ("high", math.inf)]
    assert list(assign_grades([0.1, 0.3, 0.9], bands)) == ["low", "high", "high"]
    assert check_bands(GRADE_BANDS) == GRADE_BANDS


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ([], "at least one"),
        ([("A", 0.1), ("A", math.inf)], "duplicate"),
        ([("A", 0.2), ("B", 0.1), ("C", math.inf)], "increase strictly"),
        ([("A", 0.1), ("B", 0.5)], "open-ended"),
        ([("A", 1.5), ("B", math.inf)], r"\(0, 1\]"),
    ],
)
def test_bad_bands_rejected(bands: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        assign_grades([0.1], bands)


def test_bad_probabilities_rejected() -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        assign_grades([0.1, float("nan")])
    with pytest.raises(ConfigError):
        assign_grades([1.2])
