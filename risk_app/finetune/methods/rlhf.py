"""`rlhf`: the analyst-feedback objective registered under a method name.

`risk-app methods` lists `rlhf` beside the parameter methods, so the launchpad and the CLI
choose it the same way. This class only registers it: its `objective` is `"rlhf"` (the
pipeline lives in `risk_app.finetune.objectives.rlhf`), and every parameter hook — load the
base, prepare, optimizer, save and load — goes to the policy method named in its config, a
fresh registry instance each time. Nothing of a run is kept here.

    TrainConfig(method="rlhf", method_params={"policy_method": "lora", "policy_params": {"r": 8}})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.objectives.rlhf import RlhfParams, resolve_policy, sft_plan
from risk_app.finetune.registry import register
from risk_app.finetune.types import RunPlan


def _rlhf_params(cfg: BaseModel | None) -> RlhfParams:
    assert isinstance(cfg, RlhfParams)
    return cfg


@register
class RlhfMethod(FineTuneMethod):
    """SFT -> reward model on analyst feedback (trl) -> PPO with KL, over any parameter method."""

    name = "rlhf"
    description = (
        "Analyst-feedback objective over any parameter method (policy_method, default lora): "
        "supervised fit, a reward model on feedback pairs (trl RewardTrainer), then clipped PPO "
        "on the approve/decline policy with a KL penalty."
    )
    Config = RlhfParams
    objective = "rlhf"
    suite_params: ClassVar[dict[str, Any]] = {
        # 2 SFT + 1 PPO epoch = one history record per suite epoch (3).
        "sft_epochs": 2,
        "policy_params": {"r": 4},
        "feedback_source": "synthetic_demo",
        "max_feedback_rows": 16,
        "min_feedback_pairs": 16,
        "reward": {"max_length": 96},
        "ppo": {"epochs": 1, "updates_per_batch": 2},
        # The suite checks PPO's mechanics, so PPO runs and is kept whatever its reward is worth
        # (16 feedback rows on a tiny model rarely give the evidence gate anything).
        "max_reward_p_value": 1.0,
        "max_val_auc_drop": 1.0,
    }

    def parse_config(self, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Validate, then check the policy method and its parameters with that method's Config;
        the stored config carries the policy's parameters in full (defaults included)."""
        cfg = _rlhf_params(super().parse_config(params))
        _, policy_cfg = resolve_policy(cfg)
        return cfg.model_copy(update={"policy_params": policy_cfg.model_dump(mode="json")})

    def load_base(
        self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None
    ) -> tuple[Any, Any]:
        policy, policy_cfg = resolve_policy(_rlhf_params(cfg))
        return policy.load_base(base_model, policy_cfg, train_cfg)

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        rlhf_cfg = _rlhf_params(cfg)
        policy, policy_cfg = resolve_policy(rlhf_cfg)
        return policy.prepare(model, policy_cfg, sft_plan(plan, rlhf_cfg))

    def make_optimizer(
        self, param_groups: list[dict[str, Any]], train_cfg: TrainConfig, cfg: BaseModel
    ) -> torch.optim.Optimizer:
        policy, policy_cfg = resolve_policy(_rlhf_params(cfg))
        return policy.make_optimizer(param_groups, train_cfg, policy_cfg)

    def state_to_save(self, model: Any, cfg: BaseModel | None = None) -> dict[str, torch.Tensor]:
        """The policy method's saved state. Without `cfg` (a caller that has only the model),
        the default — trainable parameters + head — which is what every policy's prepared
        model needs (for `full` that is every weight)."""
        if cfg is None:
            return super().state_to_save(model)
        policy, policy_cfg = resolve_policy(_rlhf_params(cfg))
        return policy.state_to_save(model, policy_cfg)

    def load_state(
        self, model: Any, state: Mapping[str, torch.Tensor], cfg: BaseModel | None = None
    ) -> None:
        if cfg is None:
            return super().load_state(model, state)
        policy, policy_cfg = resolve_policy(_rlhf_params(cfg))
        return policy.load_state(model, state, policy_cfg)
