"""A small labelled file and one finished run on it, shared by the run-stage tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec


@pytest.fixture
def small_file(risk_app_home: Path) -> Path:
    path = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(240, random_state=1).to_csv(path, index=False)
    return path
