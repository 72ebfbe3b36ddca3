"""Benchmark: reason codes on the prefix cache against full occlusion, side by side.

    python bench/reason_codes_cache.py                          # 2,000 rows, tiny default model
    python bench/reason_codes_cache.py --rows 2000 --threads 1 --model /path/to/artifact
    python bench/reason_codes_cache.py --rows 2000 --command-rows 20000   # the command on 20k rows

One run, in order, on one application file resampled from the German data (fresh ids):
  1. in process, the scoring path's call (`reason_codes` on the declined rows, their scores
     given) with `prefix_cache=False` (every occluded text scored) and with the cache: seconds,
     CPU seconds, declined rows per second, and how far apart the two tables are (largest
     strength difference over every field of every row, same top-4 reason fields);
  2. `risk-app score` on the file (or one of `--command-rows`) as a user runs it (4 reason
     codes), one fresh process each, with the cache switched off and on: wall and CPU seconds,
     rows per second.

The table goes to docs/performance.md (section reason-codes-cache). The machine's cores may be
shared: CPU seconds are the figure other people's load disturbs least.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_label  # noqa: E402
from bench.markdown import replace_section  # noqa: E402
from bench.scoring_throughput import make_file, train_model  # noqa: E402

# The command with the cache's default switched off: the same CLI, full occlusion.
NO_CACHE = (
    "import risk_app.explain.reasons as r; r.reason_codes.__kwdefaults__['prefix_cache'] = False; "
    "from pipelines.cli import app; app()"
)
WITH_CACHE = "from pipelines.cli import app; app()"


def in_process(model_dir: Path, source: Path) -> tuple[list[str], dict[str, float]]:
    """Rows of the in-process table, and the agreement figures."""
    from risk_app.data.load import load_applications
    from risk_app.data.validate import validate_applications
    from risk_app.explain.reasons import reason_codes
    from risk_app.registry.artifact import load_risk_model
    from risk_app.scoring.service import model_fields

    model = load_risk_model(model_dir)
    frame = validate_applications(load_applications(source), str(source), require_target=False).valid
    p = model.predict_proba(frame)
    declined = p >= model.threshold
    rows, codes = [], {}
    for cache in (False, True):
        wall, cpu = time.perf_counter(), time.process_time()
        codes[cache] = reason_codes(
            frame.loc[declined], model, top_k=4, only_declined=False, field_order=model_fields(model),
            spec=model.dataset_spec, scores=p[declined], prefix_cache=cache,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        name = "prefix cache" if cache else "full occlusion (every text scored)"
        n = int(declined.sum())
        rows.append(f"| {name} | {n:,} | {wall:.1f} | {cpu:.1f} | {n / wall:,.1f} | {n / cpu:,.1f} |")
    old, new = codes[False], codes[True]
    fields = [f"reason_{k}_field" for k in range(1, 5)]
    agreement = {
        "declined": float(declined.sum()),
        "max_diff": float(
            np.nanmax(np.abs(old.long["strength"].to_numpy() - new.long["strength"].to_numpy()))
        ),
        "same_top4": float((old.wide[fields].fillna("-") == new.wide[fields].fillna("-")).all(axis=1).mean()),
    }
    return rows, agreement


def command(model_dir: Path, source: Path, work: Path, cache: bool, threads: int | None) -> str:
    """One fresh `risk-app score` process; a table row with its wall and CPU seconds."""
    env = {**os.environ, "RISK_APP_HOME": str(work / "home"), "DAGSTER_HOME": str(work / "dagster")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    out = work / f"scored_{int(cache)}.parquet"
    args = ["score", "-i", str(source), "-o", str(out), "--model", str(model_dir), "--overwrite"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    code = WITH_CACHE if cache else NO_CACHE
    subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = int(source.name.split("_")[1].split(".")[0])
    name = f"`risk-app score`, {'prefix cache' if cache else 'full occlusion'}"
    return f"| {name} | {rows:,} | {wall:.1f} | {cpu:.1f} | {rows / wall:,.1f} | {rows / cpu:,.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000, help="Rows of the in-process comparison.")
    parser.add_argument(
        "--command-rows", type=int, default=None, help="Rows of the command comparison (default: --rows)."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch/OMP threads (default: torch's).")
    parser.add_argument("--model", type=Path, default=None, help="Artifact folder (default: train one).")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "risk_app_reasons_bench"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RISK_APP_HOME": str(work / "home"), "DAGSTER_HOME": str(work / "dagster")}
    model = args.model or train_model(work / "home", env)
    source = make_file(args.rows, work)
    lines, agreement = in_process(model, source)
    for line in lines:
        print(line, flush=True)
    big = make_file(args.command_rows, work) if args.command_rows else source
    for cache in (False, True):
        lines.append(command(model, big, work, cache, args.threads))
        print(lines[-1], flush=True)
    write_doc(lines, agreement, args)


def write_doc(lines: list[str], agreement: dict[str, float], args: argparse.Namespace) -> None:
    section = "\n".join(
        [
            f"## Reason codes: prefix cache against full occlusion, on {machine_label('cpu')}",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
            f"`python bench/reason_codes_cache.py {' '.join(sys.argv[1:])}` with the tiny default model "
            "(`risk-app train`: tiny-qwen2, lora) on a file resampled from the German data. In process: "
            "the scoring path's call, `reason_codes` on the declined rows with their scores given (rows = "
            "declined rows). The command: the whole `risk-app score` with 4 reason codes, start-up included "
            "(rows = all rows). CPU seconds are the figure the load of a shared machine disturbs least.",
            "",
            "| path | rows | wall s | CPU s | rows/s | rows per CPU s |",
            "|---|---|---|---|---|---|",
            *lines,
            "",
            f"Same table: over {agreement['declined']:,.0f} declined rows and every field, the largest "
            f"strength difference between the cache and full occlusion is {agreement['max_diff']:.1e}; "
            f"the top-4 reason fields are the same for {agreement['same_top4']:.1%} of the rows.",
        ]
    )
    replace_section(ROOT / "docs" / "performance.md", "reason-codes-cache", section, header="# Performance\n")
    print(section)


if __name__ == "__main__":
    main()
