"""Fault injection helpers: run a step in a child process and `kill -9` it at a chosen point.

`run_child(code, home)` runs Python `code` in a fresh interpreter with RISK_APP_HOME=`home`.
The prelude gives the code `kill_before(obj, "attr")` / `kill_after(obj, "attr")`, which
replace a function so the process SIGKILLs itself just before or just after it runs: no
`finally`, no atexit, no flush; the same as `kill -9` from another shell at that instant.
A killed child returns -9; the test then reads what the records hold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from risk_app.paths import DEFAULT_DATASET, REPO_ROOT

PRELUDE = """
import os, signal, sys
def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
def kill_before(owner, attr):
    setattr(owner, attr, _die)
def kill_after(owner, attr):
    original = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        original(*args, **kwargs)
        _die()
    setattr(owner, attr, wrapper)
"""
KILLED = -signal.SIGKILL


def child_env(home: Path) -> dict[str, str]:
    # mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ: an earlier test's store
    # must not leak into this test's child.
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "RISK_APP_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}


def run_child(code: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) after the kill helpers, in a child with its own RISK_APP_HOME."""
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def start_child(code: str, home: Path) -> subprocess.Popen[str]:
    """Like `run_child`, without waiting: for two processes at once."""
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def applications(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """`rows` real applications as text, without the target (as a scoring batch arrives)."""
    frame = pd.read_csv(DEFAULT_DATASET, dtype=str).sample(rows, random_state=seed)
    return frame.drop(columns=["creditability"]).reset_index(drop=True)


@pytest.fixture
def double_model(risk_app_home: Path) -> Path:
    """A fitted logistic 'risk model' folder (tests/scoring/doubles.py): fast to load anywhere."""
    from tests.scoring.doubles import save_double_artifact

    return save_double_artifact(risk_app_home / "double_model", version="double-v1")


@pytest.fixture
def mlflow_store(risk_app_home: Path, _empty_mlflow_db: Path) -> Path:
    """An empty MLflow database at the path risk_app uses for this test's home (the session's
    pre-migrated template from tests/conftest.py, copied again for tests that reset it)."""
    import shutil

    target = risk_app_home / "mlflow" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_mlflow_db, target)
    return target
