"""Typed launchpad configs. Each mirrors a `risk_app` config, which re-validates it.

Dagster rejects unknown keys in the launchpad; the `risk_app` config classes then check
ranges and method parameters and turn problems into one clear message.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from risk_app import paths
from risk_app.finetune.config import TrainConfig

# One source of truth for training defaults: the library's TrainConfig.
_TRAIN_DEFAULTS = {name: field.default for name, field in TrainConfig.model_fields.items()}


class IngestConfig(dg.Config):
    path: str = Field(
        default=str(paths.DEFAULT_DATASET),
        description="CSV or Parquet file of loan applications (default: bundled German credit).",
    )


class PreparationConfig(dg.Config):
    seed: int = Field(default=42, description="Seed of the stratified 70/15/15 split.")
    exclude_fields: list[str] = Field(
        default_factory=list,
        description="Columns left out of the serialized text, e.g. the protected attributes.",
    )


class AugmentationConfig(dg.Config):
    enabled: bool = Field(default=False, description="Augment the training split with nlpaug.")
    augmenters: list[str] = Field(
        default_factory=lambda: ["financial_synonyms", "number_perturbation", "clause_shuffle"],
        description="Augmenters by name; `risk-app augmenters` lists them.",
    )
    copies_per_row: int = Field(default=1, description="Augmented copies per selected training row.")
    ratio: float = Field(default=1.0, description="Share of training rows to augment (0-1).")
    number_scale: float = Field(default=0.1, description="Relative scale of number perturbation.")
    seed: int = Field(default=42, description="Seed of the augmenters.")


class TrainingConfig(dg.Config):
    method: str = Field(
        default=_TRAIN_DEFAULTS["method"], description="Fine-tuning method; `risk-app methods` lists them."
    )
    method_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the method, checked by its own config class."
    )
    base_model: str = Field(
        default=_TRAIN_DEFAULTS["base_model"],
        description="Hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct), local folder, .gguf file, or tiny-qwen2.",
    )
    epochs: int = Field(
        default=_TRAIN_DEFAULTS["epochs"], description="Maximum epochs; early stopping on validation AUC."
    )
    learning_rate: float = Field(
        default=_TRAIN_DEFAULTS["learning_rate"], description="Peak AdamW learning rate."
    )
    batch_size: int = Field(default=_TRAIN_DEFAULTS["batch_size"], description="Training batch size.")
    max_length: int = Field(
        default=_TRAIN_DEFAULTS["max_length"], description="Maximum tokens per serialized application."
    )
    calibration: str = Field(
        default=_TRAIN_DEFAULTS["calibration"],
        description="PD calibration fitted on validation: none, temperature, platt, isotonic.",
    )
    threshold_objective: str = Field(
        default=_TRAIN_DEFAULTS["threshold_objective"],
        description="Decline threshold chosen on validation by: f1 or youden.",
    )
    max_decline_rate: float | None = Field(
        default=None, description="Optional credit-policy cap on the share of applications declined (0-1]."
    )
    seed: int = Field(
        default=_TRAIN_DEFAULTS["seed"], description="Seed for weights init, shuffling and dropout."
    )


class ScoringInputConfig(dg.Config):
    input_path: str = Field(
        default=str(paths.DEFAULT_DATASET), description="CSV or Parquet file of applications to score."
    )


class ScoringConfig(dg.Config):
    output_path: str = Field(
        default=str(paths.home() / "outputs" / "scores.parquet"),
        description="Where to write the scores (.parquet or .csv).",
    )
    model: str = Field(default="champion", description="Model alias, version number or local folder.")
    reason_codes: int = Field(
        default=4, description="Principal reasons listed for each declined application (0 = none)."
    )
