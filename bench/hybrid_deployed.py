"""The deployed hybrid against LightGBM: the same `train_run` a user runs, over several splits.

Unlike `bench/accuracy.py`, which stacks scores inside the benchmark, this trains what would be
deployed — `risk-app train --hybrid logistic` — so the numbers are those of the packaged model:
the run's own evaluation of the hybrid on test, beside the LLM alone (row `llm`), LightGBM and
logistic regression on the same split. Prints a markdown table (mean ± std over the splits and
the paired hybrid − LightGBM difference with its 95 % t interval) for docs/accuracy.md.

    .venv/bin/python bench/hybrid_deployed.py --seeds 0 1 2 3 4
    .venv/bin/python bench/hybrid_deployed.py --base-model qwen2.5-coder-0.5b --method freeze \
        --param n_trainable_layers=0 --epochs 30 --precision bf16 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from scipy import stats

ROWS = ("hybrid", "llm", "lightgbm", "logistic")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="german_credit")
    parser.add_argument("--base-model", default="tiny-qwen2")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--param", action="append", default=[], help="method parameter key=value")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--hybrid", default="logistic", choices=["logistic", "convex"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    return parser.parse_args()


def one_split(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Train, stack, evaluate and package one run on the split of `seed`; its test AUCs."""
    from data_contracts.spec import load_spec
    from risk_app import workflow
    from risk_app.finetune.config import TrainConfig

    spec = load_spec(args.dataset)
    params = dict(p.split("=", 1) for p in args.param)
    values = {k: json.loads(v) if v[:1].isdigit() or v[:1] in "[{" else v for k, v in params.items()}
    config = TrainConfig(
        method=args.method, method_params=values, base_model=args.base_model, epochs=args.epochs,
        max_length=args.max_length, precision=args.precision, seed=seed,
        **({"learning_rate": args.lr} if args.lr else {}),
    )  # fmt: skip
    started = time.perf_counter()
    validation = workflow.ingest_and_validate(spec.data_path, spec=spec)
    examples = workflow.prepare_examples(validation.valid, seed=seed, spec=spec)
    record = workflow.train_run(
        validation.valid, examples, config, spec=spec, source=str(spec.data_path), split_seed=seed,
        progress=False, hybrid=args.hybrid,
    )  # fmt: skip
    evaluation, hybrid = record.need("evaluation"), record.need("hybrid")
    aucs = {"hybrid": evaluation.test.roc_auc} | {r: evaluation.baselines[r].roc_auc for r in ROWS[1:]}
    return {"seed": seed, "auc": aucs, "stacker": hybrid.stacker, "val_auc_oof": hybrid.val_auc_oof,
            "seconds": time.perf_counter() - started, "artifact": record.need("artifact").path}  # fmt: skip


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: test AUC per model (mean ± std) and the paired hybrid − LightGBM difference."""
    lines = ["| model | test ROC AUC (mean ± std) |", "|---|---|"]
    for row in ROWS:
        values = np.array([r["auc"][row] for r in results])
        lines.append(f"| {row} | {values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f} |")
    diff = np.array([r["auc"]["hybrid"] - r["auc"]["lightgbm"] for r in results])
    if len(diff) > 1:
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        interval = f"[{diff.mean() - half:+.4f}, {diff.mean() + half:+.4f}]"
    else:
        interval = "(one split)"
    lines += ["", f"Paired hybrid − LightGBM: {diff.mean():+.4f}, 95 % t interval {interval}; "
              f"hybrid above LightGBM on {int((diff > 0).sum())} of {len(diff)} splits."]  # fmt: skip
    lines += [
        "",
        "| seed | hybrid | llm | lightgbm | logistic | stacker | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        stacker = ", ".join(f"{k}={v:.3f}" for k, v in r["stacker"].items() if isinstance(v, float))
        cells = " | ".join(f"{r['auc'][row]:.4f}" for row in ROWS)
        lines.append(f"| {r['seed']} | {cells} | {stacker} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    from risk_app.quiet import quiet_libraries

    quiet_libraries()
    args = _args()
    results = []
    for seed in args.seeds:
        results.append(one_split(args, seed))
        print(json.dumps(results[-1]), flush=True)
    print(f"\n{args.dataset} / {args.base_model} / {args.method} {args.param} / hybrid {args.hybrid}\n")
    print(table(results))


if __name__ == "__main__":
    main()
