"""The `rlhf` objective over a parameter method, and its stages: reward modeling on analyst feedback and PPO.

PPO pieces are checked as formulas; the reward model must learn to prefer the analyst's
decision on its training pairs; PPO must move a policy towards what a reward table favours
while its KL to the reference stays bounded; and the full SFT -> RM -> PPO fit must run,
record every stage, and round-trip through save/load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from risk_app.errors import ConfigError, DataFileError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.lora import LoraParams, apply_lora
from risk_app.finetune.objectives.ppo import (
    PPOParams,
    PPOSettings,
    advantages_for,
    categorical_kl,
    clipped_surrogate,
    ppo_loss,
    run_ppo,
)
from risk_app.finetune.objectives.reward_model import (
    RewardParams,
    build_preference_pairs,
    encode_with_decision,
    load_preference_pairs,
    train_reward_model,
)
from risk_app.finetune.objectives.rlhf import RlhfParams
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import resolve_method
from risk_app.finetune.run_setup import seed_everything
from risk_app.finetune.trainer import train_classifier
from risk_app.models.loader import load_classifier
from risk_app.registry.artifact import load_risk_model, save_risk_model
from tests.finetune.helpers import credit_texts


# ---- PPO formulas --------------------------------------------------------------------------
def test_clipped_objective_equals_unclipped_at_ratio_one() -> None:
    logp = torch.log(torch.tensor([0.3, 0.6, 0.9]))
    adv = torch.tensor([1.5, -0.7, 0.2])
    torch.testing.assert_close(clipped_surrogate(logp, logp, adv, 0.2), adv)


def test_clipping_kicks_in_beyond_one_plus_epsilon_for_positive_advantage() -> None:
    logp_old = torch.log(torch.tensor([0.2, 0.2]))
    logp_new = torch.log(torch.tensor([0.3, 0.22])).requires_grad_(True)  # ratios 1.5 and 1.1
    adv = torch.tensor([2.0, 2.0])
    obj = clipped_surrogate(logp_new, logp_old, adv, 0.2)
    torch.testing.assert_close(obj, torch.tensor([1.2 * 2.0, 1.1 * 2.0]))
    obj.sum().backward()
    assert logp_new.grad is not None
    assert logp_new.grad[0] == 0  # clipped: no incentive to push the ratio further
    assert logp_new.grad[1] > 0
    # With a negative advantage the pessimistic bound keeps the unclipped (worse) value.
    neg = clipped_surrogate(logp_new.detach(), logp_old, -adv, 0.2)
    torch.testing.assert_close(neg, torch.tensor([-1.5 * 2.0, -1.1 * 2.0]))


def test_kl_is_zero_for_identical_policies_and_positive_otherwise() -> None:
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    torch.testing.assert_close(categorical_kl(logits, logits), torch.zeros(2))
    assert (categorical_kl(logits, logits.flip(1)) > 0).all()


def test_advantages_have_zero_expectation_under_the_old_policy() -> None:
    old_logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    rewards = torch.tensor([[1.0, 3.0], [0.5, -2.0]])
    probs = torch.softmax(old_logits, dim=-1)
    expected = torch.zeros(2)
    for action in (0, 1):
        adv = advantages_for(old_logits, rewards, torch.full((2,), action))
        expected += probs[:, action] * adv
    torch.testing.assert_close(expected, torch.zeros(2))


def test_ppo_loss_at_the_reference_is_minus_the_mean_advantage() -> None:
    logits = torch.tensor([[0.2, 0.4], [1.0, -1.0]])
    actions = torch.tensor([1, 0])
    logp_old = torch.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
    adv = torch.tensor([1.0, 3.0])
    loss, parts = ppo_loss(logits, actions, logp_old, adv, logits, 0.2, kl_coef=0.5)
    assert loss.item() == pytest.approx(-2.0)
    assert parts["kl"] == pytest.approx(0.0) and parts["clip_fraction"] == 0.0


def test_run_ppo_follows_the_reward_and_keeps_kl_bounded(tiny_qwen2: Path) -> None:
    seed_everything(0)
    base, tokenizer = load_classifier("tiny-qwen2")
    model = apply_lora(base, LoraParams(r=4, dropout=0.0))
    texts, _ = credit_texts(32)
    # A reward table that pays for declining everyone: the policy must move that way.
    rewards = np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (len(texts), 1))
    before = predict_proba(model, tokenizer, texts, 16, 32).mean()
    history = run_ppo(
        model,
        tokenizer,
        texts,
        rewards,
        PPOSettings(epochs=2, batch_size=16, learning_rate=5e-3, kl_coef=0.2, max_length=32),
        labels=np.array([0, 1] * 16),
    )
    after = predict_proba(model, tokenizer, texts, 16, 32).mean()
    assert after > before + 0.05, (before, after)
    assert [r["ppo_epoch"] for r in history] == [1.0, 2.0]
    assert 0 < history[-1]["mean_kl"] < 2.0
    assert all(np.isfinite(r["train_loss"]) for r in history)
    # Rewards sampled under the policy rise as it learns to decline.
    assert history[-1]["ppo_mean_reward"] >= history[0]["ppo_mean_reward"]


def test_ppo_settings_take_the_runs_batch_size_seed_and_token_limit() -> None:
    run = TrainConfig(batch_size=12, seed=5, max_length=64, max_grad_norm=0.5)
    settings = PPOSettings.resolve(PPOParams(epochs=3, kl_coef=0.3), run)
    assert (settings.epochs, settings.kl_coef, settings.batch_size) == (3, 0.3, 12)
    assert (settings.seed, settings.max_length, settings.max_grad_norm) == (5, 64, 0.5)
    assert PPOSettings.resolve(PPOParams(batch_size=4), run).batch_size == 4


# ---- reward model --------------------------------------------------------------------------
def test_pairs_put_the_analysts_decision_in_chosen() -> None:
    pairs = load_preference_pairs(max_rows=20)
    assert len(pairs) == 20
    for row in pairs.itertuples():
        assert row.chosen == f"{row.text} Decision: {row.chosen_decision}."
        assert row.rejected == f"{row.text} Decision: {row.rejected_decision}."
        assert {row.chosen_decision, row.rejected_decision} == {"approve", "decline"}


def test_unknown_feedback_id_is_named() -> None:
    feedback = pd.DataFrame(
        {"application_id": ["nope"], "model_decision": ["approve"], "analyst_decision": ["decline"]}
    )
    apps = pd.DataFrame({"application_id": ["app-1"]})
    with pytest.raises(DataFileError, match=r"fb\.csv: row 1, column 'application_id': 'nope'"):
        build_preference_pairs(feedback, apps, "fb.csv")


def test_encoding_keeps_the_decision_when_the_text_is_truncated(tiny_qwen2: Path) -> None:
    _, tokenizer = load_classifier("tiny-qwen2", num_labels=1)
    text = credit_texts(1)[0][0]
    ids = encode_with_decision(tokenizer, text, "decline", max_length=24)
    assert len(ids) == 24
    assert tokenizer.decode(ids).endswith("Decision: decline." + tokenizer.eos_token)
    with pytest.raises(ConfigError, match="no room"):
        encode_with_decision(tokenizer, text, "decline", max_length=4)


def test_reward_model_learns_to_prefer_the_analysts_decision(tiny_qwen2: Path) -> None:
    pairs = load_preference_pairs(max_rows=48, seed=1)
    result = train_reward_model(
        pairs, "tiny-qwen2", RewardParams(epochs=1, batch_size=8, learning_rate=1e-3, max_length=96)
    )
    assert result.loss_after < result.loss_before
    assert result.accuracy_after > 0.5
    assert any("loss" in record for record in result.log_history)  # trl's own training log


# ---- the method name -----------------------------------------------------------------------
def _parse(params: dict) -> RlhfParams:
    """`rlhf`'s parameters as the registry resolves them (what a run records and an artifact keeps)."""
    choice = resolve_method("rlhf", params)
    assert isinstance(choice.params, RlhfParams)
    return choice.params


def test_rlhf_resolves_to_its_policy_method_and_the_rlhf_objective() -> None:
    # No method object of its own: the name stands for the policy method + the rlhf objective.
    choice = resolve_method("rlhf", {"policy_method": "freeze", "sft_epochs": 2})
    assert (choice.name, choice.method.name, choice.objective) == ("rlhf", "freeze", "rlhf")
    assert choice.method_cfg.model_dump() == choice.params.policy_params  # type: ignore[attr-defined]
    assert choice.policy_epochs == 2
    plain = choice.as_parameter_method()
    assert (plain.name, plain.method.name, plain.objective) == ("freeze", "freeze", "supervised")


def test_config_nests_the_policy_reward_and_ppo_sections() -> None:
    cfg = _parse({"policy_params": {"r": 4, "target_modules": ["q_proj"]}, "ppo": {"kl_coef": 0.05}})
    assert isinstance(cfg, RlhfParams) and cfg.policy_method == "lora" and cfg.ppo.kl_coef == 0.05
    # The policy's parameters are checked by the policy method's own Config and stored in full.
    assert cfg.policy_params["r"] == 4 and cfg.policy_params["alpha"] == 16
    with pytest.raises(ConfigError, match=r"policy_method 'lora': method 'lora' parameters: 'r'"):
        _parse({"policy_params": {"r": 0}})
    with pytest.raises(ConfigError, match=r"unknown key 'rank'\. Allowed keys: r: int"):
        _parse({"policy_params": {"rank": 4}})
    freeze = _parse({"policy_method": "freeze", "policy_params": {"n_trainable_layers": 1}})
    assert freeze.policy_params == {"n_trainable_layers": 1, "modules": None, "head": "linear"}
    bad_sections = (
        {"ppo": {"clip_epsilon": 1.5}}, {"ppo": {"kl_coef": -1}}, {"ppo": {"learning_rate": 0}},
        {"reward": {"adapter": "qlora"}}, {"reward": {"lr": 1e-3}}, {"kl_coef": 0.1},
    )  # fmt: skip
    for bad in bad_sections:
        with pytest.raises(ConfigError, match="method 'rlhf' parameters"):
            _parse(bad)
    # A nested key is named with its section, and the allowed keys list the section's own.
    with pytest.raises(ConfigError, match=r"unknown key 'reward\.lr'.*reward\.learning_rate: float"):
        _parse({"reward": {"lr": 1e-3}})


def test_a_config_saved_in_the_old_flat_form_still_parses() -> None:
    # Artifacts registered before the reward / PPO settings were nested must still load.
    old = {
        "lora": {"r": 4}, "sft_epochs": 2, "reward_adapter": "lora", "reward_max_length": 96,
        "ppo_epochs": 3, "ppo_lr": 1e-3, "kl_coef": 0.2, "clip_epsilon": 0.1, "ppo_batch_size": None,
    }  # fmt: skip
    cfg = _parse(old)
    assert isinstance(cfg, RlhfParams)
    assert (cfg.policy_method, cfg.policy_params["r"], cfg.sft_epochs) == ("lora", 4, 2)
    assert (cfg.reward.adapter, cfg.reward.lora.r, cfg.reward.max_length) == ("lora", 4, 96)
    ppo = cfg.ppo
    assert (ppo.epochs, ppo.learning_rate, ppo.kl_coef, ppo.clip_epsilon) == (3, 1e-3, 0.2, 0.1)
    with pytest.raises(ConfigError, match="unknown key 'kl_coef'"):  # flat keys beside nested ones
        _parse({"ppo": {}, "kl_coef": 0.2})


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ("rlhf", "policy_method 'rlhf' is itself an objective"),
        ("lorra", "unknown policy_method 'lorra'"),
    ],
)
def test_policy_method_must_be_a_parameter_method(policy: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        _parse({"policy_method": policy})
    allowed = str(info.value).split("choose one of: ")[1].split(", ")
    assert "lora" in allowed and "freeze" in allowed and "rlhf" not in allowed


def _rlhf_config(policy_method: str, policy_params: dict) -> TrainConfig:
    return TrainConfig(
        method="rlhf",
        method_params={
            "policy_method": policy_method,
            "policy_params": policy_params,
            "sft_epochs": 2,
            "feedback_source": "synthetic_demo",
            "max_feedback_rows": 24,
            "min_feedback_pairs": 24,
            "reward": {"max_length": 96},
            "ppo": {"epochs": 2, "updates_per_batch": 2, "kl_coef": 0.2, "learning_rate": 1e-3},
            # These check the stages' mechanics: PPO runs and is kept (test_rlhf_no_harm checks
            # the evidence gate and the validation guard).
            "max_reward_p_value": 1.0,
            "max_val_auc_drop": 1.0,
        },
        batch_size=16,
        max_length=48,
        learning_rate=5e-3,
        patience=0,
        seed=0,
        device="cpu",
    )


def test_rlhf_over_lora_records_every_stage_stays_near_the_reference_and_round_trips(
    tiny_qwen2: Path, tmp_path: Path
) -> None:
    texts, labels = credit_texts(48)
    val_texts, val_labels = credit_texts(16, offset=48)
    config = _rlhf_config("lora", {"r": 4})
    result = train_classifier(texts, labels, val_texts, val_labels, config, tmp_path / "run", progress=False)
    history = result.history
    assert [r["epoch"] for r in history] == [1, 2, 3.0, 4.0]
    sft, ppo = history[:2], history[2:]
    assert all("ppo_loss" not in r for r in sft) and all("ppo_loss" in r for r in ppo)
    assert ppo[0]["reward_pairs"] == 24 and "reward_loss_after" in ppo[0]
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_auc"]) for r in history)
    assert all(0 <= r["mean_kl"] < 1.0 for r in ppo), [r["mean_kl"] for r in ppo]
    assert result.method_name == "rlhf" and result.best_val_auc == max(r["val_auc"] for r in ppo)
    assert (tmp_path / "run" / "sft" / "epoch-1").is_dir() and (tmp_path / "run" / "ppo").is_dir()
    assert result.trainable_parameter_names and all(
        "lora_" in n or "modules_to_save" in n for n in result.trainable_parameter_names
    )

    # Save/load like `lora`: load_base + prepare + load_state reproduces the predictions.
    choice = resolve_method("rlhf", config.method_params)
    method, cfg = choice.method, choice.method_cfg
    state = {k: v.detach().cpu().clone() for k, v in method.state_to_save(result.model, cfg).items()}
    assert all("lora_" in k or ".score." in k for k in state)
    seed_everything(7)
    reloaded = method.prepare(method.load_base("tiny-qwen2", cfg, config)[0], cfg)
    method.load_state(reloaded, state, cfg)
    expected = predict_proba(result.model, result.tokenizer, val_texts, 8, 48)
    np.testing.assert_allclose(
        predict_proba(reloaded, result.tokenizer, val_texts, 8, 48), expected, atol=1e-5
    )
    np.testing.assert_allclose(result.best_val_proba, expected, atol=1e-5)


def test_rlhf_over_freeze_trains_only_the_chosen_layer_and_reloads_as_an_artifact(
    tiny_qwen2: Path, tmp_path: Path
) -> None:
    texts, labels = credit_texts(48)
    val_texts, val_labels = credit_texts(16, offset=48)
    config = _rlhf_config("freeze", {"n_trainable_layers": 1, "modules": ["mlp"]})
    seed_everything(config.seed)
    base, _ = load_classifier("tiny-qwen2")
    start = {n: p.detach().clone() for n, p in base.named_parameters()}
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2, 3.0, 4.0]
    assert all(np.isfinite(r["train_loss"]) for r in result.history)
    trained = set(result.trainable_parameter_names)
    assert trained == {n for n in start if n.startswith("model.layers.1.mlp.")} | {"score.weight"}
    after = dict(result.model.named_parameters())
    for name, old in start.items():
        assert torch.equal(old, after[name].detach()) is (name not in trained), name

    folder = save_risk_model(
        tmp_path / "artifact", method_name="rlhf", method_config=config.method_params,
        train_config=config, model=result.model, tokenizer=result.tokenizer, threshold=0.5,
        metrics={"val_auc": result.best_val_auc}, data_hash="test", contract_version="test",
    )  # fmt: skip
    expected = predict_proba(result.model, result.tokenizer, val_texts, 8, 48)
    got = load_risk_model(folder).predict_proba(val_texts, batch_size=8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
