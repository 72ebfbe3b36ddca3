"""Loading the Dagster definitions prints no library notices (issue 21 §6: 32 copies of one)."""

from __future__ import annotations

import subprocess
import sys

from risk_app.paths import REPO_ROOT


def test_loading_the_definitions_prints_no_library_notice() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for notice in ("gemm_4bit_forward", "is currently in beta", "FutureWarning"):
        assert notice not in done.stderr, done.stderr[-2000:]
