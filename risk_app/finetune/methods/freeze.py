"""`freeze`: train only the last N decoder layers (optionally some of their sub-modules) + head.

LLaMA-Factory's "freeze tuning": the embeddings and the early layers, which hold general
language knowledge, stay fixed; the top layers, which shape task-specific features, and the
classification head train. `modules` narrows the trainable part inside those layers to named
sub-modules (e.g. only the MLPs). The trainable parameters are upcast to fp32 so optimizer
updates are not lost to bf16 rounding; the frozen ones keep their dtype (the forward pass
mixes them by type promotion, with or without the trainer's autocast).

With `n_trainable_layers=0` no decoder layer trains: the model is a head on frozen features,
so the trainer runs the `frozen_features` objective (`objective_for`) instead of the supervised
loop: each application's pooled features are computed once by the frozen base and cached
(`risk_app/finetune/features.py`), and only the `score` head trains on them, across epochs,
seeds and runs. The saved model is the same sequence classifier either way.

Which parameters trained is recorded by the trainer, from the optimizer's own parameters, in
`TrainResult.trainable_parameter_names`; `trainable_parameter_names(model)` lists them for any
prepared model.

    TrainConfig(method="freeze", method_params={"n_trainable_layers": 1, "modules": ["mlp"]})
    TrainConfig(method="freeze", method_params={"n_trainable_layers": 0}, epochs=30)  # head only
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risk_app.errors import ConfigError
from risk_app.finetune.methods.base import HEAD_MODULE, FineTuneMethod, is_head_parameter
from risk_app.finetune.registry import register
from risk_app.finetune.standardised_head import STANDARDISATION_PARAMETERS, install_standardised_score
from risk_app.finetune.types import ObjectiveName, RunPlan

# Sub-modules of a Qwen2 / Llama / Mistral decoder layer.
LayerModule = Literal["mlp", "self_attn", "input_layernorm", "post_attention_layernorm"]
# How the head is fitted on frozen features (n_trainable_layers=0); see objectives/frozen_features.py.
FrozenHeadKind = Literal["linear", "logistic", "standardised"]
ALLOWED_MODULES: tuple[str, ...] = LayerModule.__args__


class FreezeParams(BaseModel):
    """Parameters of the `freeze` method."""

    model_config = ConfigDict(extra="forbid")

    n_trainable_layers: int = Field(
        default=2,
        ge=0,
        description=(
            "How many of the last decoder layers train (at most the model's layer count); 0 = only "
            "the head, trained on cached frozen features."
        ),
    )
    modules: list[str] | None = Field(
        default=None,
        description=(
            "Train only these sub-modules of the chosen layers (any of "
            f"{', '.join(ALLOWED_MODULES)}); None = the whole layers."
        ),
    )

    head: FrozenHeadKind = Field(
        default="linear",
        description="With n_trainable_layers=0: linear (the score layer trained with the run's learning "
        "rate and epochs), standardised (the same training, on features standardised by the training "
        "rows' mean and scale, or a consortium's, through a score layer with a bias; mean and scale "
        "are stored in the model) or logistic (L2 logistic regression on standardised features, "
        "strength chosen by validation AUC, folded into the score layer, which then gets a bias).",
    )

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: list[str] | None) -> list[str] | None:
        if modules is None:
            return None
        if not modules:
            raise ValueError(f"modules is empty; choose from {', '.join(ALLOWED_MODULES)} or leave it unset")
        unknown = [m for m in modules if m not in ALLOWED_MODULES]
        if unknown:
            raise ValueError(
                f"unknown module(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(ALLOWED_MODULES)}"
            )
        return list(dict.fromkeys(modules))

    @model_validator(mode="after")
    def _modules_need_layers(self) -> FreezeParams:
        if self.n_trainable_layers == 0 and self.modules is not None:
            raise ValueError(
                "modules names sub-modules of trained layers; with n_trainable_layers=0 leave it unset"
            )
        if self.n_trainable_layers > 0 and self.head != "linear":
            raise ValueError(
                "head chooses how a head on frozen features is fitted; it needs n_trainable_layers=0"
            )
        return self


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The decoder layer list of a *ForSequenceClassification model (`model.model.layers`)."""
    backbone = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    layers = getattr(backbone, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(
            f"method 'freeze': cannot find the decoder layers of {type(model).__name__} "
            "(expected model.model.layers, as in Qwen2 / Llama / Mistral)"
        )
    return layers


def trainable_parameter_names(model: Any) -> list[str]:
    """Names of the parameters that train (requires_grad), in model order."""
    return [name for name, param in model.named_parameters() if param.requires_grad]


def _give_head_a_bias(model: Any) -> None:
    """Replace the bias-free `score` layer by one with a bias (zero), same weights.

    A logistic regression on standardised features folds into the score layer only with an
    intercept; `prepare` builds this both at training and at loading, so saved weights fit."""
    old = getattr(model, HEAD_MODULE)
    if old.bias is not None:
        return
    new = torch.nn.Linear(old.in_features, old.out_features, bias=True, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight)
        new.bias.zero_()
    setattr(model, HEAD_MODULE, new.to(old.weight.device))


@register
class FreezeMethod(FineTuneMethod):
    """The last N decoder layers (or some of their sub-modules) and the head train."""

    name = "freeze"
    description = (
        "Freeze tuning: only the last N decoder layers (optionally named sub-modules) and the head train."
    )
    Config = FreezeParams
    suite_params = {"n_trainable_layers": 1, "modules": ["mlp", "post_attention_layernorm"]}

    def objective_for(self, cfg: BaseModel) -> ObjectiveName:
        """No decoder layer trains: train the head on cached features, not with the full loop."""
        assert isinstance(cfg, FreezeParams)
        return "frozen_features" if cfg.n_trainable_layers == 0 else "supervised"

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, FreezeParams)
        layers = decoder_layers(model)
        n_layers = len(layers)
        if cfg.n_trainable_layers > n_layers:
            raise ConfigError(
                f"method 'freeze': n_trainable_layers={cfg.n_trainable_layers} but the base model has "
                f"only {n_layers} decoder layer(s); choose 0..{n_layers}"
            )
        for param in model.parameters():
            param.requires_grad_(False)
        chosen: list[torch.nn.Module] = []
        for layer in list(layers)[n_layers - cfg.n_trainable_layers :]:
            if cfg.modules is None:
                chosen.append(layer)
                continue
            for module_name in cfg.modules:
                sub = getattr(layer, module_name, None)
                if not isinstance(sub, torch.nn.Module):
                    raise ConfigError(
                        f"method 'freeze': decoder layer {type(layer).__name__} has no sub-module "
                        f"{module_name!r}; allowed: {', '.join(ALLOWED_MODULES)}"
                    )
                chosen.append(sub)
        for module in chosen:
            for param in module.parameters():
                param.requires_grad_(True)
        if cfg.head == "logistic":
            _give_head_a_bias(model)
        elif cfg.head == "standardised" and cfg.n_trainable_layers == 0:
            install_standardised_score(model)
        for name, param in model.named_parameters():
            # The standardisation's mean and scale are head parameters (saved with it) that never train.
            if is_head_parameter(name) and name.rsplit(".", 1)[-1] not in STANDARDISATION_PARAMETERS:
                param.requires_grad_(True)
        # LLaMA-Factory upcasts what trains to fp32: master weights for a half-precision base.
        for param in model.parameters():
            if param.requires_grad and param.is_floating_point() and param.dtype != torch.float32:
                param.data = param.data.float()
        return model
