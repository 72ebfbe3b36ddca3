"""Fixtures for the augmentation tests: 200 validated applications and their examples table."""

from __future__ import annotations

import pandas as pd
import pytest

from risk_app.augment import AugmentConfig, AugmentResult, augment_training_examples
from risk_app.data.examples import build_training_examples
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.paths import DEFAULT_DATASET

N_ROWS = 200


@pytest.fixture(scope="session")
def valid_df() -> pd.DataFrame:
    """200 rows of the vendored data set, validated (contract-typed, with `default`)."""
    raw = load_applications(DEFAULT_DATASET).head(N_ROWS)
    return validate_applications(raw, "germancredit.csv").valid


@pytest.fixture(scope="session")
def examples_df(valid_df: pd.DataFrame) -> pd.DataFrame:
    return build_training_examples(valid_df, seed=7)


@pytest.fixture(scope="session")
def run_augment(examples_df: pd.DataFrame, valid_df: pd.DataFrame):
    """Augment the shared examples with a config given as keyword arguments (cached per config)."""
    cache: dict[str, AugmentResult] = {}

    def run(**overrides: object) -> AugmentResult:
        config = AugmentConfig.from_dict({"enabled": True, **overrides})
        key = config.model_dump_json()
        if key not in cache:
            cache[key] = augment_training_examples(examples_df, valid_df, config)
        return cache[key]

    return run


def augmented_rows(result: AugmentResult) -> pd.DataFrame:
    return result.frame[result.frame["augmented"]]


def source_text(examples_df: pd.DataFrame) -> dict[str, str]:
    return dict(zip(examples_df["application_id"], examples_df["text"], strict=True))
