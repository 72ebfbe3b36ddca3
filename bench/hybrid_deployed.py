"""The deployed hybrid against LightGBM: the same `train_run` a user runs, over several splits.

Unlike `bench/accuracy.py`, which stacks scores inside the benchmark, this trains what would be
deployed — `risk-app train --hybrid logistic` — so the numbers are those of the packaged model:
the run's own evaluation of the hybrid on test, beside the LLM alone (row `llm_alone`), LightGBM and
logistic regression on the same split. Prints a markdown table (mean ± std over the splits and
the paired hybrid − LightGBM difference with its 95 % t interval) for docs/accuracy.md.

    .venv/bin/python bench/hybrid_deployed.py --seeds 0 1 2 3 4
    .venv/bin/python bench/hybrid_deployed.py --base-model qwen2.5-coder-0.5b --method freeze \
        --param n_trainable_layers=0 --epochs 30 --precision bf16 --test-from-feature-cache --seeds 0 1 2

`--test-from-feature-cache` (head-on-frozen-features runs only) takes the test split's scores
from the feature cache (`var/features`, e.g. filled on a GPU by bench/gpu/frozen_features.py)
through the trained head instead of running the frozen base over the test texts: the same
numbers up to the cache's precision (tests/finetune/test_features.py), without a 0.5B forward
pass per text on a CPU. Everything else is the deployed path.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from scipy import stats

ROWS = ("hybrid", "llm_alone", "lightgbm", "logistic")


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
    parser.add_argument("--test-from-feature-cache", action="store_true", help="see the module docstring")
    return parser.parse_args()


def score_test_from_cache(config: Any) -> None:
    """Make the fine-tuning stage score test texts from the feature cache (see the docstring)."""
    import torch

    from risk_app.finetune.features import cached_features
    from risk_app.finetune.objectives.frozen_features import feature_settings
    from risk_app.run import stages

    def refuse(base: str, _settings: Any) -> Any:
        raise SystemExit(f"--test-from-feature-cache: a test text of {base} is not in the feature cache")

    def from_cache(model: Any, tokenizer: Any, texts: Any, *_: Any, **__: Any) -> Any:
        features = cached_features(
            config.base_model, list(texts), settings=feature_settings(config), loader=refuse
        )
        weight = model.score.weight
        with torch.no_grad():
            logits = model.score(torch.tensor(features["last"], dtype=weight.dtype, device=weight.device))
        return torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()

    stages.predict_proba = from_cache  # type: ignore[assignment]


def one_split(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Train, stack, evaluate and package one run on the split of `seed`; its test AUCs."""
    from data_contracts.spec import load_spec
    from risk_app import workflow
    from risk_app.finetune.config import TrainConfig
    from risk_app.run import evaluate as evaluate_stage

    spec = load_spec(args.dataset)
    params = dict(p.split("=", 1) for p in args.param)
    values = {k: json.loads(v) if v[:1].isdigit() or v[:1] in "[{" else v for k, v in params.items()}
    config = TrainConfig(
        method=args.method, method_params=values, base_model=args.base_model, epochs=args.epochs,
        max_length=args.max_length, precision=args.precision, seed=seed,
        **({"learning_rate": args.lr} if args.lr else {}),
    )  # fmt: skip
    if args.test_from_feature_cache:
        score_test_from_cache(config)
    # The registry's current champion is not part of this comparison (and re-scoring a 0.5B
    # champion on every split costs minutes on a CPU): leave its row out.
    evaluate_stage._champion_on_test = lambda *_: None  # type: ignore[assignment]
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
        "| seed | hybrid | llm_alone | lightgbm | logistic | stacker | seconds |",
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
