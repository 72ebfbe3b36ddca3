"""Federated vs pooled vs local-only: German credit cut into N non-IID lenders (issue 25).

    nice python bench/federated.py --method head --lenders 5 --partition-by purpose --seeds 5 \
        --rounds 40 --local-epochs 10 --lr 0.3 --round-schedule cosine --no-class-weighting --pooled-lr 0.1 \
        --dp record --dp-local-epochs 1 --dp-batch-size 32 --driver inprocess
    nice python bench/federated.py --method head-std --lenders 5 --partition-by purpose --seeds 5 \
        --rounds 40 --local-epochs 1 --lr 0.03 --round-schedule cosine --no-class-weighting --pooled-lr 0.01 \
        --dp record --dp-local-epochs 1 --dp-batch-size 32 --dp-lr 0.03 --driver inprocess

For each seed the data set is cut into N lenders (`risk_app.federated.partition`, the seed also
moves the partition), every lender splits its own rows 70/15/15, and four kinds of model are
trained with the product's trainer and method (`--method lora`: tiny-qwen2 + LoRA; `--method
head`: the linear `score` head on the base's frozen, cached features, `freeze` with
n_trainable_layers 0; `--method head-std`: the same head with a bias on standardised features,
`head: standardised`, the consortium's mean and scale from two Flower statistics rounds first,
the pooled and local-only models' from their own training rows):

* **federated** — the consortium (FedAvg, R rounds, E local epochs), only the trainable tensors
  travelling; `--driver simulation` runs it in Flower's Simulation Engine (Ray), `--driver
  inprocess` calls each lender's Flower client (`Lender.fit`) in this process and aggregates with
  the same Flower strategy inside the same `ConsortiumGuard` (`configure_fit` samples,
  `aggregate_fit` checks and averages): the same arithmetic without Ray's processes, which on a
  busy 2-core machine cost more than the training;
* **federated + DP** — `--dp lender`: client-side clipping and central Gaussian noise added by
  the server, the noise multiplier chosen so the R rounds spend at most `--epsilon`
  (lender-level, δ 1e-5), with SecAgg+ (simulation driver only); `--dp record`: DP-SGD inside
  each lender (Opacus, `risk_app.federated.dpsgd`), the noise multiplier chosen so that the
  lender that spends most (the fewest rows) stays within `--epsilon` at δ 1e-5 over all rounds;
* **pooled** — one model on all lenders' train rows together (what the consortium would get if
  the rows could be pooled), the same method, learning rate and batch size, R × E epochs (the
  product's trainer keeps its best epoch on the pooled validation split);
* **local-only** — each lender alone on its own rows, the same settings.

Each model's ROC AUC is measured on each lender's own test split and on the pooled test (the
union of the lenders' test splits). The medians and spreads over seeds, and the paired
differences over seeds with the plain and the Nadeau–Bengio corrected 95 % interval
(`bench.frozen_heads.paired_difference`), go to docs/federated.md (section
`federated-bench: <machine> / <base> <method> / ...`), the raw numbers to `--json`. Settings are
chosen on validation (`--grid` prints the pooled validation AUC of each setting and never looks at
test).

The issue's goals: federated within 0.01 AUC of pooled; every lender's federated AUC above
its local-only AUC; with DP at ε <= 8 within 0.03 of pooled; a LoRA round of the 0.5B under
10 MB per lender (counted from the 0.5B's shapes on the meta device, no weights loaded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy
from sklearn.metrics import roc_auc_score

from bench.frozen_heads import paired_difference
from bench.machine import machine_label
from bench.markdown import replace_section
from data_contracts.spec import load_spec
from risk_app.federated.config import FederatedConfig, Partition, RecordPrivacyConfig
from risk_app.federated.dpsgd import STATISTICS_RELEASES, lender_epsilon
from risk_app.federated.lender import Lender, LenderData, LenderSite, check_federable, prepared_model
from risk_app.federated.moments import uses_standardised_head
from risk_app.federated.partition import describe_partition, partition_applications
from risk_app.federated.privacy import epsilon_spent
from risk_app.federated.product import federated_model
from risk_app.federated.simulation import run_sites, write_lender_sites
from risk_app.federated.statistics_rounds import consortium_standardisation
from risk_app.federated.strategy import ConsortiumClientManager, ConsortiumGuard, build_strategy
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.standardised_head import standardised_head
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainData
from risk_app.workflow import ingest_and_validate

DOC = Path(__file__).resolve().parent.parent / "docs" / "federated.md"
DELTA = 1e-5
METHODS: dict[str, dict[str, Any]] = {
    "lora": {"method": "lora"},
    "head": {"method": "freeze", "method_params": {"n_trainable_layers": 0, "head": "linear"}},
    # The same head on standardised features, with a bias (consortium statistics rounds first).
    "head-std": {"method": "freeze", "method_params": {"n_trainable_layers": 0, "head": "standardised"}},
}


def noise_for_epsilon(target: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier (to 0.05) whose `rounds` full-participation releases spend <= target."""
    sigma = 0.3
    while epsilon_spent(sigma, 1.0, rounds, delta) > target:
        sigma += 0.05
    return round(sigma, 2)


def record_noise_for_epsilon(
    target: float, rows: list[int], batch_size: int, epochs: int, statistics_releases: int = 0
) -> float:
    """The smallest DP-SGD noise multiplier (to 0.01, rounded up) with which every lender spends <= target.

    Bisection between 0.5 and 10 (ε falls as the noise grows): the accountant's series converge
    slowly for very small noise, which is never near the answer for ε of a few units, and a
    step-by-step search cost minutes of CPU."""

    def worst(sigma: float) -> float:
        privacy = RecordPrivacyConfig(enabled=True, noise_multiplier=sigma, delta=DELTA)
        return max(lender_epsilon(privacy, n, batch_size, epochs, statistics_releases) for n in rows)

    low, high = 0.5, 10.0
    if worst(high) > target:
        raise SystemExit(f"even noise multiplier {high} spends more than ε {target}; train fewer epochs")
    while high - low > 0.01:
        mid = (low + high) / 2
        low, high = (low, mid) if worst(mid) <= target else (mid, high)
    return math.ceil(high * 100) / 100 if worst(math.ceil(high * 100) / 100) <= target else high


def auc(labels: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(labels, proba)) if len(np.unique(labels)) == 2 else float("nan")


def score_everywhere(
    model: Any, tokenizer: Any, lenders: list[LenderData], train: TrainConfig, validation: bool = False
) -> dict[str, float]:
    """AUC on each lender's test split and on their union (or, with `validation`, only on the union of
    their validation splits: what --grid chooses by)."""
    out, ys, ps = {}, [], []
    for k, data in enumerate(lenders, start=1):
        texts, labels = (data.train.val_texts, data.train.val_labels) if validation else (
            data.test_texts, data.test_labels)  # fmt: skip
        proba = predict_proba(model, tokenizer, texts, train.eval_batch_size, train.max_length)
        if not validation:
            out[f"lender-{k}"] = auc(labels, proba)
        ys.append(labels)
        ps.append(proba)
    out["validation" if validation else "pooled"] = auc(np.concatenate(ys), np.concatenate(ps))
    return out


def centralized(lenders: list[LenderData], train: TrainConfig, validation: bool = False) -> dict[str, float]:
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
    return score_everywhere(result.model, result.tokenizer, lenders, train, validation)


def local_only(lenders: list[LenderData], train: TrainConfig) -> dict[str, float]:
    """Each lender alone; its AUC on its own test split."""
    out: dict[str, float] = {}
    for k, data in enumerate(lenders, start=1):
        d = data.train
        result = train_classifier(d.train_texts, d.train_labels, d.val_texts, d.val_labels, train, None,
                                  progress=False)  # fmt: skip
        out[f"lender-{k}"] = score_everywhere(result.model, result.tokenizer, [data], train)["lender-1"]
    return out


class _Node(ClientProxy):
    """A lender as the in-process driver's client manager holds it: only its id, no network."""

    def get_properties(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    get_parameters = fit = evaluate = reconnect = get_properties


def run_in_process(sites: list[LenderSite], config: FederatedConfig) -> tuple[list[np.ndarray], dict]:
    """The consortium without the Simulation Engine: the server's Flower strategy inside the
    consortium's guard (`configure_fit` samples the lenders and writes their instructions,
    `aggregate_fit` checks and averages) and each lender's Flower client (`Lender.fit`) called here.
    (global arrays, {lender: ε of its last round} with record-level DP)."""
    check_federable(config)
    if config.privacy.enabled or config.secure_aggregation.enabled:
        raise SystemExit(
            "--driver inprocess runs no Flower mods: lender-level DP and SecAgg+ need --driver simulation"
        )
    prepared = prepared_model(config.train)
    template = prepared.template
    arrays = template.arrays(prepared.model)
    clients = ConsortiumClientManager(seed=config.seed)
    lenders = {}
    for k, site in enumerate(sites):
        clients.register(_Node(str(k)))
        clients.admit(str(k), site.name)
        lenders[str(k)] = Lender(site, config)
    extra = None
    if uses_standardised_head(config):

        def run_round(statistics: ConsortiumGuard, server_round: int) -> list[np.ndarray] | None:
            initial = statistics.initialize_parameters(clients)
            assert initial is not None
            asked = statistics.configure_fit(server_round, initial, clients)
            answers = []
            for proxy, ins in asked:
                out, n, metrics = lenders[proxy.cid].fit(parameters_to_ndarrays(ins.parameters), ins.config)
                answers.append((proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(out), n, metrics)))
            params, _ = statistics.aggregate_fit(server_round, answers, [])
            return None if params is None else parameters_to_ndarrays(params)

        head = standardised_head(prepared.model)
        assert head is not None
        extra = consortium_standardisation(run_round, config, int(head.mean.shape[0]), clients).instructions()
    guard = build_strategy(config, template, arrays, clients, len(sites), extra)
    spent: dict[str, float] = {}
    for server_round in range(1, config.rounds + 1):
        instructions = guard.configure_fit(server_round, ndarrays_to_parameters(arrays), clients)
        results = []
        for proxy, ins in instructions:
            out, n, metrics = lenders[proxy.cid].fit(parameters_to_ndarrays(ins.parameters), ins.config)
            results.append((proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(out), n, metrics)))
        params, _ = guard.aggregate_fit(server_round, results, [])
        if params is not None:
            arrays = parameters_to_ndarrays(params)
        spent.update(guard.log.record_epsilon)
    if extra is not None:  # the bench scores the global model here: the consortium's statistics go in
        lenders["0"].take_standardisation(prepared, extra)
    return arrays, spent


def federated(
    sites: list, spec: Any, config: FederatedConfig, lenders: list[LenderData], workdir: Path, driver: str,
    validation: bool = False,
) -> dict:  # fmt: skip
    started = time.perf_counter()
    if driver == "simulation":
        outcome = run_sites(sites, spec, config, workdir)
        wall = time.perf_counter() - started
        model, tokenizer, _ = federated_model(outcome)
        sizes = [b for r in outcome.rounds for b in r.bytes_up.values()]
        extra = {"lender_reported_test_auc": outcome.test_auc, "epsilon": outcome.epsilon,
                 "lender_epsilon": outcome.record_epsilon, "rounds_completed": outcome.completed_rounds,
                 "bytes_per_round_per_lender": statistics.median(sizes) if sizes else None,
                 "round_seconds": [r.seconds for r in outcome.rounds]}  # fmt: skip
    else:
        arrays, spent = run_in_process(sites, config)
        wall = time.perf_counter() - started
        prepared = prepared_model(config.train)
        prepared.template.load(prepared.model, arrays)
        model, tokenizer = prepared.model.eval(), prepared.tokenizer
        extra = {"epsilon": max(spent.values(), default=None), "lender_epsilon": spent,
                 "bytes_per_round_per_lender": float(prepared.template.wire_bytes)}  # fmt: skip
    scores = score_everywhere(model, tokenizer, lenders, config.train, validation)
    return {"auc": scores, "wall_seconds": wall, **extra}


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


def _med(values: list[float]) -> str:
    values = [v for v in values if v is not None and not np.isnan(v)]
    if not values:
        return "n/a"
    spread = f" ({min(values):.3f}–{max(values):.3f})" if len(values) > 1 else ""
    return f"{statistics.median(values):.3f}{spread}"


def summarize(runs: list[dict]) -> list[dict[str, str]]:
    """Median (min–max) test AUC over seeds, per test split and model."""
    n = len(runs[0]["partition"])
    rows = []
    for column in [f"lender-{k}" for k in range(1, n + 1)] + ["pooled"]:
        rows.append({
            "test split": column,
            "federated": _med([r["federated"]["auc"][column] for r in runs]),
            "federated + DP": _med([r["federated_dp"]["auc"][column] for r in runs if r.get("federated_dp")]),
            "pooled (centralized)": _med([r["pooled"][column] for r in runs]),
            "local-only": (
                _med([r["local"].get(column, float("nan")) for r in runs]) if column != "pooled" else "—"
            ),
        })  # fmt: skip
    return rows


def paired(runs: list[dict]) -> list[dict[str, Any]]:
    """Paired differences over seeds (same partition and splits), plain and corrected 95 % intervals."""
    n = len(runs[0]["partition"])
    pooled = [r["pooled"]["pooled"] for r in runs]
    out = [{"what": "federated − pooled, pooled test", **paired_difference(
        [r["federated"]["auc"]["pooled"] for r in runs], pooled)}]  # fmt: skip
    if all(r.get("federated_dp") for r in runs):
        out.append({"what": "federated + DP − pooled, pooled test", **paired_difference(
            [r["federated_dp"]["auc"]["pooled"] for r in runs], pooled)})  # fmt: skip
    for k in range(1, n + 1):
        name = f"lender-{k}"
        out.append({"what": f"federated − local-only, {name}'s test", **paired_difference(
            [r["federated"]["auc"][name] for r in runs], [r["local"][name] for r in runs])})  # fmt: skip
    return out


def lenders_above_local(run: dict) -> int:
    n = len(run["partition"])
    return sum(run["federated"]["auc"][f"lender-{k}"] > run["local"][f"lender-{k}"] for k in range(1, n + 1))


def _ci(row: dict[str, Any], low: str, high: str) -> str:
    return f"[{row[low]:+.3f}, {row[high]:+.3f}]" if low in row else "—"


def render(args: argparse.Namespace, runs: list[dict], label: str, bytes_05b: dict[str, float]) -> str:
    table = summarize(runs)
    head = list(table[0])
    command = (
        f"python bench/federated.py --method {args.method} --driver {args.driver} --lenders {args.lenders} "
        f"--partition-by {args.partition_by} --seeds {args.seeds} --rounds {args.rounds} --local-epochs "
        f"{args.local_epochs} --lr {args.lr} --pooled-lr {args.pooled_lr or args.lr} --batch-size "
        f"{args.batch_size} --round-schedule "
        f"{args.round_schedule}{' --no-class-weighting' if args.no_class_weighting else ''} --dp {args.dp} "
        f"--epsilon {args.epsilon} --clip {args.clip} --dp-batch-size "
        f"{args.dp_batch_size or args.batch_size} --dp-lr {args.dp_lr or args.lr} "
        f"--dp-rounds {args.dp_rounds or args.rounds} "
        f"--dp-local-epochs {args.dp_local_epochs or args.local_epochs}"
    )
    lines = [
        f"## {label}",
        "",
        f"`{command}`: base `{args.base_model}`, method `{args.method}`, FedAvg, {args.rounds} rounds × "
        f"{args.local_epochs} local epoch(s), learning rate {args.lr} ({args.round_schedule} over rounds), "
        f"batch {args.batch_size}, class weighting {'off' if args.no_class_weighting else 'on'}; pooled and "
        f"local-only models train {args.rounds * args.local_epochs} epochs at learning rate "
        f"{args.pooled_lr or args.lr}, keeping their best epoch on validation; "
        f"max_length {args.max_length}; driver `{args.driver}`. ROC AUC on test, median over {len(runs)} "
        "seed(s) (min–max).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(str(row[h]) for h in head) + " |" for row in table],
        "",
        f"Paired over the {len(runs)} seeds (each seed: its own partition and splits; 95 % intervals, "
        "plain t and Nadeau–Bengio corrected for repeated splits):",
        "",
        "| difference | mean | 95 % CI (plain) | 95 % CI (corrected) | seeds above 0 |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {p['what']} | {p['mean']:+.3f} | {_ci(p, 'ci_low', 'ci_high')} | "
            f"{_ci(p, 'nb_low', 'nb_high')} | "
            f"{p.get('wins', '—')} of {p['n']} |"
            for p in paired(runs)
        ],  # fmt: skip
        "",
    ]
    parts = runs[0]["partition"]
    lines += [
        "- Lenders above their local-only model, per seed: "
        f"{', '.join(str(lenders_above_local(r)) for r in runs)} of {len(parts)}.",
        f"- Lenders (seed {runs[0]['seed']}): "
        + ", ".join(f"{int(p['rows'])} rows / {p['default_rate']:.0%} bad" for p in parts)
        + ".",
    ]
    if all(r.get("federated_dp") for r in runs):
        eps = [r["federated_dp"]["epsilon"] for r in runs]
        if args.dp == "record":
            each = [v for r in runs for v in r["federated_dp"]["lender_epsilon"].values()]
            lines.append(
                "- DP: record level, DP-SGD inside each lender (Opacus, Poisson sampling, per-example "
                f"clipping {args.clip}), noise multiplier "
                f"{statistics.median(r['noise_multiplier'] for r in runs)} "
                f"(median over seeds), learning rate {args.dp_lr or args.lr} ({args.round_schedule} over "
                "rounds), "
                f"batch {args.dp_batch_size or args.batch_size}, each lender's ε over all "
                f"{args.dp_rounds or args.rounds} rounds × {args.dp_local_epochs or args.local_epochs} local "
                "epoch(s) at δ = 1e-5 "
                f"{min(each):.2f}–{max(each):.2f}, the largest per seed {', '.join(f'{e:.2f}' for e in eps)}."
            )
        else:
            lines.append(
                f"- DP: lender level, noise multiplier {runs[0]['noise_multiplier']}, clipping norm "
                f"{args.clip}, ε = {statistics.median(eps):.2f} at δ = 1e-5, with SecAgg+."
            )
    sizes = [r["federated"]["bytes_per_round_per_lender"] for r in runs]
    walls = [r["federated"]["wall_seconds"] for r in runs]
    lines += [
        f"- Bytes per round per lender ({args.base_model} {args.method} update): "
        f"{statistics.median(sizes):,.0f}; the 0.5B's LoRA (r 8, q/k/v/o + score head): "
        f"{bytes_05b['trainable_values']:,} values = "
        f"{bytes_05b['mb_float32']:.2f} MB a round per lender.",
        f"- Wall time of one federated run ({args.driver}, {args.rounds} rounds): median "
        f"{statistics.median(walls):.0f} s.",
    ]
    return "\n".join(lines)


def build_configs(
    args: argparse.Namespace, seed: int, rows: list[int]
) -> tuple[FederatedConfig, FederatedConfig | None, float | None]:
    """(plain, private or None, noise multiplier) for one seed."""
    train = TrainConfig(**METHODS[args.method], base_model=args.base_model, max_length=args.max_length,
                        device="cpu", epochs=args.rounds * args.local_epochs, patience=0, seed=seed,
                        learning_rate=args.lr, batch_size=args.batch_size,
                        class_weighting=not args.no_class_weighting)  # fmt: skip
    base = {"rounds": args.rounds, "local_epochs": args.local_epochs, "min_lenders": args.lenders,
            "seed": seed, "round_schedule": args.round_schedule, "train": train.model_dump()}  # fmt: skip
    plain = FederatedConfig.from_dict(base)
    if args.dp == "none":
        return plain, None, None
    if args.dp == "record":
        batch, rounds = args.dp_batch_size or args.batch_size, args.dp_rounds or args.rounds
        epochs = args.dp_local_epochs or args.local_epochs
        releases = STATISTICS_RELEASES if args.method == "head-std" else 0
        sigma = record_noise_for_epsilon(args.epsilon, rows, batch, rounds * epochs, releases)
        privacy = {"record_privacy": {"enabled": True, "noise_multiplier": sigma, "max_grad_norm": args.clip}}
        dp_train = train.model_copy(update={"batch_size": batch, "learning_rate": args.dp_lr or args.lr})
        base = {**base, "rounds": rounds, "local_epochs": epochs, "train": dp_train.model_dump()}
    else:
        sigma = noise_for_epsilon(args.epsilon, args.rounds, DELTA)
        privacy = {
            "secure_aggregation": {
                "enabled": True,
                "num_shares": args.lenders,
                "reconstruction_threshold": 0.6,
            },
            "privacy": {"enabled": True, "clipping_norm": args.clip, "noise_multiplier": sigma},
        }
    return plain, FederatedConfig.from_dict({**base, **privacy}), sigma


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="german_credit")
    parser.add_argument("--lenders", type=int, default=5)
    parser.add_argument("--partition-by", default="dirichlet:0.5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--method", choices=sorted(METHODS), default="lora")
    parser.add_argument("--driver", choices=["simulation", "inprocess"], default="simulation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--pooled-lr", type=float, default=None,
        help="Learning rate of the pooled and local-only models (default --lr; each chosen on validation).",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--dp-batch-size", type=int, default=None, help="Record DP's batch (default --batch-size)."
    )
    parser.add_argument(
        "--dp-lr", type=float, default=None, help="Record DP's peak learning rate (default --lr)."
    )
    parser.add_argument(
        "--dp-rounds", type=int, default=None,
        help="Rounds of the DP consortium (default --rounds; fewer rounds spend ε on fewer steps).",
    )  # fmt: skip
    parser.add_argument(
        "--dp-local-epochs", type=int, default=None, help="Record DP's local epochs (default --local-epochs)."
    )
    parser.add_argument("--round-schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument(
        "--no-class-weighting", action="store_true",
        help="Plain cross-entropy everywhere (each lender's own class weights make FedAvg optimise another "
        "objective than the pooled model's).",
    )  # fmt: skip
    parser.add_argument("--dp", choices=["none", "lender", "record"], default="lender")
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument(
        "--clip", type=float, default=0.5, help="Update (lender DP) or per-example (record DP) bound."
    )
    parser.add_argument("--base-model", default="tiny-qwen2")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads here (pooled, local-only).")
    parser.add_argument(
        "--grid", default=None,
        help="JSON list of {rounds, local_epochs, lr}: print each setting's pooled-validation AUC (federated "
        "and pooled) and stop; no test number is computed or written.",
    )  # fmt: skip
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
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        parts = partition_applications(
            valid, spec, args.lenders, Partition.parse(args.partition_by), seed=seed
        )
        workdir = Path(os.environ["RISK_APP_HOME"]) / f"seed-{seed}"
        sites = write_lender_sites(parts, spec, workdir, split_seed=seed)
        lenders = [LenderData.load(site) for site in sites]
        rows = [len(d.train.train_texts) for d in lenders]
        if args.grid:
            grid_search(args, json.loads(args.grid), seed, sites, spec, lenders, rows, workdir)
            continue
        plain, private, sigma = build_configs(args, seed, rows)
        alone = plain.train.model_copy(update={"learning_rate": args.pooled_lr or args.lr})
        run = {
            "seed": seed,
            "partition": describe_partition(parts),
            "noise_multiplier": sigma,
            "federated": federated(sites, spec, plain, lenders, workdir / "fed", args.driver),
            "federated_dp": (
                federated(sites, spec, private, lenders, workdir / "fed-dp", args.driver) if private else None
            ),
            "pooled": centralized(lenders, alone),
            "local": local_only(lenders, alone),
            "seconds": time.perf_counter() - t0,
        }
        runs.append(run)
        dp = run["federated_dp"] or {}
        print(json.dumps({"seed": seed, "federated": run["federated"]["auc"], "pooled": run["pooled"],
                          "local": run["local"], "dp": dp.get("auc"), "eps": dp.get("lender_epsilon")}),
              flush=True)  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1, default=float))
    if runs:
        write_doc(args, runs)


def grid_search(
    args: argparse.Namespace, grid: list[dict], seed: int, sites: list, spec: Any, lenders: list[LenderData],
    rows: list[int], workdir: Path,
) -> None:  # fmt: skip
    """Each setting's AUC on the union of the lenders' validation splits (federated and pooled)."""
    for k, setting in enumerate(grid):
        trial = argparse.Namespace(**{**vars(args), **setting})
        plain, private, _ = build_configs(trial, seed, rows)
        row = {"seed": seed, **setting}
        fed = federated(sites, spec, plain, lenders, workdir / f"grid-{k}", args.driver, validation=True)
        row["federated_val"] = fed["auc"]["validation"]
        if private is not None:
            dp = federated(
                sites, spec, private, lenders, workdir / f"grid-{k}-dp", args.driver, validation=True
            )
            row["dp_val"], row["epsilon"] = dp["auc"]["validation"], dp["epsilon"]
        alone = plain.train.model_copy(update={"learning_rate": args.pooled_lr or args.lr})
        row["pooled_val"] = centralized(lenders, alone, validation=True)["validation"]
        print(json.dumps(row), flush=True)


def write_doc(args: argparse.Namespace, runs: list[dict]) -> None:
    bytes_05b = lora_round_bytes_05b()
    label = (
        f"{machine_label('cpu')} / {args.base_model} {args.method} / {args.lenders} lenders by "
        f"{args.partition_by} / {args.local_epochs} local epoch(s) / DP {args.dp}"
    )
    body = render(args, runs, label, bytes_05b)
    print(body)
    if not args.no_doc:
        replace_section(DOC, f"federated-bench: {label}", body)


if __name__ == "__main__":
    main()
