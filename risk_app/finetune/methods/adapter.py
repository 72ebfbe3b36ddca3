"""`adapter`: bottleneck adapters in every decoder layer; the base model stays frozen.

Written by hand (AdapterHub's `adapters` package pins an older transformers). Per decoder
layer, a `BottleneckAdapter` (down-projection to `hidden // reduction_factor`, non-linearity,
zero-initialised up-projection, see `risk_app.finetune.adapters_layer`) is placed:

* `variant="sequential"`, `placement="pfeiffer"` — one adapter on the MLP block's output
  (Pfeiffer et al. 2021, the efficient default);
* `variant="sequential"`, `placement="houlsby"` — one after self-attention and one after the
  MLP (Houlsby et al. 2019);
* `variant="parallel"` — a side branch next to the MLP: `mlp(x) + adapter(x)` (He et al. 2022).

Because the up-projection starts at zero, the adapted model is exactly the base model before
training. The adapters and the classification head train; nothing else does.

    TrainConfig(method="adapter", method_params={"reduction_factor": 8, "placement": "houlsby"})
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.errors import ConfigError
from risk_app.finetune.adapters_layer import BottleneckAdapter, NonLinearity, attach_adapter
from risk_app.finetune.methods.base import FineTuneMethod, is_head_parameter
from risk_app.finetune.methods.freeze import decoder_layers
from risk_app.finetune.registry import register
from risk_app.finetune.types import RunPlan


class AdapterParams(BaseModel):
    """Parameters of the `adapter` method."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["sequential", "parallel"] = Field(
        default="sequential",
        description="'sequential' (adapter on a block's output) or 'parallel' (side branch next to the MLP).",
    )
    placement: Literal["pfeiffer", "houlsby"] = Field(
        default="pfeiffer",
        description=(
            "Sequential only: 'pfeiffer' = after the MLP; 'houlsby' = after attention and after the MLP."
        ),
    )
    reduction_factor: int = Field(
        default=16,
        ge=1,
        description="Bottleneck width is hidden_size // reduction_factor; at most hidden_size.",
    )
    non_linearity: NonLinearity = Field(default="relu", description="Activation inside the bottleneck.")
    init_scale: float = Field(
        default=1e-2,
        gt=0.0,
        le=1.0,
        description="Std of the down-projection's normal init (up-projection starts at 0).",
    )

    @model_validator(mode="after")
    def _placement_fits_variant(self) -> AdapterParams:
        # 'placement' only means something for sequential adapters; reject an explicit
        # houlsby request on a parallel adapter instead of silently ignoring it.
        if (
            self.variant == "parallel"
            and "placement" in self.model_fields_set
            and self.placement != "pfeiffer"
        ):
            raise ValueError(
                "placement 'houlsby' applies to variant 'sequential' only; "
                "parallel adapters sit beside the MLP"
            )
        return self


def adapter_sites(cfg: AdapterParams) -> tuple[str, ...]:
    """Decoder-layer sub-modules that get an adapter."""
    if cfg.variant == "sequential" and cfg.placement == "houlsby":
        return ("self_attn", "mlp")
    return ("mlp",)


def add_adapters(model: Any, cfg: AdapterParams) -> list[torch.utils.hooks.RemovableHandle]:
    """Insert adapters into every decoder layer of `model`; returns the hook handles."""
    hidden = int(model.config.hidden_size)
    bottleneck = max(1, hidden // cfg.reduction_factor)
    device = next(model.parameters()).device
    handles = []
    for layer in decoder_layers(model):
        for site in adapter_sites(cfg):
            adapter = BottleneckAdapter(hidden, bottleneck, cfg.non_linearity, cfg.init_scale).to(device)
            handles.append(attach_adapter(layer, site, adapter, cfg.variant))
    return handles


@register
class AdapterMethod(FineTuneMethod):
    """Bottleneck adapters (sequential Pfeiffer / Houlsby, or parallel) + head; base frozen."""

    name = "adapter"
    description = "Bottleneck adapters in every decoder layer (Pfeiffer, Houlsby or parallel); base frozen."
    Config = AdapterParams
    # tiny-qwen2 is 64 wide: the default factor 16 leaves a 4-unit bottleneck.
    suite_params = {"reduction_factor": 4, "init_scale": 0.1}

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, AdapterParams)
        if cfg.reduction_factor > int(model.config.hidden_size):
            raise ConfigError(
                f"method 'adapter': reduction_factor={cfg.reduction_factor} exceeds the model's hidden size "
                f"{model.config.hidden_size}"
            )
        for param in model.parameters():
            param.requires_grad_(False)
        add_adapters(model, cfg)
        for name, param in model.named_parameters():
            if ".adapters." in name or is_head_parameter(name):
                param.requires_grad_(True)
        return model
