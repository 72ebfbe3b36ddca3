"""Issue 24's goals for `rlhf`, measured: PPO against its supervised start, and RLHF from
informed against uninformed SIMULATED analysts (risk_app/overrides/simulation.py).

One protocol per (data set, seed), on a seeded sample of the data set (`--rows`, stratified
70/15/15 split by the seed) with its most informative column (`informative_columns`, chosen
from the data) hidden from the model's text:

1. **supervised**: LoRA on tiny-qwen2 fitted on the first part of the train split (the
   history); its credit policy (Platt calibration, least expected cost with the spec's costs)
   chosen on validation. This is the model in production.
2. It scores the rest of the train split (the year). Simulated analysts, who see the hidden
   column, override up to `--override-rate` of its decisions: **informed** ones with what that
   column says about risk (learnt from the history's labels), **uninformed** ones as many on
   each side at random. Booked loans (model approvals not overridden, analyst approvals) have
   their outcomes; the override pairs are built as the product builds them from the ledger
   (`risk_app.overrides.pairs.pairs_from_book`: decided by the outcome where a loan was booked,
   by the analyst where not), leaving the hidden column out of the text.
3. **rlhf**, per kind of analyst: the product's objective after the supervised stage
   (`objectives.rlhf.rlhf_after_sft`: reward model on the pairs, evidence gate on validation,
   PPO with KL to the supervised policy, validation guard), from the same supervised weights;
   its policy chosen on validation the same way.

Recorded per run: validation AUC of the supervised policy, of the PPO stage's best epoch
(before the guard) and of the kept model; the gate's verdict; the test split's expected cost
per application (spec costs, else 5:1) for the supervised and both RLHF models.

    nice -n 10 python bench/rlhf_analysts.py --goal ppo_start   # both data sets, seeds 0-4
    nice -n 10 python bench/rlhf_analysts.py --goal analysts    # german_credit, seeds 0-9

Each writes bench/results/rlhf_<goal>-<date>.json and its section of docs/rlhf-goals.md
(paired interval: mean difference with the plain and the Nadeau-Bengio corrected 95 % t
interval over the seeds, `bench.frozen_heads.paired_difference`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.frozen_heads import paired_difference  # noqa: E402
from bench.machine import machine_label  # noqa: E402
from bench.markdown import replace_section  # noqa: E402
from data_contracts.spec import DatasetSpec, load_spec  # noqa: E402
from risk_app import workflow  # noqa: E402
from risk_app.finetune.config import TrainConfig  # noqa: E402
from risk_app.finetune.objectives.base import ObjectiveInputs  # noqa: E402
from risk_app.finetune.objectives.feedback import Feedback, describe  # noqa: E402
from risk_app.finetune.objectives.rlhf import RlhfParams, cpu_copy, rlhf_after_sft  # noqa: E402
from risk_app.finetune.objectives.supervised import supervised_fit  # noqa: E402
from risk_app.finetune.predict import predict_proba  # noqa: E402
from risk_app.finetune.registry import resolve_method  # noqa: E402
from risk_app.finetune.run_setup import seed_everything  # noqa: E402
from risk_app.finetune.types import TrainData  # noqa: E402
from risk_app.models.tiny import ensure_tiny_qwen2  # noqa: E402
from risk_app.overrides.pairs import pairs_from_book  # noqa: E402
from risk_app.overrides.simulation import (  # noqa: E402
    AnalystConfig,
    hidden_evidence,
    informative_columns,
    overridden,
)
from risk_app.policy.credit import PolicyConfig, choose_policy, strategy_table  # noqa: E402

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "rlhf-goals.md"
# ppo_start measures PPO itself, so its evidence gate is off (PPO always runs; the validation
# guard still stands after it and both AUCs are recorded); analysts runs the product's defaults.
GOALS: dict[str, dict[str, Any]] = {
    "ppo_start": {
        "datasets": ["german_credit", "uci_credit_card"],
        "seeds": list(range(5)),
        "gate": False,
        "analysts": ["informed"],
    },
    "analysts": {
        "datasets": ["german_credit"],
        "seeds": list(range(10)),
        "gate": True,
        "analysts": ["informed", "uninformed"],
    },
}
HISTORY_SHARE = 0.45  # of the train split: what the production model was trained on


def settings(args: argparse.Namespace, gate: bool) -> tuple[TrainConfig, RlhfParams]:
    train = TrainConfig(
        method="lora", method_params={"r": 4}, epochs=args.sft_epochs, batch_size=16,
        max_length=args.max_length, learning_rate=5e-3, patience=0, device="cpu",
    )  # fmt: skip
    rlhf = RlhfParams(
        policy_method="lora", policy_params={"r": 4}, min_feedback_pairs=10,
        max_reward_p_value=0.05 if gate else 1.0,
        reward={"epochs": args.reward_epochs, "max_length": args.max_length},
        ppo={"epochs": 2, "updates_per_batch": 4, "learning_rate": 1e-3,
             **({"kl_coef": args.kl_coef} if args.kl_coef is not None else {})},
    )  # fmt: skip
    return train, rlhf


def expected_cost(
    y_val: np.ndarray, p_val: np.ndarray, y_test: np.ndarray, p_test: np.ndarray, spec: DatasetSpec
) -> tuple[float, Any]:
    """Test expected cost per application under the policy chosen on validation (as a run does)."""
    costs = (spec.costs.cost_missed_default, spec.costs.cost_declined_good) if spec.costs else None
    chosen = choose_policy(y_val, p_val, PolicyConfig(), costs)
    pd_test = chosen.calibrator.transform(p_test)
    row = strategy_table(y_test, pd_test, chosen.costs, cutoffs=[chosen.threshold]).iloc[0]
    return float(row["expected_cost"]), chosen


def book_of_year(
    year: pd.DataFrame, declined: np.ndarray, picked: np.ndarray, target: str, positive: str
) -> pd.DataFrame:
    """The year's applications as the labeled book would hold them once every outcome is in."""
    book = year.reset_index(drop=True).copy()
    model = np.where(declined, "decline", "approve")
    side = pd.Series([None] * len(book), dtype=object)
    side.iloc[picked] = np.where(declined[picked], "low", "high")
    booked = model.copy()
    booked[picked] = np.where(declined[picked], "approve", "decline")
    book["decision"], book["override_side"], book["booked_decision"] = model, side, booked
    approved = booked == "approve"
    book["status"] = np.where(approved, "with_outcome", "declined")
    default = (book[target].astype(str) == positive).astype(int)
    book["outcome_default"] = pd.array(np.where(approved, default, pd.NA), dtype="Int64")
    return book


def run_one(dataset: str, seed: int, args: argparse.Namespace, hidden: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    spec = load_spec(dataset)
    valid = workflow.ingest_and_validate(spec.data_path, spec=spec).valid
    if len(valid) > args.rows:
        valid = valid.sample(n=args.rows, random_state=seed).reset_index(drop=True)
    examples = workflow.prepare_examples(valid, seed=seed, exclude_fields=hidden, spec=spec)
    rows = valid.set_index("application_id", drop=False)
    train = examples[examples["split"] == "train"]
    history = train.sample(frac=HISTORY_SHARE, random_state=seed)
    year = train.drop(history.index)
    val, test = examples[examples["split"] == "validation"], examples[examples["split"] == "test"]
    train_cfg, rlhf_cfg = settings(args, GOALS[args.goal]["gate"])
    train_cfg = train_cfg.model_copy(update={"seed": seed})
    data = TrainData.build(
        history["text"].tolist(), history["default"].to_numpy(),
        val["text"].tolist(), val["default"].to_numpy(), dataset, hidden,
    )  # fmt: skip

    choice = resolve_method("rlhf", rlhf_cfg)
    policy, policy_cfg = choice.method, choice.method_cfg
    seed_everything(seed)
    model, tokenizer = policy.load_base(train_cfg.base_model, policy_cfg, train_cfg)
    model = policy.prepare(model, policy_cfg, None)
    sft = supervised_fit(
        ObjectiveInputs(choice.as_parameter_method(), model, tokenizer, data, train_cfg, progress=False)
    )
    sft_state = cpu_copy(policy.state_to_save(sft.model, policy_cfg))

    def scores(texts: pd.Series) -> np.ndarray:
        return predict_proba(
            sft.model, tokenizer, texts.tolist(), train_cfg.eval_batch_size, train_cfg.max_length
        )

    y_val, y_test = val["default"].to_numpy(), test["default"].to_numpy()
    p_val, p_test, p_year = scores(val["text"]), scores(test["text"]), scores(year["text"])
    cost_sup, chosen = expected_cost(y_val, p_val, y_test, p_test, spec)
    pd_year = chosen.calibrator.transform(p_year)
    declined = pd_year >= chosen.threshold
    year_rows = rows.loc[year["application_id"].astype(str)].reset_index(drop=True)
    history_rows = rows.loc[history["application_id"].astype(str)].reset_index(drop=True)
    evidence = hidden_evidence(spec, hidden, history_rows, year_rows)
    out: dict[str, Any] = {
        "dataset": dataset, "seed": seed, "hidden_columns": hidden, "n_history": len(history),
        "n_year": len(year), "n_val": len(val), "n_test": len(test),
        "supervised": {"val_auc": sft.best_val_auc, "test_expected_cost": cost_sup,
                       "year_decline_rate": float(declined.mean())},
    }  # fmt: skip
    for name in args.analysts:
        informed = name == "informed"
        config = AnalystConfig(informed=informed, override_rate=args.override_rate, seed=seed)
        picked = overridden(pd_year, declined, evidence, config, np.random.default_rng(seed))
        book = book_of_year(year_rows, declined, picked, spec.target.column, str(spec.target.positive))
        pairs = pairs_from_book(book, spec, exclude_fields=hidden, decisions=args.ledger_decisions)
        feedback = Feedback(
            pairs, "override_ledger", describe(pairs, "override_ledger", f"{name} simulated analysts")
        )
        policy.load_state(
            sft.model, sft_state, policy_cfg
        )  # every kind of analyst starts from the same policy
        result = rlhf_after_sft(choice, sft, data, train_cfg, feedback)
        ppo = [r for r in result.history if "ppo_epoch" in r]
        p_val_r = predict_proba(result.model, tokenizer, val["text"].tolist(), 64, train_cfg.max_length)
        p_test_r = predict_proba(result.model, tokenizer, test["text"].tolist(), 64, train_cfg.max_length)
        cost_r, _ = expected_cost(y_val, p_val_r, y_test, p_test_r, spec)
        verdict = result.ppo_guard
        assert verdict is not None
        low, high = pairs["side"] == "low", pairs["side"] == "high"
        out[name] = {
            "pairs": len(pairs), "overrides": int((low | high).sum()), "low_side": int(low.sum()),
            "high_side": int(high.sum()),
            "low_side_default_rate": float(book.loc[book["override_side"] == "low", "outcome_default"].mean())
            if low.any() else None,
            "kept": verdict.kept, "reason": verdict.reason, "reward_rank_auc": verdict.reward_rank_auc,
            "reward_rank_p_value": verdict.reward_rank_p_value,
            "ppo_stage_val_auc": max(r["val_auc"] for r in ppo) if ppo else None,
            "kept_val_auc": result.best_val_auc, "test_expected_cost": cost_r,
        }  # fmt: skip
    out["seconds"] = time.perf_counter() - started
    return out


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for dataset in sorted({r["dataset"] for r in runs}):
        mine = [r for r in runs if r["dataset"] == dataset]
        sup_auc = [r["supervised"]["val_auc"] for r in mine]
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for name in args.analysts:
            ppo = [r[name]["ppo_stage_val_auc"] for r in mine]
            drops = [s - p for s, p in zip(sup_auc, ppo, strict=True) if p is not None]
            kept_drops = [s - r[name]["kept_val_auc"] for s, r in zip(sup_auc, mine, strict=True)]
            gain = paired_difference(
                [r["supervised"]["test_expected_cost"] for r in mine],
                [r[name]["test_expected_cost"] for r in mine],
                test_fraction=0.15, train_fraction=0.7 * (1 - HISTORY_SHARE),
            )  # supervised cost minus rlhf cost: above zero = RLHF cheaper  # fmt: skip
            entry[name] = {
                "ppo_ran": len(drops), "max_ppo_stage_drop": max(drops) if drops else None,
                "max_kept_drop": max(kept_drops), "kept_ppo": sum(r[name]["kept"] == "ppo" for r in mine),
                "cost_saving": gain,
            }  # fmt: skip
        summary[dataset] = entry
    return summary


def render(goal: str, payload: dict[str, Any]) -> str:
    lines = [f"## Goal `{goal}` — {payload['machine']}", ""]
    kl = payload["settings"].get("kl_coef")
    kl = f" (kl_coef {kl:g})" if kl is not None else ""
    lines.append(
        f"{payload['date']}, `python bench/rlhf_analysts.py --goal {goal}`: tiny-qwen2 + LoRA r=4, "
        f"{payload['settings']['rows']} rows per seed, max_length {payload['settings']['max_length']}, "
        f"{payload['settings']['sft_epochs']} supervised epochs, reward model "
        f"{payload['settings']['reward_epochs']} "
        f"epochs, PPO 2 epochs{kl}; override rate ≤ {payload['settings']['override_rate']:.0%}; "
        f"wall {payload['wall_seconds'] / 60:.1f} min. Results: `{payload['results_file']}`."
    )
    lines += [
        "",
        "| data set | analysts | seeds | PPO ran | PPO kept | worst PPO-stage val AUC drop | worst kept drop "
        "| cost saving vs supervised: mean | 95 % CI (plain) | 95 % CI (Nadeau–Bengio) | seeds cheaper |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    kinds = payload["settings"]["analysts"]
    for dataset, entry in payload["summary"].items():
        for name in kinds:
            e, g = entry[name], entry[name]["cost_saving"]
            worst = "—" if e["max_ppo_stage_drop"] is None else f"{e['max_ppo_stage_drop']:+.4f}"
            ci = f"[{g.get('ci_low', float('nan')):+.4f}, {g.get('ci_high', float('nan')):+.4f}]"
            nb = f"[{g.get('nb_low', float('nan')):+.4f}, {g.get('nb_high', float('nan')):+.4f}]"
            lines.append(
                f"| {dataset} | {name} | {len(entry['seeds'])} | {e['ppo_ran']} | {e['kept_ppo']} | "
                f"{worst} | "
                f"{e['max_kept_drop']:+.4f} | {g['mean']:+.4f} | {ci} | {nb} | {g.get('wins', 0)} |"
            )
    lines += [
        "",
        "Per seed (supervised val AUC; per kind of analyst: pairs and overrides among them, the reward's "
        "rank AUC on validation (the evidence gate's: beyond the supervised policy's log-odds since "
        f"2026-12-07), PPO stage → kept; test expected cost supervised / {' / '.join(kinds)}):",
        "",
    ]
    for r in payload["runs"]:
        cells = []
        for name in kinds:
            e = r[name]
            ppo = "gate stopped PPO" if e["ppo_stage_val_auc"] is None else f"{e['ppo_stage_val_auc']:.4f}"
            cells.append(
                f"{name}: {e['pairs']} pairs ({e['overrides']} overrides), "
                f"reward rank AUC {e['reward_rank_auc']:.3f} "
                f"(p {e['reward_rank_p_value']:.2g}), {ppo} → {e['kept_val_auc']:.4f} ({e['kept']})"
            )
        lines.append(
            f"- {r['dataset']} seed {r['seed']}: val AUC {r['supervised']['val_auc']:.4f}; "
            + "; ".join(cells)
            + "; cost "
            + " / ".join(f"{r[k]['test_expected_cost']:.4f}" for k in ("supervised", *kinds))
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goal", choices=sorted(GOALS), required=True)
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--analysts", nargs="+", choices=("informed", "uninformed"), default=None)
    parser.add_argument(
        "--ledger-decisions",
        choices=("overrides", "book"),
        default="book",
        help="the reward's pairs: the overrides alone, or every decision of the book (pairs_from_book)",
    )
    parser.add_argument("--sft-epochs", type=int, default=3)
    parser.add_argument("--reward-epochs", type=int, default=3)
    parser.add_argument("--override-rate", type=float, default=0.15)
    parser.add_argument("--kl-coef", type=float, default=None, help="PPO's KL coefficient (default: rlhf's)")
    parser.add_argument("--no-doc", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ensure_tiny_qwen2()
    goal = GOALS[args.goal]
    args.analysts = args.analysts or goal["analysts"]
    datasets, seeds = (
        args.datasets or goal["datasets"],
        args.seeds if args.seeds is not None else goal["seeds"],
    )
    started = time.perf_counter()
    runs = []
    for dataset in datasets:
        hidden = informative_columns(dataset, 1)
        for seed in seeds:
            runs.append(run_one(dataset, seed, args, hidden))
            print(json.dumps(runs[-1], default=float), flush=True)
    date = dt.date.today().isoformat()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results_file = RESULTS / f"rlhf_{args.goal}-{date}.json"
    payload = {
        "goal": args.goal, "date": date, "machine": machine_label("cpu"),
        "wall_seconds": time.perf_counter() - started,
        "settings": {k: v for k, v in vars(args).items() if k not in ("no_doc",)},
        "summary": summarise(runs, args), "runs": runs, "results_file": str(results_file.relative_to(REPO)),
    }  # fmt: skip
    results_file.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    if not args.no_doc:
        replace_section(DOC, f"rlhf {args.goal}", render(args.goal, payload))
    print(json.dumps(payload["summary"], indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
