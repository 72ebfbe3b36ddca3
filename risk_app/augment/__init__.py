"""Augmentation of the training split: nlpaug-based and structured augmenters, by name.

    from risk_app.augment import AugmentConfig, augment_training_examples
    result = augment_training_examples(examples_df, valid_df, AugmentConfig(enabled=True))

Importing this package registers the built-in augmenters (one module each); see
docs/augmentation.md for what each does and why augmented copies cannot leak across splits.
"""

from __future__ import annotations

# Each import registers one augmenter in AUGMENTERS.
from risk_app.augment import noise, numbers, shuffle, synonyms  # noqa: F401
from risk_app.augment.base import AUGMENTERS, get_augmenter, list_augmenters
from risk_app.augment.config import AugmentConfig
from risk_app.augment.pipeline import (
    AugmentationError,
    AugmentResult,
    GroupLeakageError,
    assert_no_group_leakage,
    augment_training_examples,
)
from risk_app.augment.synonyms import canonicalize_synonyms

__all__ = [
    "AUGMENTERS",
    "AugmentConfig",
    "AugmentResult",
    "AugmentationError",
    "GroupLeakageError",
    "assert_no_group_leakage",
    "augment_training_examples",
    "canonicalize_synonyms",
    "get_augmenter",
    "list_augmenters",
]
