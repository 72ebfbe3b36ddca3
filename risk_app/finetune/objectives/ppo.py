"""A compact PPO for a two-action classifier policy (approve / decline), against a reward model.

trl 1.16 has no PPOTrainer, and its GRPO / RLOO trainers generate text; a credit classifier
does not generate, it chooses. So the policy here is the classifier's softmax over its two
labels, read as actions: label 0 (good) = approve, label 1 (default) = decline.

For each batch of applications x (Schulman et al. 2017):

1. with the current weights frozen as pi_old, sample a ~ pi_old(.|x);
2. reward r = RM(x, a), looked up in the (n, 2) table of reward-model scores for both actions;
3. advantage A = r - b(x), with the baseline b(x) = sum_a pi_old(a|x) RM(x, a), the exact
   expected reward (two actions make it cheap), then normalised over the batch;
4. a few gradient steps on  -min(rho A, clip(rho, 1-eps, 1+eps) A) + beta KL(pi || pi_ref),
   rho = pi(a|x) / pi_old(a|x), where pi_ref is the supervised model at the start of PPO
   (its logits are computed once and kept), and the KL over two actions is exact.

Dropout is off during PPO (model in eval mode, gradients still flow) so that rho is exactly 1
before the first step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from risk_app.finetune.predict import encode_texts, model_device, pad_batch


class PPOSettings(BaseModel):
    """PPO hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=2, ge=1, le=1000, description="Passes over the prompts (applications).")
    updates_per_batch: int = Field(
        default=4, ge=1, le=100, description="Gradient steps on each sampled batch."
    )
    batch_size: int = Field(default=16, ge=1, le=4096, description="Applications per sampled batch.")
    clip_epsilon: float = Field(default=0.2, gt=0.0, lt=1.0, description="PPO ratio clip range 1 +- eps.")
    kl_coef: float = Field(default=0.1, ge=0.0, description="Weight beta of KL(pi || pi_ref).")
    learning_rate: float = Field(
        default=1e-4, gt=0.0, le=1.0, description="Learning rate of the PPO updates."
    )
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient clipping threshold.")
    max_length: int = Field(default=256, ge=8, description="Token limit of the policy's input texts.")
    seed: int = Field(default=42, ge=0, description="Seed for the data order and action sampling.")


# ---- the loss pieces (pure functions, unit-tested) ---------------------------------------
def clipped_surrogate(
    logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip_epsilon: float
) -> torch.Tensor:
    """Per-sample PPO objective min(rho A, clip(rho, 1-eps, 1+eps) A), to be maximised."""
    ratio = torch.exp(logp_new - logp_old)
    clipped = torch.clamp(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    return torch.minimum(ratio * advantages, clipped * advantages)


def categorical_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact per-row KL(pi || pi_ref) between categorical distributions given by logits."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    logq = torch.log_softmax(ref_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(dim=-1)


def ppo_loss(
    logits: torch.Tensor,
    actions: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    ref_logits: torch.Tensor,
    clip_epsilon: float,
    kl_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The scalar loss to minimise and its parts (objective, KL, clip fraction)."""
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp_new = logp_all.gather(1, actions[:, None]).squeeze(1)
    objective = clipped_surrogate(logp_new, logp_old, advantages, clip_epsilon).mean()
    kl = categorical_kl(logits, ref_logits).mean()
    loss = -objective + kl_coef * kl
    ratio = torch.exp(logp_new.detach() - logp_old)
    clip_fraction = ((ratio - 1.0).abs() > clip_epsilon).float().mean()
    stats = {"objective": objective.item(), "kl": kl.item(), "clip_fraction": clip_fraction.item()}
    return loss, stats


def advantages_for(
    old_logits: torch.Tensor, rewards: torch.Tensor, actions: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """r(x, a) - E_{a'~pi_old} r(x, a'), optionally whitened over the batch."""
    probs = torch.softmax(old_logits.float(), dim=-1)
    baseline = (probs * rewards).sum(dim=-1)
    adv = rewards.gather(1, actions[:, None]).squeeze(1) - baseline
    if normalize and adv.numel() > 1 and adv.std() > 1e-8:
        adv = (adv - adv.mean()) / adv.std()
    return adv


def weighted_cross_entropy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Class-weighted cross-entropy, weighted as the supervised trainer weights it."""
    from risk_app.finetune.trainer import class_weights

    target = torch.as_tensor(labels, dtype=torch.long)
    weight = class_weights(np.asarray(labels, dtype=np.int64))
    return float(torch.nn.functional.cross_entropy(logits.float().cpu(), target, weight=weight))


# ---- the loop ----------------------------------------------------------------------------
@torch.no_grad()
def policy_logits(
    model: Any, tokenizer: Any, ids: Sequence[Sequence[int]], batch_size: int = 64
) -> torch.Tensor:
    """Logits (n, 2) of `model` for pre-encoded texts, on CPU, in input order."""
    device = model_device(model)
    chunks = []
    for start in range(0, len(ids), batch_size):
        batch = {k: v.to(device) for k, v in pad_batch(tokenizer, ids[start : start + batch_size]).items()}
        chunks.append(model(**batch).logits.float().cpu())
    return torch.cat(chunks)


def run_ppo(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    rewards: np.ndarray,
    settings: PPOSettings,
    make_optimizer: Callable[[list[torch.nn.Parameter], float], torch.optim.Optimizer] | None = None,
    *,
    labels: np.ndarray | None = None,
    on_step: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int], dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Optimise `model`'s approve/decline policy on `texts`; one history record per epoch.

    `rewards` is (n, 2): the reward-model score of approving / declining each text. The
    reference policy is `model` as it is when this is called. With `labels` (0/1 per text),
    each record also has `train_loss`: the policy's class-weighted cross-entropy on `texts`
    at the end of the epoch, to show how far PPO moves it from the supervised fit.
    `on_epoch_end(epoch)` may return more metrics for the record (e.g. validation AUC).
    """
    if len(texts) != len(rewards):
        raise ValueError(f"{len(texts)} texts but {len(rewards)} reward rows")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("PPO: the model has no trainable parameters")
    optimizer = (
        make_optimizer(params, settings.learning_rate)
        if make_optimizer is not None
        else torch.optim.AdamW(params, lr=settings.learning_rate)
    )
    ids = encode_texts(tokenizer, texts, settings.max_length)
    reward_table = torch.as_tensor(rewards, dtype=torch.float32)
    was_training = model.training
    model.eval()  # no dropout: rho == 1 before the first update
    ref_logits = policy_logits(model, tokenizer, ids)
    device = model_device(model)
    generator = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    step = 0
    try:
        for epoch in range(1, settings.epochs + 1):
            order = torch.randperm(len(ids), generator=generator).tolist()
            sums = {"loss": 0.0, "objective": 0.0, "kl": 0.0, "clip_fraction": 0.0, "reward": 0.0}
            n_updates = n_samples = 0
            for start in range(0, len(order), settings.batch_size):
                idx = order[start : start + settings.batch_size]
                batch = {k: v.to(device) for k, v in pad_batch(tokenizer, [ids[i] for i in idx]).items()}
                with torch.no_grad():
                    old_logits = model(**batch).logits.float().cpu()
                actions = torch.multinomial(
                    torch.softmax(old_logits, dim=-1), 1, generator=generator
                ).squeeze(1)
                batch_rewards = reward_table[idx]
                adv = advantages_for(old_logits, batch_rewards, actions).to(device)
                logp_old = (
                    torch.log_softmax(old_logits, dim=-1).gather(1, actions[:, None]).squeeze(1).to(device)
                )
                ref = ref_logits[idx].to(device)
                acts = actions.to(device)
                for _ in range(settings.updates_per_batch):
                    logits = model(**batch).logits
                    loss, parts = ppo_loss(
                        logits, acts, logp_old, adv, ref, settings.clip_epsilon, settings.kl_coef
                    )
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"PPO loss is {loss.item()} at epoch {epoch}")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                    optimizer.step()
                    step += 1
                    if on_step is not None:
                        on_step(step)
                    sums["loss"] += float(loss)
                    for key in ("objective", "kl", "clip_fraction"):
                        sums[key] += parts[key]
                    n_updates += 1
                sums["reward"] += float(batch_rewards.gather(1, actions[:, None]).sum())
                n_samples += len(idx)
            # KL of the policy at the end of the epoch over all texts, not just the last batch.
            end_logits = policy_logits(model, tokenizer, ids)
            record = {
                "ppo_epoch": float(epoch),
                "ppo_loss": sums["loss"] / n_updates,
                "ppo_objective": sums["objective"] / n_updates,
                "ppo_clip_fraction": sums["clip_fraction"] / n_updates,
                "ppo_mean_reward": sums["reward"] / n_samples,
                "ppo_update_kl": sums["kl"] / n_updates,
                "mean_kl": float(categorical_kl(end_logits, ref_logits).mean()),
            }
            if labels is not None:
                record["train_loss"] = weighted_cross_entropy(end_logits, labels)
            if on_epoch_end is not None:
                record.update(on_epoch_end(epoch))
            history.append(record)
    finally:
        model.train(was_training)
    return history
