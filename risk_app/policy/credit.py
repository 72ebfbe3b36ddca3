"""The credit policy: how a model's scores become PDs, grades and approve/decline decisions.

Training produces raw scores; the policy, chosen on the validation split only, turns them into
decisions a lender can defend:

1. a **calibration** map from raw scores to default rates (class weighting pushes raw scores
   towards 0.5, and PDs feed grades and pricing, so they must be rates);
2. a **cut-off** on the calibrated PD, chosen by an objective: the minimum expected cost
   (`min_cost`, with the cost of a missed default against a wrongly declined good applicant,
   from the launchpad or the data set's spec), a target approval rate (`target_approval`),
   max F1 of the default class (`f1`) or Youden's J (`youden`); optionally raised so that no
   more than `max_decline_rate` of applicants are declined;
3. **grades**: PD bands the policy names (A safest), which scoring writes beside each PD.

`strategy_table` shows the trade-off an analyst chooses from: for each cut-off, the approval
rate, the default rate among the approved, the share of defaults caught and the expected cost.
`PolicyConfig` is its own config (not part of `TrainConfig`) so a policy can be re-chosen on a
trained model without retraining it; the Dagster `credit_policy` asset does that.

    policy = choose_policy(y_val, p_val_raw, PolicyConfig(objective="target_approval",
                                                          target_approval_rate=0.7))
    p_test = policy.calibrator.transform(p_test_raw)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.evaluate.calibration import Calibrator, fit_calibrator
from risk_app.evaluate.inputs import check_pair
from risk_app.evaluate.metrics import choose_threshold, decline_cap_threshold
from risk_app.policy.grades import GRADE_BANDS, bands_from_bounds, bounds_of

CalibrationKind = Literal["none", "temperature", "platt", "isotonic"]
PolicyObjective = Literal["min_cost", "target_approval", "f1", "youden"]
# Used when neither the launchpad nor the data set's spec says what the two errors cost;
# the German credit documentation's 5:1 is the textbook ratio.
DEFAULT_COSTS = (5.0, 1.0)
# The grade bands scoring uses when a policy names none (risk_app.policy.grades), as bounds.
DEFAULT_GRADE_BANDS: dict[str, float] = bounds_of(GRADE_BANDS)


class PolicyConfig(BaseModel):
    """How scores become PDs, grades and decisions; every choice is fitted on validation only."""

    model_config = ConfigDict(extra="forbid")

    calibration: CalibrationKind = Field(
        default="platt",
        description="Map fitted on validation from the model's scores to default rates: "
        "none, temperature, platt or isotonic.",
    )
    objective: PolicyObjective = Field(
        default="min_cost",
        description="How the decline cut-off is chosen on validation: min_cost (least expected cost), "
        "target_approval (approve target_approval_rate of applicants), f1 (max F1 of the default "
        "class) or youden (Youden's J).",
    )
    cost_missed_default: float | None = Field(
        default=None, gt=0, description="Cost of approving an applicant who defaults; empty = the spec's."
    )
    cost_declined_good: float | None = Field(
        default=None, gt=0, description="Cost of declining an applicant who would repay; empty = the spec's."
    )
    target_approval_rate: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Share of applicants to approve (objective target_approval).",
    )
    max_decline_rate: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Optional cap on the share of applications declined (on validation), in (0, 1].",
    )
    grade_bands: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_GRADE_BANDS),
        description="Risk grades as upper PD bounds, safest first; the last grade's bound must be 1.",
    )

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        if self.objective == "target_approval" and self.target_approval_rate is None:
            raise ValueError("objective 'target_approval' needs target_approval_rate, e.g. 0.7")
        bounds = list(self.grade_bands.values())
        if not bounds or any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
            raise ValueError(f"grade_bands: upper bounds must increase strictly, got {bounds}")
        if bounds[-1] != 1.0 or bounds[0] <= 0.0:
            raise ValueError(f"grade_bands: bounds must lie in (0, 1] and the last one be 1, got {bounds}")
        return self

    def costs(self, spec_costs: tuple[float, float] | None = None) -> tuple[float, float]:
        """(cost of a missed default, cost of a declined good): launchpad, else spec, else 5:1."""
        fallback = spec_costs or DEFAULT_COSTS
        return (self.cost_missed_default or fallback[0], self.cost_declined_good or fallback[1])

    def bands(self) -> tuple[tuple[str, float], ...]:
        """Grade bands as scoring takes them: the last band open-ended."""
        return bands_from_bounds(self.grade_bands)

    def describe(self) -> str:
        """One phrase for cards and summaries: how the cut-off was chosen."""
        text = {
            "min_cost": "least expected cost",
            "target_approval": f"approve {self.target_approval_rate:.0%}"
            if self.target_approval_rate
            else "",
            "f1": "max F1 of the default class",
            "youden": "Youden's J",
        }[self.objective] + " on the validation split"
        if self.max_decline_rate:
            text += f", decline rate capped at {self.max_decline_rate:.0%}"
        return text


def policy_id(
    config: PolicyConfig | Mapping[str, Any], calibration: Mapping[str, Any], threshold: float
) -> str:
    """The identity of a policy: 12 hex of the sha256 of everything that turns a model's raw
    scores into decisions (the calibration map, the cut-off, and the config that chose them,
    grade bands included). Two artifacts of the same weights with another id decide differently:
    the artifact version, the registered version and every scored batch carry it."""
    settings = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    canonical = {"config": settings, "calibration": dict(calibration), "threshold": float(threshold)}
    text = json.dumps(canonical, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class ChosenPolicy:
    """The fitted calibration, the cut-off it leads to and the costs it was judged by."""

    config: PolicyConfig
    calibrator: Calibrator
    threshold: float
    costs: tuple[float, float]


def strategy_table(
    y: Sequence[int] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    costs: tuple[float, float],
    n_points: int = 21,
    cutoffs: Sequence[float] | None = None,
) -> pd.DataFrame:
    """For cut-offs across the PD range (its quantiles, or `cutoffs`): approval rate, bad rate
    among approved, defaults caught, expected cost per application (declining `p >= cutoff`)."""
    labels, scores = check_pair(y, p, "strategy table")
    if cutoffs is None:
        cutoffs = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, n_points)))
    rows = [_strategy_row(labels, scores, float(c), costs) for c in cutoffs]
    return pd.DataFrame(rows)


def _strategy_row(
    y: np.ndarray, p: np.ndarray, cutoff: float, costs: tuple[float, float]
) -> dict[str, float]:
    decline = p >= cutoff
    approved = ~decline
    missed = int((approved & (y == 1)).sum())
    wrongly_declined = int((decline & (y == 0)).sum())
    return {
        "cutoff": cutoff,
        "approval_rate": float(approved.mean()),
        "bad_rate_approved": float(y[approved].mean()) if approved.any() else 0.0,
        "defaults_caught": float((decline & (y == 1)).sum() / max(int(y.sum()), 1)),
        "expected_cost": float((costs[0] * missed + costs[1] * wrongly_declined) / len(y)),
    }


def _expected_costs(
    y: np.ndarray, p: np.ndarray, cutoffs: np.ndarray, costs: tuple[float, float]
) -> np.ndarray:
    """Expected cost per application at each cut-off (declining p >= cut-off), the same numbers
    as `_strategy_row`, counted with sorted scores so a large validation set stays O(n log n)."""
    bad, good = np.sort(p[y == 1]), np.sort(p[y == 0])
    missed = np.searchsorted(bad, cutoffs, side="left")  # defaults approved: p < cut-off
    wrongly_declined = good.size - np.searchsorted(good, cutoffs, side="left")  # goods with p >= cut-off
    return (costs[0] * missed + costs[1] * wrongly_declined) / len(y)


def _cutoff(y_val: np.ndarray, p_val: np.ndarray, config: PolicyConfig, costs: tuple[float, float]) -> float:
    if config.objective in ("f1", "youden"):
        return choose_threshold(y_val, p_val, config.objective)
    if config.objective == "target_approval":
        assert config.target_approval_rate is not None
        # Approve the lowest-PD share: decline from the (1 - rate) quantile of the PDs up.
        return float(np.quantile(p_val, config.target_approval_rate, method="higher"))
    # min_cost: every distinct PD is a candidate; ties go to the higher cut-off (fewer declines).
    candidates = np.append(np.unique(p_val), np.nextafter(p_val.max(), np.inf))
    cost = _expected_costs(y_val, p_val, candidates, costs)
    best = np.flatnonzero(np.isclose(cost, cost.min()))
    return float(min(candidates[best].max(), 1.0))


def choose_cutoff(
    y_val: np.ndarray, p_val: np.ndarray, config: PolicyConfig, costs: tuple[float, float]
) -> float:
    """The decline cut-off on already-calibrated validation PDs: the objective, then the cap.

    Baselines are given their cut-offs by this same function, so models compare under one policy.
    """
    threshold = _cutoff(y_val, p_val, config, costs)
    if config.max_decline_rate is not None:
        threshold = max(threshold, decline_cap_threshold(p_val, config.max_decline_rate))
    return float(threshold)


def choose_policy(
    y_val: Sequence[int] | np.ndarray,
    p_val_raw: Sequence[float] | np.ndarray,
    config: PolicyConfig,
    spec_costs: tuple[float, float] | None = None,
) -> ChosenPolicy:
    """Fit the calibration on validation, then choose the cut-off on the calibrated PDs.

    The order matters: the saved model's PDs and its cut-off must agree, so the cut-off is
    chosen on exactly the PDs the model will report.
    """
    y, raw = check_pair(y_val, p_val_raw, "credit policy")
    calibrator = fit_calibrator(config.calibration, y, raw)
    p_val = calibrator.transform(raw)
    costs = config.costs(spec_costs)
    threshold = choose_cutoff(y, p_val, config, costs)
    return ChosenPolicy(config=config, calibrator=calibrator, threshold=threshold, costs=costs)
