"""RLHF must not make the model worse: PPO keeps the supervised ranking, and a guard undoes it if not.

The German credit run that prompted these (issue 24) went 0.738 -> 0.232 validation AUC over
two PPO epochs: the reward model had learnt only the analysts' approval rate (its pair
accuracy was exactly the share of approvals), and PPO's batch-whitened advantages turned that
constant "approve" bonus into a push that inverted the ranking. Here, on both built-in data
sets and three seeds, the whole SFT -> reward model -> PPO objective runs on a small slice of
the real data with simulated analysts, and PPO's own validation AUC (the history record, before
any guard) may not fall more than 0.005 below the supervised policy's. The guard is tested
apart, with a reward that pays for the wrong decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from data_contracts.analyst_feedback import LABEL_TO_DECISION
from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.evaluate.baselines import fit_baseline, predict_default
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives import rlhf as rlhf_objective
from risk_app.finetune.objectives.ppo import advantages_for
from risk_app.finetune.objectives.reward_model import centered_reward_table
from risk_app.finetune.objectives.rlhf_guard import reward_evidence
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import resolve_method
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainData

pytestmark = pytest.mark.slow  # slow: scheduled first (tests/conftest.py)

MAX_DROP = 0.005
N_TRAIN, N_VAL, N_FEEDBACK = 64, 64, 48


# ---- the pieces --------------------------------------------------------------------------
def test_advantages_keep_the_rewards_scale() -> None:
    # Whitened advantages were the same for a reward a thousand times smaller: a reward that
    # barely separates the actions pushed as hard as a decisive one.
    old_logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 0.3]])
    rewards = torch.tensor([[1.0, 3.0], [0.5, -2.0], [0.2, 0.1], [-0.4, 0.9]])
    actions = torch.tensor([0, 1, 1, 0])
    full = advantages_for(old_logits, rewards, actions)
    torch.testing.assert_close(advantages_for(old_logits, rewards * 1e-3, actions), full * 1e-3)


def test_the_reward_table_keeps_each_applications_preference_but_not_the_prior() -> None:
    # A reward model that likes "approve" by 0.7 everywhere says nothing about any applicant.
    constant = np.array([[0.7, 0.0]] * 4)
    np.testing.assert_allclose(centered_reward_table(constant), np.zeros((4, 2)), atol=1e-7)
    # On top of it, applicant 2 looks worse to the reward model: only that difference is left.
    scores = constant + np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.8], [0.0, 0.0]])
    table = centered_reward_table(scores)
    margin = table[:, 1] - table[:, 0]  # decline minus approve
    np.testing.assert_allclose(margin, [-0.2, -0.2, 0.6, -0.2], atol=1e-6)
    np.testing.assert_allclose(table.sum(axis=1), 0.0, atol=1e-7)


# ---- PPO on the real data sets -------------------------------------------------------------
def _slice(split: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded slice of one split (both classes present, real proportions)."""
    return split.groupby("default", group_keys=False).sample(frac=n / len(split), random_state=seed)


@dataclass
class SmallRun:
    """A slice of one built-in data set, the rlhf parameters for it, and the applications."""

    data: TrainData
    params: dict[str, Any]
    valid: pd.DataFrame  # the data set's validated applications
    train_ids: list[str]  # application ids of `data.train_texts`, in order
    val_ids: list[str]  # application ids of `data.val_texts`, in order
    other_train_ids: list[str]  # the rest of the train split (the feedback comes from these)


def _small_run(dataset: str, seed: int, folder: Path) -> SmallRun:
    """Texts of a slice of `dataset` and rlhf parameters whose feedback is simulated analysts
    (the true label, 10 % flipped) on other training applications of the same data set."""
    spec = load_spec(dataset)
    valid = workflow.ingest_and_validate(spec.data_path, spec=spec).valid
    examples = workflow.prepare_examples(valid, seed=seed, spec=spec)
    train_all = examples[examples["split"] == "train"]
    train = _slice(train_all, N_TRAIN, seed)
    val = _slice(examples[examples["split"] == "validation"], N_VAL, seed)
    reviewed = train_all.drop(train.index).sample(N_FEEDBACK, random_state=seed)
    rng = np.random.default_rng(seed)
    label = reviewed["default"].to_numpy(int)
    analyst = np.where(rng.random(len(label)) < 0.1, 1 - label, label)
    feedback = pd.DataFrame(
        {
            "application_id": reviewed["application_id"].astype(str),
            "model_decision": [LABEL_TO_DECISION[int(v)] for v in label],
            "analyst_decision": [LABEL_TO_DECISION[int(v)] for v in analyst],
        }
    )
    feedback_path = folder / f"{dataset}_feedback.csv"
    feedback.to_csv(feedback_path, index=False)
    data = TrainData.build(
        train["text"].tolist(), train["default"].to_numpy(), val["text"].tolist(), val["default"].to_numpy()
    )
    params = {
        "policy_params": {"r": 4},
        "sft_epochs": 2,
        "feedback_path": str(feedback_path),
        "applications_path": str(spec.data_path),
        "applications_dataset": dataset,
        "min_feedback_pairs": N_FEEDBACK,
        "reward": {"max_length": 64},
        "ppo": {"epochs": 2, "updates_per_batch": 4, "learning_rate": 1e-3},
    }
    ids = [str(i) for i in train["application_id"]]
    val_ids = [str(i) for i in val["application_id"]]
    others = [str(i) for i in train_all.drop(train.index)["application_id"]]
    return SmallRun(data, params, valid, ids, val_ids, others)


def _config(params: dict[str, Any], seed: int) -> TrainConfig:
    return TrainConfig(
        method="rlhf", method_params=params, batch_size=16, max_length=64, learning_rate=5e-3,
        patience=0, seed=seed, device="cpu",
    )  # fmt: skip


def _fit(data: TrainData, config: TrainConfig, run_dir: Path | None = None) -> Any:
    return train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, run_dir, progress=False
    )


def _split_history(result: Any) -> tuple[float, list[dict[str, float]]]:
    """(the supervised policy's best validation AUC, the PPO epochs' records)."""
    sft = [r for r in result.history if "ppo_epoch" not in r]
    return max(r["val_auc"] for r in sft), [r for r in result.history if "ppo_epoch" in r]


def _aucs(records: list[dict[str, float]]) -> list[float]:
    return [round(r["val_auc"], 4) for r in records]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dataset", ["german_credit", "uci_credit_card"])
def test_the_ppo_stage_does_not_lower_validation_auc(
    dataset: str, seed: int, tiny_qwen2: Path, tmp_path: Path
) -> None:
    # The whole objective with its own reward model, as `risk-app train --method rlhf` runs it.
    run = _small_run(dataset, seed, tmp_path)
    result = _fit(run.data, _config(run.params, seed))
    supervised_auc, ppo = _split_history(result)
    # What the PPO stage hands on (its best epoch on validation, or the supervised policy if
    # PPO did not run), before the validation guard looks at it.
    after_ppo = max(r["val_auc"] for r in ppo) if ppo else supervised_auc
    assert after_ppo >= supervised_auc - MAX_DROP, (
        f"{dataset} seed {seed}: supervised {supervised_auc:.4f} -> PPO {_aucs(ppo)}"
    )
    verdict = result.ppo_guard
    assert verdict is not None and verdict.supervised_val_auc == supervised_auc
    # A tiny random-weight reward model learns nothing from 48 pairs: the evidence gate must
    # see that and leave the supervised policy alone (the 2026-12 collapse was PPO on such a
    # reward), unless the reward really ranks the outcomes.
    if verdict.reward_rank_p_value > verdict.max_reward_p_value:
        assert verdict.reason == "reward_without_evidence" and not ppo
        assert result.best_val_auc == supervised_auc
    else:
        assert len(ppo) == 2 and verdict.kept == "ppo"


def _analyst_scores(run: SmallRun, seed: int, ids: list[str]) -> np.ndarray:
    """Reward scores (approve, decline) of the applications `ids` by analysts who see more than
    the language model: a logistic regression on the tabular columns, fitted on the rest of the
    train split, plus the prior that made the 2026-12 collapse (approving is worth 0.67 more
    everywhere)."""
    by_id = run.valid.set_index("application_id", drop=False)
    spec = run.params["applications_dataset"]
    analysts = fit_baseline("logistic", by_id.loc[run.other_train_ids], seed=seed, spec=spec)
    pd_seen = predict_default(analysts, by_id.loc[ids], spec=spec)
    log_odds = np.log(pd_seen / (1 - pd_seen))
    return np.stack([0.67 - log_odds / 2, log_odds / 2], axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dataset", ["german_credit", "uci_credit_card"])
def test_ppo_on_an_informative_reward_does_not_lower_validation_auc(
    dataset: str, seed: int, tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _small_run(dataset, seed, tmp_path)

    def informative_reward(
        cfg: Any, train_cfg: Any, data: TrainData, device: Any, pairs: Any, *, policy_val_pd: Any = None
    ) -> Any:
        # Judged as the product judges a reward: on validation, beyond the supervised policy.
        assert policy_val_pd is not None and len(policy_val_pd) == len(data.val_texts)
        held_out = (_analyst_scores(run, seed, run.val_ids), data.val_labels)
        train_scores = _analyst_scores(run, seed, run.train_ids)
        return rlhf_objective.policy_reward(
            train_scores, data.train_labels, {}, held_out=held_out, policy_pd=policy_val_pd
        )

    monkeypatch.setattr(rlhf_objective, "reward_stage", informative_reward)
    # On German credit the tabular analysts add clearly to the tiny policy's ranking of the 64
    # validation applications and the gate (default p 0.05) lets PPO run. On UCI (about 14
    # defaults among them) what they add is not significant on two of the three seeds, and the
    # gate rightly stops PPO there; this test is of PPO on such a reward, so there it is opened.
    gate = {"max_reward_p_value": 1.0} if dataset == "uci_credit_card" else {}
    result = _fit(run.data, _config({**run.params, **gate}, seed))
    supervised_auc, ppo = _split_history(result)
    assert ppo and ppo[0]["reward_rank_auc"] > 0.5  # the reward adds to the policy's ranking
    if not gate:
        assert ppo[0]["reward_rank_p_value"] < 0.05  # the gate let PPO run
    assert max(r["val_auc"] for r in ppo) >= supervised_auc - MAX_DROP, (
        f"{dataset} seed {seed}: supervised {supervised_auc:.4f} -> PPO {_aucs(ppo)}"
    )
    assert all(r["mean_kl"] > 1e-4 for r in ppo)  # PPO did move the policy
    verdict = result.ppo_guard
    assert verdict is not None and verdict.kept == "ppo"
    assert result.best_epoch > len(result.history) - len(ppo)  # a PPO epoch is the kept model


# ---- the guard -------------------------------------------------------------------------------
def _reversed_reward(
    cfg: Any, train_cfg: TrainConfig, data: TrainData, device: torch.device, pairs: pd.DataFrame, **_: Any
) -> tuple[np.ndarray, dict[str, float]]:
    """A reward that pays for approving the applicants who defaulted and declining the others,
    reported to the gate as if it ranked them perfectly (so PPO runs and the guard must act)."""
    bad = data.train_labels.astype(np.float32)
    wrong = np.stack([3.0 * (2 * bad - 1), 3.0 * (1 - 2 * bad)], axis=1)  # approve, decline
    return wrong.astype(np.float32), {"reward_rank_auc": 1.0, "reward_rank_p_value": 0.0}


def test_a_harmful_ppo_stage_is_undone_and_says_so(
    tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rlhf_objective, "reward_stage", _reversed_reward)
    run = _small_run("german_credit", 0, tmp_path)
    params = {
        **run.params,
        "ppo": {"epochs": 2, "updates_per_batch": 4, "learning_rate": 5e-3, "kl_coef": 0.0},
    }
    result = _fit(run.data, _config(params, 0), tmp_path / "run")
    sft = [r for r in result.history if "ppo_epoch" not in r]
    ppo = [r for r in result.history if "ppo_epoch" in r]
    best_sft = max(sft, key=lambda r: r["val_auc"])
    best_ppo = max(r["val_auc"] for r in ppo)
    assert best_ppo < best_sft["val_auc"] - 0.05  # the reversed reward did harm, every epoch
    verdict = result.ppo_guard
    assert verdict is not None and (verdict.kept, verdict.reason) == ("supervised", "ppo_lowered_validation")
    assert verdict.supervised_val_auc == best_sft["val_auc"] and verdict.ppo_val_auc == best_ppo
    assert "PPO discarded" in verdict.sentence() and f"{best_sft['val_auc']:.4f}" in verdict.sentence()
    # The kept model is the supervised one: its weights, its epoch, its validation numbers.
    assert (result.best_epoch, result.best_val_auc) == (best_sft["epoch"], best_sft["val_auc"])
    choice = resolve_method("rlhf", params)
    kept = choice.method.state_to_save(result.model, choice.method_cfg)
    sft_saved = load_file(tmp_path / "run" / "sft" / f"epoch-{best_sft['epoch']}" / "state.safetensors")
    ppo_saved = load_file(tmp_path / "run" / "ppo" / "state.safetensors")
    assert kept.keys() == sft_saved.keys()
    for name, tensor in kept.items():
        torch.testing.assert_close(tensor.detach().cpu(), sft_saved[name])
    assert any(not torch.equal(sft_saved[n], ppo_saved[n]) for n in sft_saved)
    proba = predict_proba(result.model, result.tokenizer, run.data.val_texts, 16, 64)
    np.testing.assert_allclose(result.best_val_proba, proba, atol=1e-5)


def test_the_evidence_gate_asks_what_the_reward_adds_to_the_supervised_policy() -> None:
    # A reward learnt from the whole book mostly copies the decisions that stood, i.e. the
    # supervised model's own: it ranks validation outcomes as well as that model does whether
    # the analysts knew anything or not, and PPO on it moves the policy by noise (issue 24:
    # the old gate let it run on 6 of 10 seeds of uninformed analysts; test cost rose).
    rng = np.random.default_rng(0)
    n = 400
    labels = (rng.random(n) < 0.3).astype(int)
    policy_log_odds = 1.2 * labels + rng.normal(size=n) - 1.0  # a policy that ranks the outcomes
    policy_pd = 1 / (1 + np.exp(-policy_log_odds))
    copy = 0.8 * policy_log_odds + 0.3 + 0.05 * rng.normal(size=n)  # a reward that copies it
    copy_auc, copy_p = reward_evidence(copy, labels)
    assert copy_auc > 0.75 and copy_p < 1e-6  # the margin alone looks like strong evidence
    added_auc, added_p = reward_evidence(copy, labels, policy_pd)
    assert added_p > 0.05 and abs(added_auc - 0.5) < 0.1  # it adds nothing: PPO does not run
    # A reward that knows what the policy does not (analysts who saw the outcome's cause) passes.
    knows = copy + 1.0 * labels + 0.5 * rng.normal(size=n)
    _, knows_p = reward_evidence(knows, labels, policy_pd)
    assert knows_p < 1e-6
    # Through the objective's own statistics: the held-out test is taken beyond the policy.
    scores = np.stack([-copy / 2, copy / 2], axis=1)
    held_out = (scores, labels)
    _, stats = rlhf_objective.policy_reward(scores, labels, {}, held_out=held_out, policy_pd=policy_pd)
    assert stats["reward_rank_p_value"] == added_p


def test_the_evidence_gate_judges_the_reward_on_applications_it_never_learnt_from() -> None:
    # Override pairs decided by outcomes carry their applications' labels, and the labeled book
    # the policy trains on holds the same applications: a reward model that memorised its
    # pairs ranks the training outcomes perfectly and says nothing about anyone else.
    rng = np.random.default_rng(0)
    train_labels = rng.integers(0, 2, 200)
    memorised = np.stack([np.zeros(200), 4.0 * train_labels], axis=1)
    val_labels = rng.integers(0, 2, 200)
    noise = rng.normal(size=(200, 2))
    _, on_train = rlhf_objective.policy_reward(memorised, train_labels, {})
    assert on_train["reward_rank_p_value"] < 1e-6  # what the gate used to look at
    _, held_out = rlhf_objective.policy_reward(memorised, train_labels, {}, held_out=(noise, val_labels))
    assert held_out["reward_rank_p_value"] > 0.05 and abs(held_out["reward_rank_auc"] - 0.5) < 0.1
    assert held_out["reward_margin_mean"] == on_train["reward_margin_mean"]  # PPO's table is the train one
