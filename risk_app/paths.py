"""Where risk_app keeps its state.

Everything lives under one home folder, `$RISK_APP_HOME` or `<repo>/var`, so a run is easy to
inspect, back up or delete. MLflow defaults to a sqlite backend there; `MLFLOW_TRACKING_URI`
in the environment points it at a real server instead.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# Old name of the default data set's file: code reads `data_contracts.spec.load_spec().data_path`
# (the spec declares its file); left for the callers not yet moved (rlhf's reward model, tests).
DEFAULT_DATASET = PACKAGE_DIR / "datasets" / "german_credit" / "german_credit.csv"


# mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI back into os.environ, so reading the variable
# later would return our own last setting (and pin every later home to the first one's store).
# The user's choice is read once, before risk_app ever calls MLflow.
_USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


def home() -> Path:
    root = Path(os.environ.get("RISK_APP_HOME", REPO_ROOT / "var")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    return home() / "warehouse.duckdb"


def models_dir() -> Path:
    return _sub("models")


def runs_dir() -> Path:
    return _sub("runs")


def landing_dir() -> Path:
    return _sub("landing")


def outputs_dir() -> Path:
    return _sub("outputs")


def mlflow_tracking_uri() -> str:
    if _USER_TRACKING_URI:
        return _USER_TRACKING_URI
    return f"sqlite:///{_sub('mlflow') / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return (_sub("mlflow") / "artifacts").as_uri()
