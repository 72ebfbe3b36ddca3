"""Shared test fixtures.

Every test runs with RISK_APP_HOME pointing at its own fresh folder, so no test reads or
writes the developer's `var/` (warehouse, MLflow, models) or another test's state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# The tiny models train fastest on one thread; two threads fight with the test runner and
# any other process for the machine's two cores (measured: up to 10x slower under load).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def risk_app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("risk_app_home")
    monkeypatch.setenv("RISK_APP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def _tiny_qwen2_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built once per test session (a few seconds), outside any test's home.
    from risk_app.models.tiny import ensure_tiny_qwen2

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISK_APP_HOME", str(tmp_path_factory.mktemp("tiny_qwen2_cache")))
        return ensure_tiny_qwen2()


@pytest.fixture
def tiny_qwen2(risk_app_home: Path, _tiny_qwen2_build: Path) -> Path:
    """The tiny Qwen2 base model, built once per session and linked into this test's home,
    so `load_classifier("tiny-qwen2")` finds it without rebuilding."""
    link = risk_app_home / "models" / "tiny-qwen2"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(_tiny_qwen2_build, target_is_directory=True)
    return link
