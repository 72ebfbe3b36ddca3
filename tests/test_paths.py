"""Each RISK_APP_HOME gets its own MLflow store, even within one process."""

from pathlib import Path

import pytest

from risk_app import paths
from risk_app.registry.mlflow_registry import configure_mlflow


def test_mlflow_store_follows_the_home_after_mlflow_was_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "_USER_TRACKING_URI", None)
    monkeypatch.setenv("RISK_APP_HOME", str(tmp_path / "a"))
    configure_mlflow()  # MLflow now writes MLFLOW_TRACKING_URI into os.environ
    monkeypatch.setenv("RISK_APP_HOME", str(tmp_path / "b"))
    assert str(tmp_path / "b") in paths.mlflow_tracking_uri()


def test_a_user_tracking_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "_USER_TRACKING_URI", "http://mlflow.internal:5000")
    assert paths.mlflow_tracking_uri() == "http://mlflow.internal:5000"
