"""Benchmark: the fine-tune stage in one process vs two gloo processes (DDP) on this CPU.

    python bench/distributed_cpu.py [--epochs 1] [--method lora] [--rows 0]
    python bench/distributed_cpu.py --every-method [--rows 120]

Trains the tiny default model on the bundled German credit file (the same split, seed and
config) once in-process and once through `torchrun` with two ranks, and reports for each:
the wall time of the whole stage (for two ranks: process start, model load in each rank,
training, rank 0's saves), the epoch's own seconds, optimizer steps, train loss and validation
AUC, with the load average before and after. The single process runs twice, on all cores and
on one thread, because on a loaded machine two intra-op threads can be far slower than one.
With `--every-method`, each method whose objective is the supervised loop trains once in one
process and once on two ranks, to show they agree. Results go to docs/scaling.md.

On a 2-core machine two ranks share the cores the single process already had, so this shows
that the multi-process path gives the same model, not that it is faster; the speed-up needs
one GPU per rank (issue 12).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from bench.markdown import replace_section  # noqa: E402
from data_contracts.spec import load_spec  # noqa: E402
from risk_app.data.examples import build_training_examples  # noqa: E402
from risk_app.data.load import load_applications  # noqa: E402
from risk_app.data.validate import validate_applications  # noqa: E402
from risk_app.finetune.config import TrainConfig  # noqa: E402
from risk_app.finetune.registry import list_methods  # noqa: E402
from risk_app.finetune.resume import TRAINER_STATE  # noqa: E402
from risk_app.run import stages  # noqa: E402
from risk_app.run.launch import fine_tune_stage, read_launch_facts  # noqa: E402
from risk_app.run.plan import plan_training  # noqa: E402

DOC = ROOT / "docs" / "scaling.md"


def one_run(nproc: int, threads: int, config: TrainConfig, rows: int) -> dict[str, Any]:
    """One fine-tune stage; `threads` per process (the ranks get the cores split between them)."""
    torch.set_num_threads(threads)
    spec = load_spec("german_credit")
    valid = validate_applications(
        load_applications(spec.data_path, spec=spec), source="bench", spec=spec
    ).valid
    valid = valid.head(rows) if rows else valid
    examples = build_training_examples(valid, seed=config.seed, spec=spec)
    record = stages.start_run(valid, examples, spec=spec, method=config.method)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    record = fine_tune_stage(record, examples, plan_training(config, nproc), progress=False)
    wall = time.perf_counter() - started
    training = record.need("training")
    last = Path(record.run_dir) / "checkpoints" / f"epoch-{training.epochs_run}" / TRAINER_STATE
    steps = int(torch.load(last, weights_only=True)["counters"][0])
    facts = read_launch_facts(record.run_dir) or {"backend": "none", "strategy": "single"}
    return {
        "nproc": nproc, "threads": threads, "backend": facts["backend"], "strategy": facts["strategy"],
        "wall": wall, "train_seconds": sum(e.seconds or 0.0 for e in training.history),
        "steps": steps, "train_loss": training.history[-1].train_loss,
        "val_loss": training.history[-1].val_loss or float("nan"),
        "val_auc": training.best_val_auc, "rows": int((examples["split"] == "train").sum()),
        "load": (load_before, os.getloadavg()[0]),
    }  # fmt: skip


def render(results: list[dict[str, Any]], config: TrainConfig) -> str:
    machine = f"CPU {cpu_model()}, {os.cpu_count()} cores"  # threads per run are in the table
    lines = [
        f"### Fine-tune stage, 1 vs 2 processes — {machine}",
        "",
        f"`python bench/distributed_cpu.py --epochs {config.epochs} --method {config.method}`: tiny-qwen2, "
        f"batch {config.batch_size}, {results[0]['rows']} training rows, seed {config.seed}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| processes × threads | backend | strategy | stage wall s | epoch s (train + validate) "
        "| optimizer steps | train loss | val AUC | load avg before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['nproc']} × {r['threads']} | {r['backend']} | {r['strategy']} | {r['wall']:.1f} "
            f"| {r['train_seconds']:.1f} "
            f"| {r['steps']} | {r['train_loss']:.4f} | {r['val_auc']:.4f} "
            f"| {r['load'][0]:.1f} → {r['load'][1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def every_method(rows: int) -> str:
    """Each method whose objective is the supervised loop, 1 process vs 2 ranks: the agreement."""
    lines = [
        f"### Every method, 1 process vs 2 gloo ranks — CPU {cpu_model()}, {os.cpu_count()} cores",
        "",
        f"`python bench/distributed_cpu.py --every-method --rows {rows}`: tiny-qwen2, 1 epoch, batch 8, "
        f"each method's default parameters, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| method | train loss, 1 process | train loss, 2 ranks | val loss, 1 / 2 | val AUC, 1 / 2 |",
        "|---|---|---|---|---|",
    ]
    variants = [(name, {}) for name, _ in list_methods() if name != "rlhf"] + [("lora", {"dropout": 0.0})]
    for name, params in variants:
        config = TrainConfig(method=name, method_params=params, epochs=1, batch_size=8, patience=0)
        one, two = (one_run(nproc, 1, config, rows) for nproc in (1, 2))
        label = f"{name}, `{params}`" if params else name
        lines.append(
            f"| {label} | {one['train_loss']:.7f} | {two['train_loss']:.7f} "
            f"| {one['val_loss']:.5f} / {two['val_loss']:.5f} | {one['val_auc']:.3f} / {two['val_auc']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--method", default="lora")
    parser.add_argument("--rows", type=int, default=0, help="First N valid rows (0: all).")
    parser.add_argument("--every-method", action="store_true", help="The agreement table instead.")
    args = parser.parse_args()
    if args.every_method:
        body = every_method(args.rows or 120)
        print(body)
        replace_section(DOC, "distributed-every-method", body, header="# Scaling\n")
        return
    config = TrainConfig(method=args.method, epochs=args.epochs, patience=0)
    cores = os.cpu_count() or 1
    # One process on all cores, one on one core, and the ranks on their share of the cores
    # (what `launch_env` gives them): the same cores, used three ways.
    runs = [(1, cores), (1, 1), (2, max(1, cores // 2))]
    results = [one_run(nproc, threads, config, args.rows) for nproc, threads in runs]
    body = render(results, config)
    print(body)
    replace_section(DOC, "distributed-cpu", body, header="# Scaling\n")


if __name__ == "__main__":
    main()
