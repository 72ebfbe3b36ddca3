"""`number_perturbation`: nudge the numeric fields a data set's spec marks `perturb: true`.

Each chosen field is multiplied by a factor drawn uniformly from [1 - scale, 1 + scale],
rounded (to a whole number for integer columns, to cents for float columns) and clipped to the
column's [min, max] from the spec, so a change to the spec changes the clipping with no second
copy of the numbers here. Protected numeric attributes (German credit's age) move only with
`perturb_protected`.

Why a plain class and not an nlpaug augmenter: nlpaug augments text, audio and spectrograms;
it has no augmenter for a table row. Editing numbers inside the text with a regex would have
to tell an amount from a code such as "Installment rate code (1-4)", and the text would no
longer be a rendering of any row. Perturbing the row and then serializing it keeps the text
faithful. The class has the same interface as the nlpaug-backed ones (`name`, `stage`,
`apply`).

Codes and counts are not marked `perturb` in the built-in specs: a relative nudge of a small
code is either nothing (rounded away) or a different category.
"""

from __future__ import annotations

import math
import random
from typing import Any

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter
from risk_app.errors import ConfigError


def contract_bounds(column: str, spec: DatasetSpec | str | None = None) -> tuple[float, float]:
    """Inclusive (low, high) allowed for a numeric column of the spec (whole numbers for integers)."""
    spec = load_spec(spec)
    col = spec.columns.get(column)
    if col is None or not col.is_numeric:
        raise ConfigError(f"column {column!r} is not a numeric column of data set {spec.name}")
    if col.min is None or col.max is None:
        raise ConfigError(f"column {column!r} of data set {spec.name} has no finite range to clip values to")
    if col.type == "integer":
        return math.ceil(col.min), math.floor(col.max)
    return col.min, col.max


def perturbed_columns(spec: DatasetSpec, include_protected: bool = False) -> tuple[str, ...]:
    """The numeric feature columns number_perturbation moves, in spec order."""
    return tuple(
        c
        for c in spec.numeric_columns
        if spec.columns[c].perturb and (include_protected or c not in spec.protected_columns)
    )


def perturb_value(
    value: Any, scale: float, low: float, high: float, rng: random.Random, integer: bool = True
) -> int | float:
    """`value * U(1 - scale, 1 + scale)`, rounded half to even and clipped to [low, high]."""
    factor = 1.0 + rng.uniform(-scale, scale)
    moved = float(value) * factor
    if integer:
        return int(min(high, max(low, round(moved))))
    return float(min(high, max(low, round(moved, 2))))


@register_augmenter
class NumberPerturbation(Augmenter):
    name = "number_perturbation"
    stage = "row"
    description = "Move the spec's perturb columns (e.g. amounts) by up to ±number_scale, within their range."

    @property
    def columns(self) -> tuple[str, ...]:
        return perturbed_columns(self.spec, include_protected=self.config.perturb_protected)

    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        row = dict(sample.row)
        moved: dict[str, tuple[Any, Any]] = {}
        for column in self.columns:
            if column not in row or row[column] is None or row[column] != row[column]:  # absent or NaN
                continue
            low, high = contract_bounds(column, self.spec)
            integer = self.spec.columns[column].type == "integer"
            before = int(row[column]) if integer else float(row[column])
            after = perturb_value(before, self.config.number_scale, low, high, rng, integer=integer)
            row[column] = after
            if after != before:
                moved[column] = (before, after)
        return sample.with_changes(row=row, notes={**sample.notes, self.name: moved})


__all__ = ["NumberPerturbation", "contract_bounds", "perturb_value", "perturbed_columns"]
