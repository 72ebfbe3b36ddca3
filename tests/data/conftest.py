"""Fixtures for the data-layer tests: the vendored data set as loaded text and as a clean frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.data.load import load_applications
from risk_app.paths import DEFAULT_DATASET


@pytest.fixture(scope="session")
def _raw_default() -> pd.DataFrame:
    return load_applications(DEFAULT_DATASET)


@pytest.fixture
def raw_default(_raw_default: pd.DataFrame) -> pd.DataFrame:
    """The default data set as `load_applications` returns it (all text); a fresh copy per test."""
    return _raw_default.copy()


@pytest.fixture
def small_raw(raw_default: pd.DataFrame) -> pd.DataFrame:
    """The first 30 rows, for tests that corrupt a few cells."""
    return raw_default.head(30).copy()


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.drop(columns=["source_row"], errors="ignore").to_csv(path, index=False)
    return path
