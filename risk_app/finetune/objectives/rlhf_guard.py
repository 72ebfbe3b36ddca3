"""What keeps RLHF from making the model worse: an evidence gate before PPO, a guard after it.

On the bundled German credit data the `rlhf` method once took validation AUC from 0.738
(supervised) to 0.232 in two PPO epochs (docs/methods.md, "rlhf"): its reward model had learnt
nothing about the applicants, only the analysts' approval rate, and PPO optimised that. Two
checks now stand around the PPO stage of `objectives.rlhf`:

* **Evidence gate, before PPO.** The reward model's margin m(x) = r(x, decline) - r(x, approve)
  on each validation application must rank those applications' known outcomes better than
  chance *beyond what the supervised policy already ranks*: the margin less its least-squares
  fit on the supervised policy's log-odds (`added_margin`), one-sided Mann-Whitney test, p <=
  `max_reward_p_value` (default 0.05). A margin that does not can only move the ranking at
  random, so PPO does not run. (The analysts are judged by the outcomes, which is what a lender
  does with overrides.) Validation, not the training applications: an override pair decided by
  an outcome carries its application's label, and the labeled book the policy trains on holds
  those applications, so on them a reward model that had only memorised its pairs would pass.
  Beyond the policy, not the margin alone: a reward learnt from the whole book
  (`ledger_decisions: book`) mostly copies the decisions that stood, i.e. the supervised model's
  own, so it ranks validation outcomes about as well as that model does whether the analysts
  knew anything or not (issue 24: the gate let PPO run on 6 of 10 seeds of *uninformed*
  analysts, and test cost rose; docs/rlhf-goals.md).
* **Validation guard, after PPO.** If PPO left validation AUC more than `max_val_auc_drop`
  (default 0.005) below the supervised policy it started from, the supervised weights are
  restored.

Either way a `PpoGuardVerdict` says which policy was kept and why; the trainer's result, the
run record, the model card, MLflow, the CLI and the Dagster metadata all carry it.

    auc, p = reward_evidence(margin, train_labels)
    verdict = verdict_after_ppo(sft_result, ppo_val_auc, auc, p, cfg)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from risk_app.finetune.types import PpoGuardVerdict, TrainResult


class GuardSettings(Protocol):
    """The two thresholds, as `RlhfParams` carries them."""

    max_val_auc_drop: float
    max_reward_p_value: float


def added_margin(margin: np.ndarray, policy_pd: np.ndarray) -> np.ndarray:
    """What the margin says beyond the policy: `margin` less its least-squares fit a + b *
    logit(policy_pd) (the policy's P(default) on the same applications)."""
    margin = np.asarray(margin, dtype=float)
    p = np.clip(np.asarray(policy_pd, dtype=float), 1e-6, 1 - 1e-6)
    design = np.stack([np.ones_like(p), np.log(p / (1 - p))], axis=1)
    coef, *_ = np.linalg.lstsq(design, margin, rcond=None)
    return margin - design @ coef


def reward_evidence(
    margin: np.ndarray, labels: np.ndarray, policy_pd: np.ndarray | None = None
) -> tuple[float, float]:
    """(AUC, one-sided p) of the decline-minus-approve margin against 0/1 outcomes (1 = default):
    does the reward prefer declining the applicants who defaulted more than chance would? With
    the supervised policy's P(default) on the same applications (`policy_pd`), of the margin
    beyond what that policy ranks (`added_margin`)."""
    margin, labels = np.asarray(margin, dtype=float), np.asarray(labels, dtype=int)
    if policy_pd is not None:
        margin = added_margin(margin, policy_pd)
    auc = float(roc_auc_score(labels, margin))
    p_value = float(mannwhitneyu(margin[labels == 1], margin[labels == 0], alternative="greater").pvalue)
    return auc, p_value


def has_evidence(p_value: float, settings: GuardSettings) -> bool:
    """Whether the reward ranks the outcomes well enough for PPO to run on it."""
    return p_value <= settings.max_reward_p_value


def verdict_without_ppo(
    sft: TrainResult, rank_auc: float, p_value: float, settings: GuardSettings, feedback: str = ""
) -> PpoGuardVerdict:
    """The verdict when the evidence gate stopped PPO: the supervised policy, as trained."""
    return PpoGuardVerdict(
        kept="supervised", reason="reward_without_evidence", supervised_val_auc=sft.best_val_auc,
        supervised_epoch=sft.best_epoch, max_drop=settings.max_val_auc_drop, reward_rank_auc=rank_auc,
        reward_rank_p_value=p_value, max_reward_p_value=settings.max_reward_p_value, feedback=feedback,
    )  # fmt: skip


def verdict_after_ppo(
    sft: TrainResult,
    ppo_val_auc: float,
    rank_auc: float,
    p_value: float,
    settings: GuardSettings,
    feedback: str = "",
) -> PpoGuardVerdict:
    """Keep PPO's policy unless its validation AUC is more than `max_val_auc_drop` below the
    supervised policy's (then the caller restores the supervised weights)."""
    lowered = ppo_val_auc < sft.best_val_auc - settings.max_val_auc_drop
    return PpoGuardVerdict(
        kept="supervised" if lowered else "ppo",
        reason="ppo_lowered_validation" if lowered else "ppo_within_tolerance",
        supervised_val_auc=sft.best_val_auc, supervised_epoch=sft.best_epoch, ppo_val_auc=ppo_val_auc,
        max_drop=settings.max_val_auc_drop, reward_rank_auc=rank_auc, reward_rank_p_value=p_value,
        max_reward_p_value=settings.max_reward_p_value, feedback=feedback,
    )  # fmt: skip
