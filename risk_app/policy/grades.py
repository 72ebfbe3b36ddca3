"""Risk grades: map a probability of default to a letter band, A (safest) to E.

The bands are defined once, here, in `GRADE_BANDS`; pass other bands to `assign_grades` (after
`check_bands`) to reprice without touching the scorer. A PD exactly on a cut-off falls into the
riskier band: "A" means strictly below 5%. A credit policy names its bands as upper bounds with
the last one 1 (`policy.credit.PolicyConfig.grade_bands`, defaulting to these) and an artifact
stores them so; `bands_from_bounds` turns such a mapping into bands with the last one open.

    assign_grades([0.01, 0.07, 0.5])  # -> array(['A', 'B', 'E'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from risk_app.errors import ConfigError

# (grade, exclusive upper bound on PD), ordered from lowest to highest risk; the last band
# must be open-ended so every probability gets a grade.
GRADE_BANDS: tuple[tuple[str, float], ...] = (
    ("A", 0.05),
    ("B", 0.10),
    ("C", 0.20),
    ("D", 0.35),
    ("E", math.inf),
)


def bands_from_bounds(bounds: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """{grade: upper PD bound} (safest first, as a policy names them) as bands, the last one open."""
    last = len(bounds) - 1
    return tuple(
        (str(name), math.inf if i == last else float(bound)) for i, (name, bound) in enumerate(bounds.items())
    )


def bounds_of(bands: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Bands as a policy names them: {grade: upper PD bound}, the open last band bounded by 1."""
    return {name: min(float(bound), 1.0) for name, bound in bands}


def check_bands(bands: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """Validate grade bands: unique names, strictly increasing bounds in (0, 1], open last band."""
    out = tuple((str(name), float(bound)) for name, bound in bands)
    if not out:
        raise ConfigError("grade bands: at least one band is required")
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"grade bands: duplicate grade names in {names}")
    bounds = [bound for _, bound in out]
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
        raise ConfigError(f"grade bands: upper bounds must increase strictly, got {bounds}")
    if any(not 0.0 < b <= 1.0 for b in bounds[:-1]):
        raise ConfigError(f"grade bands: cut-offs must lie in (0, 1], got {bounds[:-1]}")
    if not math.isinf(bounds[-1]):
        raise ConfigError(f"grade bands: the last band ({names[-1]!r}) must be open-ended (upper bound inf)")
    return out


def assign_grades(
    p_default: Sequence[float] | np.ndarray, bands: Sequence[tuple[str, float]] = GRADE_BANDS
) -> np.ndarray:
    """Grade letter for each probability of default (object array of str)."""
    checked = check_bands(bands) if bands is not GRADE_BANDS else GRADE_BANDS
    p = np.asarray(p_default, dtype=float)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ConfigError("assign_grades: probabilities must be in [0, 1] and not NaN")
    cutoffs = np.array([bound for _, bound in checked[:-1]], dtype=float)
    # side="right": a PD equal to a cut-off belongs to the riskier band.
    index = np.searchsorted(cutoffs, p, side="right")
    names = np.array([name for name, _ in checked], dtype=object)
    return names[index]


def grade_names(bands: Sequence[tuple[str, float]] = GRADE_BANDS) -> list[str]:
    """Grade letters from safest to riskiest."""
    return [name for name, _ in bands]
