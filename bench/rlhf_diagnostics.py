"""Where informed analysts' information is lost on its way to the `rlhf` policy (issue 24, goal 2).

The protocol of `bench/rlhf_analysts.py --goal analysts` (German credit, 600 rows per seed, its
most informative column hidden from every text, a LoRA supervised model on the history, SIMULATED
informed and uninformed analysts overriding its decisions on the year, reward pairs from the
whole book), with the evidence gate and the validation guard opened so that PPO always runs, and
per seed and kind of analyst:

* `--measure stages`: the overrides' default rates; the reward's pair accuracy before / after
  training; its margin's AUC on the test split and its Spearman correlation with the supervised
  log-odds there; PPO's KL, how far it moved the policy's test log-odds (standard deviation, and
  the move's correlation with the margin); test AUC and expected cost before and after.
* `--measure held_out`: the reward on override pairs it never saw: each seed's override pairs in
  two halves, the reward trained on the book without one half and judged on it, its margin
  centred over the book as PPO sees it (chance 0.5).

One JSON line per seed on stdout; docs/rlhf-goals.md quotes them.

    nice -n 10 python bench/rlhf_diagnostics.py --measure stages --seeds 0 1 3
    nice -n 10 python bench/rlhf_diagnostics.py --measure held_out --seeds 0 1 3 6 7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import rlhf_analysts as protocol  # noqa: E402
from data_contracts.spec import load_spec  # noqa: E402
from risk_app import workflow  # noqa: E402
from risk_app.finetune.objectives import rlhf as rlhf_objective  # noqa: E402
from risk_app.finetune.objectives.base import ObjectiveInputs  # noqa: E402
from risk_app.finetune.objectives.feedback import Feedback, describe  # noqa: E402
from risk_app.finetune.objectives.reward_model import (  # noqa: E402
    RewardModelResult,
    RewardParams,
    score_decisions,
    train_reward_model,
)
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

DATASET = "german_credit"
KINDS = ("informed", "uninformed")


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def margins(reward: RewardModelResult, texts: list[str], max_length: int) -> np.ndarray:
    scores = score_decisions(reward.model, reward.tokenizer, texts, max_length)
    return scores[:, 1] - scores[:, 0]


class Seed:
    """One seed of the protocol up to the year's books, one per kind of analyst."""

    def __init__(self, seed: int, args: argparse.Namespace) -> None:
        self.args = args
        spec = load_spec(DATASET)
        self.spec = spec
        hidden = informative_columns(DATASET, 1)
        valid = workflow.ingest_and_validate(spec.data_path, spec=spec).valid
        valid = valid.sample(n=args.rows, random_state=seed).reset_index(drop=True)
        examples = workflow.prepare_examples(valid, seed=seed, exclude_fields=hidden, spec=spec)
        rows = valid.set_index("application_id", drop=False)
        train = examples[examples["split"] == "train"]
        history = train.sample(frac=protocol.HISTORY_SHARE, random_state=seed)
        self.year = train.drop(history.index)
        self.val, self.test = (
            examples[examples["split"] == "validation"],
            examples[examples["split"] == "test"],
        )
        train_cfg, rlhf_cfg = protocol.settings(args, gate=False)
        self.train_cfg = train_cfg.model_copy(update={"seed": seed})
        self.choice = resolve_method("rlhf", rlhf_cfg.model_copy(update={"max_val_auc_drop": 1.0}))
        self.data = TrainData.build(
            history["text"].tolist(), history["default"].to_numpy(),
            self.val["text"].tolist(), self.val["default"].to_numpy(), DATASET, hidden,
        )  # fmt: skip
        policy, policy_cfg = self.choice.method, self.choice.method_cfg
        seed_everything(seed)
        model, self.tokenizer = policy.load_base(self.train_cfg.base_model, policy_cfg, self.train_cfg)
        model = policy.prepare(model, policy_cfg, None)
        inputs = ObjectiveInputs(
            self.choice.as_parameter_method(),
            model,
            self.tokenizer,
            self.data,
            self.train_cfg,
            progress=False,
        )
        self.sft = supervised_fit(inputs)
        self.sft_state = rlhf_objective.cpu_copy(policy.state_to_save(self.sft.model, policy_cfg))
        self.y_val, self.y_test = self.val["default"].to_numpy(), self.test["default"].to_numpy()
        self.s_val, self.s_test = (
            self.log_odds(self.sft.model, self.val),
            self.log_odds(self.sft.model, self.test),
        )
        self.cost, chosen = protocol.expected_cost(
            self.y_val, 1 / (1 + np.exp(-self.s_val)), self.y_test, 1 / (1 + np.exp(-self.s_test)), spec
        )
        pd_year = chosen.calibrator.transform(
            predict_proba(self.sft.model, self.tokenizer, self.year["text"].tolist(), 64, args.max_length)
        )
        self.declined = pd_year >= chosen.threshold
        self.year_rows = rows.loc[self.year["application_id"].astype(str)].reset_index(drop=True)
        history_rows = rows.loc[history["application_id"].astype(str)].reset_index(drop=True)
        evidence = hidden_evidence(spec, hidden, history_rows, self.year_rows)
        self.defaulted = (
            self.year_rows[spec.target.column].astype(str) == str(spec.target.positive)
        ).to_numpy()
        self.books: dict[str, pd.DataFrame] = {}
        self.pairs: dict[str, pd.DataFrame] = {}
        for kind in KINDS:
            config = AnalystConfig(informed=kind == "informed", override_rate=args.override_rate, seed=seed)
            picked = overridden(pd_year, self.declined, evidence, config, np.random.default_rng(seed))
            book = protocol.book_of_year(
                self.year_rows, self.declined, picked, spec.target.column, str(spec.target.positive)
            )
            self.books[kind] = book
            self.pairs[kind] = pairs_from_book(book, spec, exclude_fields=hidden, decisions="book")

    def log_odds(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        return log_odds(
            predict_proba(model, self.tokenizer, frame["text"].tolist(), 64, self.args.max_length)
        )


def stages(run: Seed, kind: str) -> dict[str, Any]:
    """The reward, PPO and the test split for one kind of analyst (gate and guard open)."""
    captured: dict[str, RewardModelResult] = {}

    def keep_reward(*args: Any, **kwargs: Any) -> RewardModelResult:
        captured["reward"] = train_reward_model(*args, **kwargs)
        return captured["reward"]

    book, pairs = run.books[kind], run.pairs[kind]
    policy, policy_cfg = run.choice.method, run.choice.method_cfg
    policy.load_state(run.sft.model, run.sft_state, policy_cfg)
    feedback = Feedback(
        pairs, "override_ledger", describe(pairs, "override_ledger", f"{kind} simulated analysts")
    )
    real = rlhf_objective.train_reward_model
    rlhf_objective.train_reward_model = keep_reward  # the objective drops its reward model; keep it here
    try:
        result = rlhf_objective.rlhf_after_sft(run.choice, run.sft, run.data, run.train_cfg, feedback)
    finally:
        rlhf_objective.train_reward_model = real
    reward = captured["reward"]
    m_test = margins(reward, run.test["text"].tolist(), run.args.max_length)
    r_val, r_test = run.log_odds(result.model, run.val), run.log_odds(result.model, run.test)
    cost, _ = protocol.expected_cost(
        run.y_val, 1 / (1 + np.exp(-r_val)), run.y_test, 1 / (1 + np.exp(-r_test)), run.spec
    )
    low, high = book["override_side"].eq("low").to_numpy(), book["override_side"].eq("high").to_numpy()
    ppo = [r for r in result.history if "ppo_epoch" in r]
    shift = r_test - run.s_test
    return {
        "overrides": int((low | high).sum()), "low": int(low.sum()), "high": int(high.sum()),
        "low_default_rate": float(run.defaulted[low].mean()) if low.any() else None,
        "high_default_rate": float(run.defaulted[high].mean()) if high.any() else None,
        "pair_accuracy_before": reward.accuracy_before, "pair_accuracy_after": reward.accuracy_after,
        "margin_test_auc": float(roc_auc_score(run.y_test, m_test)),
        "margin_vs_supervised_spearman": float(
            pd.Series(m_test).corr(pd.Series(run.s_test), method="spearman")
        ),
        "ppo_mean_kl": [r["mean_kl"] for r in ppo], "shift_std": float(shift.std()),
        "shift_margin_corr": float(np.corrcoef(shift, m_test)[0, 1]),
        "test_auc": float(roc_auc_score(run.y_test, r_test)), "test_expected_cost": cost,
    }  # fmt: skip


def held_out(run: Seed, kind: str, seed: int) -> dict[str, Any]:
    """The reward's centred margin on override pairs left out of its training, two halves."""
    pairs = run.pairs[kind]
    overrides = np.flatnonzero(pairs["side"].ne("none").to_numpy())
    np.random.default_rng(seed).shuffle(overrides)
    right = {"analyst": [0, 0], "outcome": [0, 0]}
    for half in (overrides[: len(overrides) // 2], overrides[len(overrides) // 2 :]):
        if len(half) == 0:
            continue
        params = RewardParams(epochs=run.args.reward_epochs, max_length=run.args.max_length)
        reward = train_reward_model(
            pairs.drop(pairs.index[half]), run.train_cfg.base_model, params, seed=seed
        )
        margin = margins(reward, pairs["text"].tolist(), run.args.max_length)
        centred = margin - margin.mean()
        for i in half:
            decided_by = str(pairs["decided_by"].iloc[i])
            right[decided_by][0] += int((centred[i] > 0) == (pairs["chosen_decision"].iloc[i] == "decline"))
            right[decided_by][1] += 1
    n = sum(v[1] for v in right.values())
    return {"pairs": n, "right": sum(v[0] for v in right.values()), "by": right}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", choices=("stages", "held_out"), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--sft-epochs", type=int, default=3)
    parser.add_argument("--reward-epochs", type=int, default=3)
    parser.add_argument("--override-rate", type=float, default=0.15)
    parser.add_argument("--kl-coef", type=float, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ensure_tiny_qwen2()
    for seed in args.seeds:
        run = Seed(seed, args)
        out: dict[str, Any] = {
            "seed": seed,
            "supervised_test_auc": float(roc_auc_score(run.y_test, run.s_test)),
            "supervised_test_expected_cost": run.cost,
        }
        for kind in KINDS:
            out[kind] = stages(run, kind) if args.measure == "stages" else held_out(run, kind, seed)
        print(json.dumps(out, default=float), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
