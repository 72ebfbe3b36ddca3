"""Federated vs pooled vs local-only: German credit cut into N non-IID lenders (issue 25).

    nice python bench/federated.py --lenders 5 --partition-by dirichlet:0.5 --seeds 3

For each seed the data set is cut into N lenders (`risk_app.federated.partition`, the seed also
moves the partition), every lender splits its own rows 70/15/15, and four kinds of model are
trained with the product's trainer and method:

* **federated** — the consortium in Flower's Simulation Engine (FedAvg, R rounds, E local
  epochs), only the trainable tensors travelling;
* **federated + DP** — the same with client-side clipping and central Gaussian noise, the noise
  multiplier chosen so that the R rounds spend at most `--epsilon` (lender-level, δ 1e-5), and
  SecAgg+;
* **pooled** — one model on all lenders' train rows together (what the consortium would get if
  the rows could be pooled), the same epochs as the federated rounds × local epochs;
* **local-only** — each lender alone on its own rows.

Each model's ROC AUC is measured on each lender's own test split and on the pooled test (the
union of the lenders' test splits). Bytes per round per lender are the sizes of the updates the
server received. The medians and spreads over seeds go to docs/federated.md (section
`federated-bench: <machine>`), the raw numbers to `--json`.

The issue's goals: federated within 0.01 AUC of pooled; every lender's federated AUC above
its local-only AUC; with DP at ε <= 8 within 0.03 of pooled; a LoRA round of the 0.5B under
10 MB per lender (counted from the 0.5B's shapes on the meta device, no weights loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.machine import machine_label
from bench.markdown import replace_section
from data_contracts.spec import load_spec
from risk_app.federated.config import FederatedConfig, Partition
from risk_app.federated.lender import LenderData
from risk_app.federated.partition import describe_partition, partition_applications
from risk_app.federated.privacy import epsilon_spent
from risk_app.federated.product import federated_model
from risk_app.federated.simulation import run_sites, write_lender_sites
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainData
from risk_app.workflow import ingest_and_validate

DOC = Path(__file__).resolve().parent.parent / "docs" / "federated.md"


def noise_for_epsilon(target: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier (to 0.05) whose `rounds` full-participation releases spend <= target."""
    sigma = 0.3
    while epsilon_spent(sigma, 1.0, rounds, delta) > target:
        sigma += 0.05
    return round(sigma, 2)


def auc(labels: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(labels, proba)) if len(np.unique(labels)) == 2 else float("nan")


def score_everywhere(
    model: Any, tokenizer: Any, lenders: list[LenderData], train: TrainConfig
) -> dict[str, float]:
    """AUC on each lender's test split and on their union."""
    out, ys, ps = {}, [], []
    for k, data in enumerate(lenders, start=1):
        proba = predict_proba(model, tokenizer, data.test_texts, train.eval_batch_size, train.max_length)
        out[f"lender-{k}"] = auc(data.test_labels, proba)
        ys.append(data.test_labels)
        ps.append(proba)
    out["pooled"] = auc(np.concatenate(ys), np.concatenate(ps))
    return out


def centralized(lenders: list[LenderData], train: TrainConfig) -> dict[str, float]:
    """One model on every lender's train rows (validation pooled too)."""
    data = TrainData.build(
        [t for d in lenders for t in d.train.train_texts],
        np.concatenate([d.train.train_labels for d in lenders]),
        [t for d in lenders for t in d.train.val_texts],
        np.concatenate([d.train.val_labels for d in lenders]),
    )
    result = train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, train, None, progress=False
    )
    return score_everywhere(result.model, result.tokenizer, lenders, train)


def local_only(lenders: list[LenderData], train: TrainConfig) -> dict[str, float]:
    """Each lender alone; its AUC on its own test split (and, for reference, on the pooled test)."""
    out: dict[str, float] = {}
    for k, data in enumerate(lenders, start=1):
        d = data.train
        result = train_classifier(d.train_texts, d.train_labels, d.val_texts, d.val_labels, train, None,
                                  progress=False)  # fmt: skip
        scores = score_everywhere(result.model, result.tokenizer, lenders, train)
        out[f"lender-{k}"] = scores[f"lender-{k}"]
        out[f"pooled-by-lender-{k}"] = scores["pooled"]
    return out


def federated(
    sites: list, spec: Any, config: FederatedConfig, lenders: list[LenderData], workdir: Path
) -> dict:
    started = time.perf_counter()
    outcome = run_sites(sites, spec, config, workdir)
    wall = time.perf_counter() - started
    model, tokenizer, _ = federated_model(outcome)
    scores = score_everywhere(model, tokenizer, lenders, config.train)
    sizes = [b for r in outcome.rounds for b in r.bytes_up.values()]
    return {
        "auc": scores,
        "lender_reported_test_auc": outcome.test_auc,
        "epsilon": outcome.epsilon,
        "bytes_per_round_per_lender": statistics.median(sizes) if sizes else None,
        "rounds_completed": outcome.completed_rounds,
        "wall_seconds": wall,
        "round_seconds": [r.seconds for r in outcome.rounds],
    }


def lora_round_bytes_05b(r: int = 8) -> dict[str, float]:
    """Bytes of one LoRA update of the 0.5B (catalogue shapes; meta device, no weights)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    from risk_app.finetune.methods.lora import DEFAULT_TARGET_MODULES
    from risk_app.models.catalogue import get_base

    base = get_base("qwen2.5-coder-0.5b")
    # Qwen2.5-0.5B's shapes: 14 query heads over 2 key/value heads, MLP width 4864.
    config = Qwen2Config(
        hidden_size=base.hidden_size, num_hidden_layers=base.n_layers, num_attention_heads=14,
        num_key_value_heads=2, intermediate_size=4864, vocab_size=151936, num_labels=2,
    )  # fmt: skip
    with torch.device("meta"):
        model = Qwen2ForSequenceClassification(config)
        model = get_peft_model(
            model, LoraConfig(task_type=TaskType.SEQ_CLS, r=r, target_modules=DEFAULT_TARGET_MODULES)
        )
    values = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_values": values, "mb_float32": values * 4 / 1e6}


def summarize(runs: list[dict]) -> dict[str, Any]:
    def med(values: list[float]) -> str:
        values = [v for v in values if v is not None and not np.isnan(v)]
        if not values:
            return "n/a"
        spread = f" ({min(values):.3f}–{max(values):.3f})" if len(values) > 1 else ""
        return f"{statistics.median(values):.3f}{spread}"

    n = len(runs[0]["partition"])
    rows = []
    for column in [f"lender-{k}" for k in range(1, n + 1)] + ["pooled"]:
        rows.append({
            "test split": column,
            "federated": med([r["federated"]["auc"][column] for r in runs]),
            "federated + DP": med([r["federated_dp"]["auc"][column] for r in runs]),
            "pooled (centralized)": med([r["pooled"][column] for r in runs]),
            "local-only": (
                med([r["local"].get(column, float("nan")) for r in runs]) if column != "pooled" else "—"
            ),
        })  # fmt: skip
    return {"rows": rows}


def render(args: argparse.Namespace, runs: list[dict], label: str, bytes_05b: dict[str, float]) -> str:
    table = summarize(runs)["rows"]
    head = list(table[0])
    lines = [
        f"## {label}",
        "",
        f"`python bench/federated.py --lenders {args.lenders} --partition-by {args.partition_by} --seeds "
        f"{args.seeds} --rounds {args.rounds} --epsilon {args.epsilon}`: base `{args.base_model}`, method "
        f"`lora`, FedAvg, {args.rounds} rounds × {args.local_epochs} local epoch(s); pooled and local-only "
        f"models train {args.rounds * args.local_epochs} epochs; max_length {args.max_length}. ROC AUC on "
        f"test, median over {len(runs)} seed(s) (min–max).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(str(row[h]) for h in head) + " |" for row in table],
        "",
    ]
    eps = [r["federated_dp"]["epsilon"] for r in runs]
    sizes = [r["federated"]["bytes_per_round_per_lender"] for r in runs]
    walls = [r["federated"]["wall_seconds"] for r in runs]
    parts = runs[0]["partition"]
    lines += [
        f"- Lenders (seed {runs[0]['seed']}): "
        + ", ".join(f"{int(p['rows'])} rows / {p['default_rate']:.0%} bad" for p in parts)
        + ".",
        f"- DP: noise multiplier {runs[0]['noise_multiplier']}, clipping norm {args.clip}, ε = "
        f"{statistics.median(eps):.2f} at δ = 1e-5 (lender level), with SecAgg+.",
        f"- Bytes per round per lender (tiny-qwen2 LoRA update received by the server): "
        f"{statistics.median(sizes):,.0f}; the 0.5B's LoRA (r 8, q/k/v/o + score head): "
        f"{bytes_05b['trainable_values']:,} values = {bytes_05b['mb_float32']:.2f} MB a round per lender.",
        f"- Wall time of one federated run (Ray start, join, {args.rounds} rounds, final evaluation): median "
        f"{statistics.median(walls):.0f} s.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="german_credit")
    parser.add_argument("--lenders", type=int, default=5)
    parser.add_argument("--partition-by", default="dirichlet:0.5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--clip", type=float, default=0.5)
    parser.add_argument("--base-model", default="tiny-qwen2")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads here (pooled, local-only).")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/federated.md.")
    parser.add_argument(
        "--render-from", type=Path, default=None, help="Write the docs section from runs saved by --json."
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.render_from is not None:
        write_doc(args, json.loads(args.render_from.read_text()))
        return
    os.environ.setdefault("RISK_APP_HOME", tempfile.mkdtemp(prefix="fedbench-"))
    spec = load_spec(args.dataset)
    valid = ingest_and_validate(spec.data_path, spec=spec).valid
    train = TrainConfig(method="lora", base_model=args.base_model, max_length=args.max_length, device="cpu",
                        epochs=args.rounds * args.local_epochs, patience=0)  # fmt: skip
    sigma = noise_for_epsilon(args.epsilon, args.rounds, 1e-5)
    runs = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        parts = partition_applications(
            valid, spec, args.lenders, Partition.parse(args.partition_by), seed=seed
        )
        workdir = Path(os.environ["RISK_APP_HOME"]) / f"seed-{seed}"
        sites = write_lender_sites(parts, spec, workdir, split_seed=seed)
        lenders = [LenderData.load(site) for site in sites]
        base = {"rounds": args.rounds, "local_epochs": args.local_epochs, "min_lenders": args.lenders,
                "seed": seed, "train": train.model_copy(update={"seed": seed}).model_dump()}  # fmt: skip
        plain = FederatedConfig.from_dict(base)
        private = FederatedConfig.from_dict({
            **base,
            "secure_aggregation": {
                "enabled": True, "num_shares": args.lenders, "reconstruction_threshold": 0.6,
            },
            "privacy": {"enabled": True, "clipping_norm": args.clip, "noise_multiplier": sigma},
        })  # fmt: skip
        seeded = train.model_copy(update={"seed": seed})
        run = {
            "seed": seed,
            "partition": describe_partition(parts),
            "noise_multiplier": sigma,
            "federated": federated(sites, spec, plain, lenders, workdir / "fed"),
            "federated_dp": federated(sites, spec, private, lenders, workdir / "fed-dp"),
            "pooled": centralized(lenders, seeded),
            "local": local_only(lenders, seeded),
            "seconds": time.perf_counter() - t0,
        }
        runs.append(run)
        print(json.dumps({k: run[k] for k in ("seed", "pooled", "local")}), flush=True)
        print(json.dumps({"federated": run["federated"]["auc"], "dp": run["federated_dp"]["auc"],
                          "eps": run["federated_dp"]["epsilon"]}), flush=True)  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1, default=float))
    write_doc(args, runs)


def write_doc(args: argparse.Namespace, runs: list[dict]) -> None:
    bytes_05b = lora_round_bytes_05b()
    label = f"{machine_label('cpu')} / {args.base_model} / {args.lenders} lenders by {args.partition_by}"
    body = render(args, runs, label, bytes_05b)
    print(body)
    if not args.no_doc:
        replace_section(DOC, f"federated-bench: {label}", body)


if __name__ == "__main__":
    main()
