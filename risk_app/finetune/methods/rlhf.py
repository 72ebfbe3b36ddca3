"""`rlhf`: the analyst-feedback loop — supervised LoRA, a reward model, then PPO.

This is an *objective* over a parameter method, not a new way of choosing parameters: which
weights train is LoRA's business (the nested `lora` config, validated by LoRA's own Config,
and LoRA's `prepare` / save format), and `fit` runs three stages:

1. **SFT** — the supervised class-weighted loop (`supervised_fit`) trains the LoRA classifier
   on the labelled applications, as `lora` would. This model is the PPO reference.
2. **Reward model** — analyst feedback (`data_contracts.analyst_feedback`; default the bundled
   `risk_app/datasets/analyst_feedback_sample.csv`, which is SYNTHETIC: logistic-regression
   model decisions and analyst decisions simulated from the true label with 10 % noise, made
   by `bench/make_feedback_sample.py`) becomes preference pairs "application + analyst's
   decision" > "application + other decision", trained with trl's `RewardTrainer`.
3. **PPO** — the classifier's approve/decline softmax is the policy; `objectives.ppo` runs
   clipped PPO with a KL penalty to the SFT model, rewarded by the reward model.

The saved model is the final LoRA adapters + head, exactly like `lora`'s, so reloading needs
only `load_base` + `prepare` + `load_state`. `history` has one record per epoch, SFT then
PPO, each with `epoch`, `train_loss` (the policy's class-weighted cross-entropy on the train
set) and `val_auc`; PPO records add `ppo_epoch`, `ppo_loss`, `mean_kl` (KL to the SFT policy),
`ppo_mean_reward`, `ppo_clip_fraction`, and the first one also the reward model's
`reward_loss_before/after` and `reward_accuracy_before/after` on its training pairs.

    TrainConfig(method="rlhf", epochs=3,
                method_params={"lora": {"r": 8}, "ppo_epochs": 2, "kl_coef": 0.1})
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod, count_parameters
from risk_app.finetune.methods.lora import LoraMethod, LoraParams, build_peft_config
from risk_app.finetune.objectives.ppo import PPOSettings, run_ppo
from risk_app.finetune.objectives.reward_model import (
    RewardSettings,
    load_preference_pairs,
    score_decisions,
    train_reward_model,
)
from risk_app.finetune.registry import register
from risk_app.finetune.types import TrainData, TrainResult


class RlhfParams(BaseModel):
    """Parameters of the `rlhf` method: the LoRA policy, the reward model and PPO."""

    model_config = ConfigDict(extra="forbid")

    lora: LoraParams = Field(
        default_factory=LoraParams, description="LoRA parameters of the policy (see method 'lora')."
    )
    sft_epochs: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Supervised LoRA epochs before PPO; None = TrainConfig.epochs.",
    )
    feedback_path: str | None = Field(
        default=None, description="Analyst feedback CSV; None = the bundled synthetic sample."
    )
    applications_path: str | None = Field(
        default=None,
        description="Applications the feedback ids refer to; None = the bundled German credit file.",
    )
    max_feedback_rows: int | None = Field(
        default=None, ge=2, description="Use a seeded subset of this many feedback rows (quick runs)."
    )
    reward_base_model: str | None = Field(
        default=None, description="Base of the reward model; None = TrainConfig.base_model."
    )
    reward_adapter: Literal["full", "lora"] = Field(
        default="full", description="Train the whole reward model ('full') or LoRA adapters on it ('lora')."
    )
    reward_epochs: int = Field(
        default=1, ge=1, le=100, description="Reward-model epochs over the feedback pairs."
    )
    reward_learning_rate: float = Field(default=5e-4, gt=0, le=1.0, description="Reward-model learning rate.")
    reward_batch_size: int = Field(
        default=8, ge=1, le=1024, description="Preference pairs per reward-model step."
    )
    reward_max_length: int = Field(
        default=256,
        ge=16,
        le=32768,
        description="Token limit of application + decision for the reward model.",
    )
    ppo_epochs: int = Field(
        default=2, ge=1, le=1000, description="PPO passes over the training applications."
    )
    ppo_updates_per_batch: int = Field(
        default=4, ge=1, le=100, description="PPO gradient steps per sampled batch."
    )
    ppo_batch_size: int | None = Field(
        default=None, ge=1, le=4096, description="Applications per PPO batch; None = TrainConfig.batch_size."
    )
    clip_epsilon: float = Field(default=0.2, gt=0.0, lt=1.0, description="PPO ratio clip range 1 +- epsilon.")
    kl_coef: float = Field(default=0.1, ge=0.0, description="Weight of KL(policy || SFT reference).")
    ppo_lr: float = Field(default=1e-4, gt=0.0, le=1.0, description="Learning rate of the PPO updates.")


@register
class RlhfMethod(FineTuneMethod):
    """SFT LoRA -> reward model on analyst feedback (trl) -> PPO with KL to the SFT model."""

    name = "rlhf"
    description = (
        "Analyst-feedback loop over LoRA: supervised LoRA, a reward model on feedback pairs (trl "
        "RewardTrainer), then clipped PPO on the approve/decline policy with a KL penalty."
    )
    Config = RlhfParams
    suite_params: ClassVar[dict[str, Any]] = {
        # 2 SFT + 1 PPO epoch = one history record per suite epoch (3).
        "sft_epochs": 2,
        "lora": {"r": 4},
        "max_feedback_rows": 16,
        "reward_max_length": 96,
        "ppo_epochs": 1,
        "ppo_updates_per_batch": 2,
    }

    def __init__(self) -> None:
        super().__init__()
        # The parameter method: everything about *which* weights train is delegated to it.
        self.policy_method = LoraMethod()

    def prepare(self, model: Any, cfg: BaseModel) -> Any:
        assert isinstance(cfg, RlhfParams)
        self.policy_method.total_steps = self.total_steps
        return self.policy_method.prepare(model, cfg.lora)

    def regularization_loss(self, model: Any) -> torch.Tensor | None:
        return self.policy_method.regularization_loss(model)

    def on_optimizer_step(self, model: Any, global_step: int) -> None:
        self.policy_method.on_optimizer_step(model, global_step)

    def fit(
        self,
        model: Any,
        tokenizer: Any,
        data: TrainData,
        train_cfg: TrainConfig,
        cfg: BaseModel,
        checkpoint_dir: str | Path | None,
        *,
        progress: bool = True,
    ) -> TrainResult:
        from risk_app.finetune.predict import predict_proba
        from risk_app.finetune.trainer import save_checkpoint, supervised_fit

        assert isinstance(cfg, RlhfParams)
        started = time.perf_counter()
        run_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

        # 1. supervised LoRA: the starting policy and the PPO reference.
        sft_cfg = train_cfg.model_copy(update={"epochs": cfg.sft_epochs or train_cfg.epochs})
        sft = supervised_fit(
            self,
            model,
            tokenizer,
            data,
            sft_cfg,
            cfg,
            run_dir / "sft" if run_dir else None,
            progress=progress,
        )
        model = sft.model
        history: list[dict[str, float]] = list(sft.history)

        # 2. reward model on analyst feedback.
        pairs = load_preference_pairs(
            cfg.feedback_path, cfg.applications_path, cfg.max_feedback_rows, seed=train_cfg.seed
        )
        device = next(model.parameters()).device
        reward = train_reward_model(
            pairs,
            cfg.reward_base_model or train_cfg.base_model,
            RewardSettings(
                epochs=cfg.reward_epochs,
                learning_rate=cfg.reward_learning_rate,
                batch_size=cfg.reward_batch_size,
                max_length=cfg.reward_max_length,
                seed=train_cfg.seed,
            ),
            peft_config=build_peft_config(cfg.lora) if cfg.reward_adapter == "lora" else None,
            device=device,
        )
        reward_stats = {"reward_pairs": float(len(pairs)), **reward.summary()}
        rewards = score_decisions(reward.model, reward.tokenizer, data.train_texts, cfg.reward_max_length)
        del reward  # the policy alone is kept and saved

        # 3. PPO against the reward model, KL-anchored to the SFT policy.
        settings = PPOSettings(
            epochs=cfg.ppo_epochs,
            updates_per_batch=cfg.ppo_updates_per_batch,
            batch_size=cfg.ppo_batch_size or train_cfg.batch_size,
            clip_epsilon=cfg.clip_epsilon,
            kl_coef=cfg.kl_coef,
            learning_rate=cfg.ppo_lr,
            max_grad_norm=train_cfg.max_grad_norm,
            max_length=train_cfg.max_length,
            seed=train_cfg.seed,
        )
        weight_decay = train_cfg.weight_decay
        ppo_cfg = train_cfg.model_copy(update={"learning_rate": cfg.ppo_lr})

        def make_optimizer(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
            del lr  # carried by ppo_cfg
            return self.make_optimizer([{"params": params, "weight_decay": weight_decay}], ppo_cfg)

        n_sft = len(sft.history)
        val_state: dict[str, Any] = {}

        def validate(ppo_epoch: int) -> dict[str, float]:
            proba = predict_proba(
                model, tokenizer, data.val_texts, train_cfg.eval_batch_size, train_cfg.max_length
            )
            val_state["proba"] = proba
            return {
                "epoch": float(n_sft + ppo_epoch),
                "val_auc": float(roc_auc_score(data.val_labels, proba)),
            }

        ppo_history = run_ppo(
            model,
            tokenizer,
            data.train_texts,
            rewards,
            settings,
            # No on_step: AdaLoRA's rank schedule belongs to the SFT run and has ended.
            make_optimizer=make_optimizer,
            labels=data.train_labels,
            on_epoch_end=validate,
        )
        # The reward model's numbers go with the first PPO epoch, the stage that uses them.
        ppo_history[0].update(reward_stats)
        history.extend(ppo_history)
        val_proba = val_state["proba"]
        val_auc = ppo_history[-1]["val_auc"]
        if run_dir is not None:
            save_checkpoint(self, model, run_dir / "ppo", ppo_history[-1])

        model.eval()
        trainable, total = count_parameters(model)
        return TrainResult(
            model=model,
            tokenizer=tokenizer,
            history=history,
            best_epoch=n_sft + cfg.ppo_epochs,  # the final (post-PPO) state is kept
            best_val_auc=val_auc,
            trainable_params=trainable,
            total_params=total,
            trainable_percent=100.0 * trainable / max(total, 1),
            wall_seconds=time.perf_counter() - started,
            peak_memory_mb=sft.peak_memory_mb,
            tokens_per_second=sft.tokens_per_second,
            device=sft.device,
            method_name=self.name,
            method_config=cfg.model_dump(mode="json"),
            best_val_proba=np.asarray(val_proba),
            stopped_early=sft.stopped_early,
        )
