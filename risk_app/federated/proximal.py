"""FedProx's proximal term as a fine-tuning method hook: the product's loop, one extra loss term.

FedProx (Li et al. 2020) keeps each lender's local training near the round's global weights by
adding mu/2 * ||w - w_global||^2 over the trained parameters. The product's supervised loop
already adds a method's per-run `regularizer` to the loss (EWC and AdaLoRA use it), so FedProx
is a thin wrapper around the lender's own method: every hook is the method's, and the
regularizer is the method's own (if any) plus the proximal term. Flower's `FedProx` strategy
sends `proximal_mu` in each round's fit config; a lender wraps its method with it.

    choice = resolve_method("lora")
    choice = replace(choice, method=WithProximalTerm(choice.method, mu=0.01))
    run_objective(ObjectiveInputs(choice, model, tokenizer, data, config))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.types import ObjectiveName, Regularizer, RunPlan, TrainData


class WithProximalTerm(FineTuneMethod):
    """`inner` with mu/2 * ||w - w_start||^2 over its trainable parameters added to the loss."""

    description = "A method plus FedProx's proximal term (not registered; built per round)."

    def __init__(self, inner: FineTuneMethod, mu: float) -> None:
        self.inner = inner
        self.mu = mu
        self.name = inner.name  # type: ignore[misc]  # results and checkpoints name the real method
        self.Config = inner.Config  # type: ignore[misc]

    def objective_for(self, cfg: BaseModel) -> ObjectiveName:
        return self.inner.objective_for(cfg)

    def parse_config(self, params: Any) -> BaseModel:
        return self.inner.parse_config(params)

    def load_base(
        self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None
    ) -> tuple[Any, Any]:
        return self.inner.load_base(base_model, cfg, train_cfg)

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        return self.inner.prepare(model, cfg, plan)

    def for_inference(self, model: Any, cfg: BaseModel) -> Any:
        return self.inner.for_inference(model, cfg)

    def trainable_parameters(self, model: Any) -> list[tuple[str, torch.nn.Parameter]]:
        return self.inner.trainable_parameters(model)

    def make_optimizer(
        self, param_groups: list[dict[str, Any]], train_cfg: TrainConfig, cfg: BaseModel
    ) -> torch.optim.Optimizer:
        return self.inner.make_optimizer(param_groups, train_cfg, cfg)

    def on_optimizer_step(self, model: Any, global_step: int) -> None:
        self.inner.on_optimizer_step(model, global_step)

    def state_to_save(self, model: Any, cfg: BaseModel | None = None) -> dict[str, torch.Tensor]:
        return self.inner.state_to_save(model, cfg)

    def load_state(self, model: Any, state: Mapping[str, torch.Tensor], cfg: BaseModel | None = None) -> None:
        self.inner.load_state(model, state, cfg)

    def regularizer(
        self, model: Any, tokenizer: Any, data: TrainData, train_cfg: TrainConfig, cfg: BaseModel
    ) -> Regularizer | None:
        """The method's own term plus mu/2 ||w - w_start||^2, w_start = the weights at this call
        (the trainer calls it once, before the first step: the round's global weights)."""
        own = self.inner.regularizer(model, tokenizer, data, train_cfg, cfg)
        if self.mu == 0:
            return own
        named = self.inner.trainable_parameters(model)
        anchor = [p.detach().clone() for _, p in named]
        params = [p for _, p in named]
        half_mu = self.mu / 2

        def proximal(trained: Any) -> torch.Tensor | None:
            term = half_mu * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
            extra = own(trained) if own is not None else None
            return term if extra is None else term + extra

        return proximal
