"""The credit policy: how a model's scores become PDs and approve/decline decisions.

Training produces raw scores; the policy, chosen on the validation split only, turns them into
decisions a lender can defend:

1. a **calibration** map from raw scores to default rates (class weighting pushes raw scores
   towards 0.5, and PDs feed grades and pricing, so they must be rates);
2. a **cut-off** on the calibrated PD, chosen by an objective (max F1 of the default class, or
   Youden's J), optionally raised so that no more than `max_decline_rate` of applicants are
   declined.

`PolicyConfig` is its own config (not part of `TrainConfig`) so an analyst can re-choose the
policy on a trained model without retraining it; the Dagster `credit_policy` asset does that.

    policy = choose_policy(y_val, p_val_raw, PolicyConfig(max_decline_rate=0.3))
    p_test = policy.calibrator.transform(p_test_raw)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from risk_app.evaluate.calibration import Calibrator, fit_calibrator
from risk_app.evaluate.metrics import ThresholdObjective, decision_threshold

CalibrationKind = Literal["none", "temperature", "platt", "isotonic"]


class PolicyConfig(BaseModel):
    """How scores become PDs and decisions; every choice is fitted on validation only."""

    model_config = ConfigDict(extra="forbid")

    calibration: CalibrationKind = Field(
        default="platt",
        description="Map fitted on validation from the model's scores to default rates: "
        "none, temperature, platt or isotonic.",
    )
    threshold_objective: ThresholdObjective = Field(
        default="f1",
        description="How the decline cut-off is chosen on validation: max F1 of the default class (f1) "
        "or Youden's J (youden).",
    )
    max_decline_rate: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Optional cap on the share of applications declined (on validation), in (0, 1].",
    )

    def describe(self) -> str:
        """One phrase for cards and summaries: how the cut-off was chosen."""
        text = f"{self.threshold_objective} on the validation split"
        if self.max_decline_rate:
            text += f", decline rate capped at {self.max_decline_rate:.0%}"
        return text


@dataclass(frozen=True)
class ChosenPolicy:
    """The fitted calibration and the cut-off it leads to."""

    config: PolicyConfig
    calibrator: Calibrator
    threshold: float


def choose_policy(
    y_val: Sequence[int] | np.ndarray, p_val_raw: Sequence[float] | np.ndarray, config: PolicyConfig
) -> ChosenPolicy:
    """Fit the calibration on validation, then choose the cut-off on the calibrated scores.

    The order matters: the saved model's PDs and its cut-off must agree, so the cut-off is
    chosen on exactly the PDs the model will report.
    """
    calibrator = fit_calibrator(config.calibration, np.asarray(y_val), np.asarray(p_val_raw))
    p_val = calibrator.transform(p_val_raw)
    threshold = decision_threshold(y_val, p_val, config.threshold_objective, config.max_decline_rate)
    return ChosenPolicy(config=config, calibrator=calibrator, threshold=threshold)
