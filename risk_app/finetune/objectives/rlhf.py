"""The RLHF objective: supervised fit -> reward model on analyst feedback -> PPO, over any method.

RLHF is an objective, not a way of choosing parameters. *Which* weights train is the policy
method's business: `policy_method` names any registered method that trains parameters
(`lora` by default; `freeze`, `full`, `adapter` ... work the same) and `policy_params` are
checked by that method's own `Config`. `rlhf_fit` runs three stages on the model the policy
method prepared:

1. **SFT** — the supervised class-weighted loop (`supervised_fit`) with the policy method's
   hooks, as that method alone would train. This model is the PPO reference.
2. **Reward model** — preference pairs "application + preferred decision" > "application +
   the other decision" (`objectives.feedback`: by default the analysts' overrides of the
   run's data set from the override ledger, oriented and weighted by outcomes where known;
   or a feedback file; or the bundled SYNTHETIC demo sample), trained with trl's
   `RewardTrainer` (`objectives.reward_model`, settings in the nested `reward` config). With
   fewer than `min_feedback_pairs` (50) pairs, rlhf refuses to start, before any training.
3. **PPO** — the classifier's approve/decline softmax is the policy; `objectives.ppo` runs
   clipped PPO with a KL penalty to the SFT model, rewarded by the reward model (nested `ppo`)
   with its prior for one decision over the other taken out (`centered_reward_table`).
   PPO runs only if that reward ranks the validation applications' outcomes better than chance
   (`max_reward_p_value`), and if it leaves validation AUC more than `max_val_auc_drop` below
   the SFT policy's, the SFT weights are restored (`objectives.rlhf_guard`);
   `TrainResult.ppo_guard` says which policy was kept and why, and the run record, the model
   card and the CLI repeat it.

The saved model is whatever the policy method saves (LoRA: adapters + head), so reloading
needs only the policy's `load_base` + `prepare` + `load_state`. `history` has one record per
epoch that ran, SFT then PPO (none when the evidence gate stopped it), each with `epoch`,
`train_loss` (the policy's class-weighted cross-entropy on the train set) and `val_auc`; PPO
records add `ppo_epoch`, `ppo_loss`, `mean_kl` (KL to the SFT policy), `ppo_mean_reward`,
`ppo_clip_fraction`, and the first one also the reward model's `reward_loss_before/after`,
`reward_accuracy_before/after`, `reward_margin_mean/std` and `reward_rank_auc/p_value`.

    TrainConfig(method="rlhf", epochs=3, method_params={
        "policy_method": "freeze", "policy_params": {"n_trainable_layers": 1},
        "ppo": {"epochs": 2, "kl_coef": 0.1}, "reward": {"epochs": 1}})
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.metrics import roc_auc_score

from risk_app.errors import ConfigError
from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.events import epoch_ended
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.objectives.base import ObjectiveInputs
from risk_app.finetune.objectives.feedback import Feedback, FeedbackSource, load_feedback
from risk_app.finetune.objectives.ppo import PPOParams, PPOSettings, run_ppo
from risk_app.finetune.objectives.reward_model import (
    RewardParams,
    centered_reward_table,
    score_decisions,
    train_reward_model,
)
from risk_app.finetune.objectives.rlhf_guard import (
    has_evidence,
    reward_evidence,
    verdict_after_ppo,
    verdict_without_ppo,
)
from risk_app.finetune.objectives.supervised import supervised_fit
from risk_app.finetune.predict import model_device, predict_proba
from risk_app.finetune.registry import MethodChoice, ObjectiveMethod, register_objective_method
from risk_app.finetune.run_setup import count_parameters, save_checkpoint
from risk_app.finetune.types import PpoGuardVerdict, TrainData, TrainResult
from risk_app.overrides.pairs import PairDecisions

# Keys of the flat config that artifacts saved before the reward / PPO settings were nested
# carry, and where each lives now (section, key). `lora` was the only policy method then.
_FLAT_KEYS: dict[str, tuple[str, str]] = {
    "reward_base_model": ("reward", "base_model"),
    "reward_adapter": ("reward", "adapter"),
    "reward_epochs": ("reward", "epochs"),
    "reward_learning_rate": ("reward", "learning_rate"),
    "reward_batch_size": ("reward", "batch_size"),
    "reward_max_length": ("reward", "max_length"),
    "ppo_epochs": ("ppo", "epochs"),
    "ppo_updates_per_batch": ("ppo", "updates_per_batch"),
    "ppo_batch_size": ("ppo", "batch_size"),
    "clip_epsilon": ("ppo", "clip_epsilon"),
    "kl_coef": ("ppo", "kl_coef"),
    "ppo_lr": ("ppo", "learning_rate"),
}


def nest_saved_flat_config(values: dict[str, Any]) -> dict[str, Any]:
    """An old flat rlhf config (`lora: {...}`, `reward_*`, `ppo_*`) in today's nested form,
    so models registered before the change still load; a current config passes unchanged."""
    if "lora" not in values or any(k in values for k in ("policy_method", "policy_params", "reward", "ppo")):
        return values
    nested: dict[str, Any] = {"policy_method": "lora", "policy_params": values["lora"]}
    nested["reward"], nested["ppo"] = {}, {}
    for key, value in values.items():
        if key in _FLAT_KEYS:
            section, new_key = _FLAT_KEYS[key]
            nested[section][new_key] = value
        elif key != "lora":
            nested[key] = value
    if nested["reward"].get("adapter") == "lora":
        nested["reward"]["lora"] = values["lora"]  # the reward model's adapters copied the policy's
    return nested


class RlhfParams(BaseModel):
    """Parameters of the `rlhf` method: the policy's parameter method, feedback, reward model, PPO."""

    model_config = ConfigDict(extra="forbid")

    policy_method: str = Field(
        default="lora",
        description="Registered method that chooses which policy weights train (any but 'rlhf').",
    )
    policy_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of policy_method, checked by its own Config."
    )
    sft_epochs: int | None = Field(
        default=None, ge=1, le=1000, description="Supervised epochs before PPO; None = TrainConfig.epochs."
    )
    feedback_source: FeedbackSource | None = Field(
        default=None,
        description="Where the reward model's pairs come from: 'override_ledger' (analysts' overrides of "
        "the run's data set), 'file' (feedback_path) or 'synthetic_demo' (the bundled SYNTHETIC German "
        "sample, a labelled demo); None = 'file' when feedback_path is set, else 'override_ledger'.",
    )
    ledger_decisions: PairDecisions = Field(
        default="overrides",
        description="feedback_source 'override_ledger': 'overrides' (the overridden decisions alone) or "
        "'book' (every decision of the labeled book, the overrides correcting the ones that stood); "
        "see risk_app.overrides.pairs.",
    )
    min_feedback_pairs: int = Field(
        default=50, ge=1, description="rlhf refuses to start with fewer feedback pairs than this."
    )
    feedback_path: str | None = Field(
        default=None, description="Analyst feedback CSV (feedback_source 'file')."
    )
    applications_path: str | None = Field(
        default=None,
        description="Applications the feedback ids refer to; None = the bundled German credit file.",
    )
    applications_dataset: str | None = Field(
        default=None,
        description="Data set (built-in name or spec file) of applications_path; None = german_credit.",
    )
    max_feedback_rows: int | None = Field(
        default=None, ge=2, description="Use a seeded subset of this many feedback rows (quick runs)."
    )
    max_reward_p_value: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="Run PPO only if the reward's decline-minus-approve margin ranks the validation "
        "outcomes better than chance at this one-sided p-value (1.0 = always run PPO).",
    )
    max_val_auc_drop: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description="Keep the PPO policy only if its validation AUC is at most this far below the "
        "supervised policy's; otherwise the supervised weights are restored and the run says so.",
    )
    reward: RewardParams = Field(
        default_factory=RewardParams, description="How the reward model is built and trained."
    )
    ppo: PPOParams = Field(default_factory=PPOParams, description="PPO settings of the policy stage.")

    @model_validator(mode="before")
    @classmethod
    def _nest_saved_flat_config(cls, values: Any) -> Any:
        return nest_saved_flat_config(values) if isinstance(values, dict) else values

    def policy_epochs(self) -> int | None:
        """The epochs the policy method is prepared for: the SFT stage's (AdaLoRA's schedule ends there)."""
        return self.sft_epochs


# `rlhf` is a method name (`risk-app methods`, the launchpad, `--method rlhf`) that resolves to
# this objective over its policy method (`registry.resolve_method`); no method object of its own.
RLHF = register_objective_method(
    ObjectiveMethod(
        name="rlhf",
        description=(
            "Analyst-feedback objective over any parameter method (policy_method, default lora): "
            "supervised fit, a reward model on feedback pairs (trl RewardTrainer), then clipped PPO "
            "on the approve/decline policy with a KL penalty."
        ),
        Config=RlhfParams,
        objective="rlhf",
        suite_params={
            # 2 SFT + 1 PPO epoch = one history record per suite epoch (3).
            "sft_epochs": 2,
            "policy_params": {"r": 4},
            "feedback_source": "synthetic_demo",
            "max_feedback_rows": 16,
            "min_feedback_pairs": 16,
            "reward": {"max_length": 96},
            "ppo": {"epochs": 1, "updates_per_batch": 2},
            # The suite checks PPO's mechanics, so PPO runs and is kept whatever its reward is
            # worth (16 feedback rows on a tiny model rarely give the evidence gate anything).
            "max_reward_p_value": 1.0,
            "max_val_auc_drop": 1.0,
        },
    )
)


def rlhf_params(choice: MethodChoice) -> RlhfParams:
    """The `rlhf` parameters of a method choice that resolved to this objective."""
    if not isinstance(choice.params, RlhfParams):
        raise ConfigError(f"method {choice.name!r} does not train with the 'rlhf' objective")
    return choice.params


# ---- the stages ----------------------------------------------------------------------------
def reward_stage(
    cfg: RlhfParams,
    train_cfg: TrainConfig,
    data: TrainData,
    device: torch.device,
    pairs: pd.DataFrame,
    *,
    policy_val_pd: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Train the reward model on the feedback pairs and score both decisions on every train
    text (PPO's reward table) and every validation text (the evidence gate's test, beyond the
    supervised policy's validation P(default) `policy_val_pd`); `policy_reward` of those scores."""
    reward = train_reward_model(
        pairs, cfg.reward.base_model or train_cfg.base_model, cfg.reward, seed=train_cfg.seed, device=device
    )
    scores = score_decisions(reward.model, reward.tokenizer, data.train_texts, cfg.reward.max_length)
    held_out = score_decisions(reward.model, reward.tokenizer, data.val_texts, cfg.reward.max_length)
    # The reward model itself is dropped: only the policy is kept.
    stats = {"reward_pairs": float(len(pairs)), **reward.summary()}
    return policy_reward(
        scores, data.train_labels, stats, held_out=(held_out, data.val_labels), policy_pd=policy_val_pd
    )


def policy_reward(
    scores: np.ndarray,
    labels: np.ndarray,
    stats: dict[str, float],
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    policy_pd: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """(PPO's reward table (n, 2), `stats` + what the scores say) from reward scores (n, 2:
    approve, decline) of the train texts and their 0/1 outcomes.

    The table is `centered_reward_table(scores)`: the reward's prior for one decision over the
    other is taken out. The stats say how much that was (`reward_margin_mean`, decline minus
    approve), how much application-specific preference is left (`reward_margin_std`) and
    whether it ranks like the outcomes (`reward_rank_auc`, 0.5 = no signal, and
    `reward_rank_p_value`, the evidence gate's one-sided test: `objectives.rlhf_guard`).

    `held_out` (scores, outcomes) of applications the reward model never learnt from — the
    validation split — is where that test is taken when given. On the training applications
    it would be marked by its own answers: an override pair decided by an outcome carries that
    application's label, and the labeled book the policy trains on holds the same applications,
    so a reward model that only memorised its pairs would pass. `policy_pd`: the supervised
    policy's P(default) on those same applications; the test is then of what the reward ranks
    beyond that policy (`rlhf_guard.added_margin`).
    """
    margin = scores[:, 1] - scores[:, 0]
    test_scores, test_labels = held_out if held_out is not None else (scores, labels)
    auc, p_value = reward_evidence(test_scores[:, 1] - test_scores[:, 0], test_labels, policy_pd)
    stats = {
        **stats,
        "reward_margin_mean": float(margin.mean()),
        "reward_margin_std": float(margin.std()),
        "reward_rank_auc": auc,
        "reward_rank_p_value": p_value,
    }
    return centered_reward_table(scores), stats


@dataclass
class PpoOutcome:
    """What the PPO stage hands on: every epoch's record, and the epoch it kept (the best on
    validation, as the supervised loop keeps its best) with that epoch's validation P(default)."""

    history: list[dict[str, float]]
    best_epoch: int = 0  # counted within PPO, 1-based
    best_val_auc: float = -math.inf
    best_val_proba: np.ndarray | None = None
    best_state: dict[str, torch.Tensor] | None = None


def ppo_stage(
    policy: FineTuneMethod,
    policy_cfg: BaseModel,
    model: Any,
    tokenizer: Any,
    data: TrainData,
    train_cfg: TrainConfig,
    cfg: RlhfParams,
    rewards: np.ndarray,
    n_sft: int,
) -> PpoOutcome:
    """PPO against the rewards, KL-anchored to the SFT policy; the model is left at the PPO
    epoch with the best validation AUC."""
    ppo_cfg = train_cfg.model_copy(update={"learning_rate": cfg.ppo.learning_rate})

    def make_optimizer(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        del lr  # carried by ppo_cfg
        groups = [{"params": params, "weight_decay": train_cfg.weight_decay}]
        return policy.make_optimizer(groups, ppo_cfg, policy_cfg)

    outcome = PpoOutcome(history=[])

    def validate(ppo_epoch: int) -> dict[str, float]:
        proba = predict_proba(
            model, tokenizer, data.val_texts, train_cfg.eval_batch_size, train_cfg.max_length
        )
        auc = float(roc_auc_score(data.val_labels, proba))
        if auc > outcome.best_val_auc:
            outcome.best_epoch, outcome.best_val_auc, outcome.best_val_proba = ppo_epoch, auc, proba
            outcome.best_state = cpu_copy(policy.state_to_save(model, policy_cfg))
        return {"epoch": float(n_sft + ppo_epoch), "val_auc": auc}

    outcome.history = run_ppo(
        model, tokenizer, data.train_texts, rewards, PPOSettings.resolve(cfg.ppo, train_cfg),
        # No on_step: AdaLoRA's rank schedule belongs to the SFT run and has ended.
        make_optimizer=make_optimizer, labels=data.train_labels, on_epoch_end=validate,
    )  # fmt: skip
    for record in outcome.history:
        epoch_ended(record)
    if outcome.best_state is not None and outcome.best_epoch != len(outcome.history):
        distributed.load_state(policy, model, outcome.best_state, policy_cfg)
    return outcome


# ---- the objective -------------------------------------------------------------------------
def rlhf_fit(inputs: ObjectiveInputs, /) -> TrainResult:
    """SFT -> reward model -> (evidence gate) PPO -> (guard) on a model the policy method prepared;
    the kept state is PPO's, or the supervised one when the gate or the guard says so."""
    cfg = rlhf_params(inputs.choice)
    started = time.perf_counter()
    data, train_cfg, run_dir = inputs.data, inputs.config, inputs.checkpoint_dir
    # Refuses before any training (and `run.plan` refused before the run started, where it knew the data set).
    feedback = load_feedback(cfg, data.dataset, train_cfg.seed, data.exclude_fields)
    sft_cfg = train_cfg.model_copy(update={"epochs": cfg.sft_epochs or train_cfg.epochs})
    sft = supervised_fit(
        replace(
            inputs, choice=inputs.choice.as_parameter_method(), config=sft_cfg,
            checkpoint_dir=run_dir / "sft" if run_dir else None,
        )
    )  # fmt: skip
    return rlhf_after_sft(inputs.choice, sft, data, train_cfg, feedback, run_dir, started=started)


def rlhf_after_sft(
    choice: MethodChoice,
    sft: TrainResult,
    data: TrainData,
    train_cfg: TrainConfig,
    feedback: Feedback,
    run_dir: Path | None = None,
    *,
    started: float | None = None,
) -> TrainResult:
    """Reward model on `feedback` -> (evidence gate) PPO from the supervised policy `sft` ->
    (guard). `sft.model` is trained further in place, or left as it was when PPO does not run
    or is undone. (`rlhf_fit` calls it after its SFT stage; a benchmark that compares several
    feedbacks from one supervised start calls it once per feedback, from a copy.)"""
    started = time.perf_counter() if started is None else started
    cfg, policy, policy_cfg = rlhf_params(choice), choice.method, choice.method_cfg
    sft_state = cpu_copy(policy.state_to_save(sft.model, policy_cfg))
    rewards, reward_stats = reward_stage(
        cfg, train_cfg, data, model_device(sft.model), feedback.pairs, policy_val_pd=sft.best_val_proba
    )
    evidence = reward_stats["reward_rank_auc"], reward_stats["reward_rank_p_value"]
    if not has_evidence(evidence[1], cfg):
        verdict = verdict_without_ppo(sft, *evidence, cfg, feedback.description)
        return rlhf_result(choice, sft, [], sft.best_val_proba, verdict, time.perf_counter() - started)
    ppo = ppo_stage(
        policy, policy_cfg, sft.model, sft.tokenizer, data, train_cfg, cfg, rewards, len(sft.history)
    )
    # The reward model's numbers go with the first PPO epoch, the stage that uses them.
    ppo.history[0].update(reward_stats)
    if run_dir is not None:
        save_checkpoint(
            policy.state_to_save(sft.model, policy_cfg), run_dir / "ppo", ppo.history[ppo.best_epoch - 1]
        )
    verdict = verdict_after_ppo(sft, ppo.best_val_auc, *evidence, cfg, feedback.description)
    if verdict.kept == "supervised":
        distributed.load_state(policy, sft.model, sft_state, policy_cfg)
        return rlhf_result(
            choice, sft, ppo.history, sft.best_val_proba, verdict, time.perf_counter() - started
        )
    return rlhf_result(
        choice, sft, ppo.history, ppo.best_val_proba, verdict, time.perf_counter() - started,
        ppo_best_epoch=ppo.best_epoch,
    )  # fmt: skip


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a saved state (whole tensors gathered first under FSDP)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in distributed.full_state(state).items()}


def rlhf_result(
    choice: MethodChoice,
    sft: TrainResult,
    ppo_history: list[dict[str, float]],
    val_proba: np.ndarray | None,
    verdict: PpoGuardVerdict,
    wall_seconds: float,
    ppo_best_epoch: int = 0,
) -> TrainResult:
    """The run's result: SFT's run facts, the kept model (PPO's best epoch `ppo_best_epoch`, or
    the supervised one) and its validation numbers; every epoch that ran stays in the history,
    the verdict says which policy was kept."""
    model = sft.model
    model.eval()
    trainable, total = count_parameters(model)
    ppo_kept = verdict.kept == "ppo"
    return TrainResult(
        model=model,
        tokenizer=sft.tokenizer,
        history=[*sft.history, *ppo_history],
        best_epoch=len(sft.history) + ppo_best_epoch if ppo_kept else sft.best_epoch,
        best_val_auc=ppo_history[ppo_best_epoch - 1]["val_auc"] if ppo_kept else sft.best_val_auc,
        trainable_params=trainable,
        total_params=total,
        trainable_percent=100.0 * trainable / max(total, 1),
        wall_seconds=wall_seconds,
        peak_memory_mb=sft.peak_memory_mb,
        tokens_per_second=sft.tokens_per_second,
        device=sft.device,
        method_name=choice.name,
        method_config=choice.params.model_dump(mode="json"),
        best_val_proba=None if val_proba is None else np.asarray(val_proba),
        stopped_early=sft.stopped_early,
        trainable_parameter_names=list(sft.trainable_parameter_names),
        ppo_guard=verdict,
    )
