"""`AugmentConfig`: which augmenters run on the training split, how much, under which seed.

Dagster's launchpad and the CLI pass a plain dict; `AugmentConfig.from_dict` turns any problem
(unknown key, unknown augmenter name, out-of-range number) into one `ConfigError` line that
names the key and lists what is allowed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risk_app.augment.base import list_augmenters
from risk_app.config_errors import validated

DEFAULT_AUGMENTERS: tuple[str, ...] = ("number_perturbation", "clause_shuffle", "financial_synonyms")


class AugmentConfig(BaseModel):
    """Augmentation of the training split (validation and test are never augmented)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Add augmented copies of training rows. Off by default: it changes the training "
        "distribution, so compare runs with and without.",
    )
    augmenters: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AUGMENTERS),
        description="Registered augmenter names applied to every copy (each at its stage: row, "
        "layout, text). 'char_noise' is available but not in the default list.",
    )
    copies_per_row: int = Field(
        default=1, ge=0, le=50, description="Augmented copies made from each selected training row."
    )
    ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of training rows selected for augmentation (seeded).",
    )
    number_scale: float = Field(
        default=0.1,
        ge=0.0,
        le=0.5,
        description="number_perturbation: relative move, uniform in ±scale, of the spec's perturb columns.",
    )
    perturb_protected: bool = Field(
        default=False,
        description="number_perturbation: also move protected numeric columns marked perturb (e.g. age).",
    )
    synonym_prob: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="financial_synonyms: share of lexicon words in a text swapped (at least one).",
    )
    char_noise_prob: float = Field(
        default=0.05,
        ge=0.0,
        le=0.3,
        description="char_noise: share of letter-only words that get one keyboard typo.",
    )
    seed: int = Field(default=42, ge=0, description="Seed for row selection and every augmenter's draws.")
    n_examples: int = Field(
        default=3, ge=0, le=50, description="Before/after pairs kept in the result for run metadata."
    )

    @field_validator("augmenters")
    @classmethod
    def _known_augmenters(cls, names: list[str]) -> list[str]:
        allowed = list_augmenters()
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise ValueError(f"unknown augmenter(s) {unknown}; allowed: {', '.join(allowed)}")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"augmenter(s) listed twice: {duplicates}")
        return names

    @model_validator(mode="after")
    def _something_to_do(self) -> AugmentConfig:
        if self.enabled and not self.augmenters:
            raise ValueError(
                f"augmentation is enabled but no augmenters are listed; allowed: {list_augmenters()}"
            )
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        """Build from a plain dict, turning pydantic errors into one clear ConfigError."""
        return validated(cls, values, "augmentation config")


__all__ = ["DEFAULT_AUGMENTERS", "AugmentConfig"]
