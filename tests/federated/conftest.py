"""Fixtures for the federated tests: small lenders cut from the bundled German credit file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app.federated.config import FederatedConfig
from risk_app.federated.lender import LenderSite
from risk_app.federated.simulation import write_lender_sites
from risk_app.paths import DEFAULT_DATASET

# A config that trains in seconds on the tiny model: LoRA, short texts, a few dozen rows.
QUICK_TRAIN = {"method": "lora", "max_length": 48, "batch_size": 16, "max_train_rows": 32, "device": "cpu"}


def quick_config(**overrides: object) -> FederatedConfig:
    values: dict[str, object] = {"rounds": 1, "min_lenders": 2, "train": dict(QUICK_TRAIN)}
    values.update(overrides)
    return FederatedConfig.from_dict(values)


@pytest.fixture
def german_rows() -> pd.DataFrame:
    """The bundled file's rows as a lender would hold them (the spec's own columns)."""
    return pd.read_csv(DEFAULT_DATASET)


@pytest.fixture
def make_sites(tmp_path: Path, german_rows: pd.DataFrame) -> Callable[[int, int], list[LenderSite]]:
    """`make_sites(n, rows)`: n lender folders of `rows` consecutive applications each."""

    def make(n: int, rows: int) -> list[LenderSite]:
        parts = [german_rows.iloc[k * rows : (k + 1) * rows].reset_index(drop=True) for k in range(n)]
        return write_lender_sites(parts, load_spec("german_credit"), tmp_path / "consortium")

    return make
