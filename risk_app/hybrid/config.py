"""The hybrid option of a training run and the section it adds to the run record.

`HybridConfig` is what a user sets (`--hybrid logistic` on the CLI, `hybrid` in the Dagster
launchpad); unknown keys and unknown stackers are refused with the allowed values.
`tabular_only` deploys LightGBM by itself (`tabular:lightgbm` in every report): the LLM is
still trained and evaluated beside it, but the deployed PD is LightGBM's alone.
`HybridFacts` is what `stack_hybrid` records: the fitted stacker, its cross-fitted validation
AUC beside each input's, and where the stacked scores and the fitted parts are.

    HybridConfig.parse("logistic")        # or {"stacker": "convex", "n_folds": 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from risk_app.config_errors import validated
from risk_app.errors import ConfigError
from risk_app.evaluate.calibration import CalibrationKind

HybridStacker = Literal["none", "logistic", "convex", "tabular_only"]
TABULAR_LABEL = "tabular:lightgbm"  # how reports name a run that deploys LightGBM alone
HYBRID_STACKERS: tuple[str, ...] = get_args(HybridStacker)
# Where a hybrid's parts lie: the folder in the run and in the artifact, the stacker's file, the
# stacked scores in the run; and the evaluation row of the LLM alone, beside the baselines.
HYBRID_DIR = "hybrid"
STACKER_FILE = "stacker.json"
PREDICTIONS_FILE = "hybrid_predictions.parquet"
LLM_ROW = "llm_alone"


class HybridConfig(BaseModel):
    """Whether and how the LLM's PD is stacked with a tabular LightGBM after fine-tuning."""

    model_config = ConfigDict(extra="forbid")

    stacker: HybridStacker = Field(
        default="none",
        description="none (the LLM alone), logistic (regression on both logits: weights and "
        "recalibrates), convex (w * LLM + (1 - w) * LightGBM, w by validation AUC) or "
        "tabular_only (LightGBM alone is deployed; the LLM is trained and reported beside it).",
    )
    n_folds: int = Field(
        default=5, ge=2, le=20, description="Cross-fitting folds within validation (honest stacked scores)."
    )
    llm_calibration: CalibrationKind = Field(
        default="platt",
        description="Calibration of the LLM's raw score before stacking (fitted on validation).",
    )

    @property
    def enabled(self) -> bool:
        return self.stacker != "none"

    @property
    def tabular_only(self) -> bool:
        """The deployed PD is LightGBM's alone (scoring and reasons need no LLM forward pass)."""
        return self.stacker == "tabular_only"

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | HybridConfig | None) -> HybridConfig:
        """A config from a stacker name, a dict of fields or a config; one clear error line."""
        if isinstance(value, HybridConfig):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            if value not in HYBRID_STACKERS:
                raise ConfigError(
                    f"unknown hybrid stacker {value!r}; choose one of {', '.join(HYBRID_STACKERS)}"
                )
            return cls(stacker=value)  # type: ignore[arg-type]
        return validated(cls, value, "hybrid config")


class HybridFacts(BaseModel):
    """What the hybrid stage fitted, how it scored on validation, and where its files are."""

    model_config = ConfigDict(extra="forbid")

    config: HybridConfig
    stacker: dict[str, Any] = Field(description="The stacker fitted on all of validation (Hybrid.params).")
    llm_calibration: dict[str, Any] = Field(description="The LLM's calibrator (Calibrator.to_dict).")
    tabular_features: list[str] = Field(description="The spec's columns LightGBM reads.")
    val_auc_oof: float = Field(description="Validation ROC AUC of the cross-fitted (out-of-fold) stacked PD.")
    val_auc_llm: float = Field(description="Validation ROC AUC of the LLM alone.")
    val_auc_tabular: float = Field(description="Validation ROC AUC of LightGBM alone.")
    predictions_path: str = Field(
        description="Parquet of stacked (validation: out-of-fold) and input scores."
    )
    model_dir: str = Field(
        description="Folder with the fitted tabular model and stacker (hybrid/ in the artifact)."
    )
