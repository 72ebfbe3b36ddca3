"""`full`: fine-tune every parameter of the base model, optionally with an EWC penalty.

The baseline the parameter-efficient methods are measured against. Options:

* `gradient_checkpointing` — recompute decoder-layer activations in the backward pass
  instead of storing them (less memory, ~30 % more compute); the KV cache is switched off,
  as transformers requires.
* `ewc_lambda` — elastic weight consolidation (Kirkpatrick et al. 2017): a penalty
  `lambda / 2 * sum_i F_i (theta_i - theta*_i)^2` that keeps the weights the base model
  relies on near their starting values `theta*`, to limit forgetting. `F` is the diagonal
  empirical Fisher, the mean squared gradient of the classification loss over the first
  `ewc_fisher_batches` training batches, computed at the starting weights before training.
  The trainer calls `regularizer` once per run; the Fisher and the anchor live in the closure
  it returns (`EwcPenalty`), never on the method object.

Mixed precision is the trainer's (`TrainConfig.precision` autocast). The weights themselves
are kept in fp32 (a bf16/fp16 base is upcast in `prepare`) so AdamW updates are not lost to
rounding. `state_to_save` is the whole model: the only method whose artifact holds every weight.

    TrainConfig(method="full", learning_rate=5e-5, method_params={"ewc_lambda": 100.0})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.predict import encode_texts, model_device, pad_batch
from risk_app.finetune.registry import register
from risk_app.finetune.speed import enable_activation_checkpointing
from risk_app.finetune.types import RunPlan, TrainData


class FullParams(BaseModel):
    """Parameters of the `full` method."""

    model_config = ConfigDict(extra="forbid")

    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in backward to save memory (disables the KV cache)."
    )
    ewc_lambda: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Strength of the elastic-weight-consolidation penalty towards the base weights; 0 = off. "
            "Fisher entries are squared gradients (often 1e-8..1e-4), so useful values are large, ~1e3..1e6."
        ),
    )
    ewc_fisher_batches: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="Training batches whose squared gradients estimate the diagonal Fisher (EWC only).",
    )


def estimate_diagonal_fisher(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    labels: torch.Tensor,
    *,
    batch_size: int,
    max_length: int,
    n_batches: int,
) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: mean over batches of the squared loss gradient, per parameter.

    Uses the true labels (the "empirical" Fisher), the model's current weights and the plain
    cross-entropy. Batches are the first `n_batches` of the data in order, so the estimate is
    deterministic for a fixed data order. The model's gradients are cleared afterwards.
    """
    device = model_device(model)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    ids = encode_texts(tokenizer, texts, max_length)
    was_training = model.training
    # Eval mode: dropout off, so the estimate reflects the deterministic starting model.
    model.eval()
    n_done = 0
    try:
        for start in range(0, min(len(ids), n_batches * batch_size), batch_size):
            batch = {
                k: v.to(device) for k, v in pad_batch(tokenizer, ids[start : start + batch_size]).items()
            }
            target = labels[start : start + batch_size].to(device)
            model.zero_grad(set_to_none=True)
            logits = model(**batch).logits
            torch.nn.functional.cross_entropy(logits.float(), target).backward()
            for name, param in params.items():
                if param.grad is not None:
                    fisher[name] += param.grad.detach().float() ** 2
            n_done += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {n: f / max(n_done, 1) for n, f in fisher.items()}


@dataclass(frozen=True)
class EwcPenalty:
    """One run's EWC term, `lambda/2 * sum F (theta - theta*)^2`, as a regularizer closure."""

    strength: float
    fisher: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]

    def __call__(self, model: Any) -> torch.Tensor:
        terms = []
        for name, param in model.named_parameters():
            fisher = self.fisher.get(name)
            if fisher is None:
                continue
            terms.append((fisher * (param.float() - self.anchor[name].float()) ** 2).sum())
        return 0.5 * self.strength * torch.stack(terms).sum()


def start_ewc(
    model: Any, tokenizer: Any, data: TrainData, train_cfg: TrainConfig, cfg: FullParams
) -> EwcPenalty:
    """Measure the Fisher diagonal at the current weights and anchor the penalty there."""
    fisher = estimate_diagonal_fisher(
        model,
        tokenizer,
        data.train_texts,
        torch.as_tensor(data.train_labels, dtype=torch.long),
        batch_size=train_cfg.batch_size,
        max_length=train_cfg.max_length,
        n_batches=cfg.ewc_fisher_batches,
    )
    anchor = {n: p.detach().clone() for n, p in model.named_parameters() if n in fisher}
    return EwcPenalty(cfg.ewc_lambda, fisher, anchor)


@register
class FullMethod(FineTuneMethod):
    """Every weight trains; optional gradient checkpointing and EWC regularisation."""

    name = "full"
    description = "Full fine-tuning of every weight; optional gradient checkpointing and EWC penalty."
    Config = FullParams

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, FullParams)
        if getattr(model, "is_quantized", False):
            raise ConfigError(
                "method 'full' cannot train a quantized base model (its weights are frozen integers); "
                "use 'qlora', or load the base without quantization"
            )
        # fp32 master weights: AdamW steps of ~1e-5 vanish when added to bf16 weights.
        if any(p.is_floating_point() and p.dtype != torch.float32 for p in model.parameters()):
            model.float()
        for param in model.parameters():
            param.requires_grad_(True)
        if cfg.gradient_checkpointing:
            enable_activation_checkpointing(model)
        return model

    def regularizer(
        self, model: Any, tokenizer: Any, data: TrainData, train_cfg: TrainConfig, cfg: BaseModel
    ) -> EwcPenalty | None:
        """EWC's penalty for this run (Fisher measured now, at the starting weights); None when off."""
        assert isinstance(cfg, FullParams)
        if cfg.ewc_lambda <= 0:
            return None
        return start_ewc(model, tokenizer, data, train_cfg, cfg)

    def state_to_save(self, model: Any, cfg: BaseModel | None = None) -> dict[str, torch.Tensor]:
        """Every parameter: the whole fine-tuned model."""
        return {name: param.detach() for name, param in model.named_parameters()}
