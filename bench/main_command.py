"""Benchmark: wall time and peak memory of the README's main command → docs/performance.md.

    python bench/main_command.py            # fresh RISK_APP_HOME each run, this machine

Runs, side by side in one go and each in a fresh home (cold: tiny model built, MLflow and
DuckDB created):
  1. `risk-app run`   — the whole chain through Dagster (train job + scoring job);
  2. `risk-app train` — the same training through the plain library path, no Dagster;
so the Dagster layer's cost is visible. Peak memory is the sampled RSS of the whole process
tree. Target: the main command under 5 minutes on a 2-core machine.
"""

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_label  # noqa: E402
from bench.markdown import replace_section  # noqa: E402
from risk_app.finetune.config import TrainConfig  # noqa: E402

RISK_APP = str(Path(sys.executable).with_name("risk-app"))
COMMANDS = {
    "risk-app run (Dagster: train + score)": [RISK_APP, "run"],
    "risk-app train (library path, no Dagster)": [RISK_APP, "train"],
}


def measure(command: list[str]) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) of a command and all its children."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RISK_APP_HOME": home, "DAGSTER_HOME": str(Path(home) / "dagster_home")}
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        root, peak = psutil.Process(proc.pid), 0.0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.1)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{command} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return {"wall_seconds": wall, "peak_rss_mib": peak}


def main() -> None:
    rows = {name: measure(cmd) for name, cmd in COMMANDS.items()}
    defaults = TrainConfig()
    lines = [
        f"## Main command on {machine_label('cpu')}",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/main_command.py` "
        f"(Python {platform.python_version()}), "
        f"each command cold in a fresh `RISK_APP_HOME`: bundled German credit (1000 rows), `tiny-qwen2`, "
        f"method `{defaults.method}`, {defaults.epochs} epochs. Target: under 5 minutes.",
        "",
        "| command | wall time (s) | peak RSS, process tree (MiB) |",
        "|---|---|---|",
        *[f"| {name} | {r['wall_seconds']:.1f} | {r['peak_rss_mib']:.0f} |" for name, r in rows.items()],
    ]
    section = "\n".join(lines) + "\n"
    replace_section(ROOT / "docs" / "performance.md", "main-command", section, header="# Performance\n")
    print(section)


if __name__ == "__main__":
    main()
