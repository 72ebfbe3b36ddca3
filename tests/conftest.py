"""Shared test fixtures.

Every test runs with RISK_APP_HOME pointing at its own fresh folder, so no test reads or
writes the developer's `var/` (warehouse, MLflow, models) or another test's state.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def risk_app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("risk_app_home")
    monkeypatch.setenv("RISK_APP_HOME", str(home))
    return home
