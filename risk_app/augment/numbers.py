"""`number_perturbation`: nudge loan duration and amount (optionally age) on the structured row.

Each chosen field is multiplied by a factor drawn uniformly from [1 - scale, 1 + scale],
rounded to a whole number (the contract's numeric fields are integers) and clipped to the
contract's range. The range comes from the pandera schema's own checks (`ge`/`gt`/`le`/`lt`
on `LoanApplication`), so a change to the contract changes the clipping with no second copy
of the numbers here.

Why a plain class and not an nlpaug augmenter: nlpaug augments text, audio and spectrograms;
it has no augmenter for a table row. Editing numbers inside the text with a regex would have
to tell an amount from a code such as "Installment rate code (1-4)", and the text would no
longer be a rendering of any row. Perturbing the row and then serializing it keeps the text
faithful. The class has the same interface as the nlpaug-backed ones (`name`, `stage`,
`apply`).

The 1-4 codes and counts are left alone: a relative nudge of a small code is either nothing
(rounded away) or a different category.
"""

from __future__ import annotations

import math
import random
from functools import cache
from typing import Any

from data_contracts.loan_application import LoanApplication
from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter
from risk_app.errors import ConfigError

PERTURBED_COLUMNS: tuple[str, ...] = ("duration_in_month", "credit_amount")
AGE_COLUMN = "age_in_years"


@cache
def contract_bounds(column: str) -> tuple[int, int]:
    """Inclusive integer (low, high) allowed for a numeric contract column, from its checks."""
    schema = LoanApplication.to_schema()
    if column not in schema.columns:
        raise ConfigError(f"column {column!r} is not in the LoanApplication contract")
    low, high = -math.inf, math.inf
    for check in schema.columns[column].checks:
        stats = check.statistics or {}
        if check.name == "greater_than_or_equal_to":
            low = max(low, math.ceil(stats["min_value"]))
        elif check.name == "greater_than":
            # Integer column: > 0 means >= 1.
            low = max(low, math.floor(stats["min_value"]) + 1)
        elif check.name == "less_than_or_equal_to":
            high = min(high, math.floor(stats["max_value"]))
        elif check.name == "less_than":
            high = min(high, math.ceil(stats["max_value"]) - 1)
        elif check.name == "in_range":
            low = max(low, math.ceil(stats["min_value"]))
            high = min(high, math.floor(stats["max_value"]))
    if math.isinf(low) or math.isinf(high):
        raise ConfigError(f"contract column {column!r} has no finite range to clip perturbed values to")
    return int(low), int(high)


def perturb_value(value: Any, scale: float, low: int, high: int, rng: random.Random) -> int:
    """`value * U(1 - scale, 1 + scale)`, rounded half to even and clipped to [low, high]."""
    factor = 1.0 + rng.uniform(-scale, scale)
    return int(min(high, max(low, round(float(value) * factor))))


@register_augmenter
class NumberPerturbation(Augmenter):
    name = "number_perturbation"
    stage = "row"
    description = (
        "Move duration and credit amount (optionally age) by up to ±number_scale, within contract ranges."
    )

    @property
    def columns(self) -> tuple[str, ...]:
        return PERTURBED_COLUMNS + ((AGE_COLUMN,) if self.config.perturb_age else ())

    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        row = dict(sample.row)
        moved: dict[str, tuple[int, int]] = {}
        for column in self.columns:
            if column not in row:
                continue
            low, high = contract_bounds(column)
            before = int(row[column])
            after = perturb_value(before, self.config.number_scale, low, high, rng)
            row[column] = after
            if after != before:
                moved[column] = (before, after)
        return sample.with_changes(row=row, notes={**sample.notes, self.name: moved})


__all__ = ["AGE_COLUMN", "PERTURBED_COLUMNS", "NumberPerturbation", "contract_bounds", "perturb_value"]
