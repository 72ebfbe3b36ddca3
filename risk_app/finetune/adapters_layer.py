"""Bottleneck adapter layers, and how they are attached to a decoder layer's sub-modules.

A `BottleneckAdapter` is down-projection -> non-linearity -> up-projection (Houlsby et al.
2019; Pfeiffer et al. 2021). The up-projection starts at zero, so a freshly inserted adapter
changes nothing: the adapted model computes exactly what the base model did, and training
moves it away from there.

Adapters attach through forward hooks on the wrapped sub-module (`layer.mlp`,
`layer.self_attn`) rather than by replacing it, so the base model's module tree, parameter
names and forward signatures stay untouched (transformers' attention and cache code looks
modules up by name). The adapter itself is registered as a child of the decoder layer
(`<layer>.adapters.<site>`), so it is part of `named_parameters()` / `state_dict()`.

* sequential: `h = sub(x); h + adapter(h)` — the adapter rewrites the sub-module's output;
* parallel (He et al. 2022): `sub(x) + adapter(x)` — a side branch reading the same input.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

NonLinearity = Literal["relu", "gelu", "silu"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
ADAPTER_CONTAINER = "adapters"


class BottleneckAdapter(nn.Module):
    """`up(act(down(x)))`: a low-dimensional bottleneck; returns the update, not `x + update`."""

    def __init__(
        self, hidden_size: int, bottleneck: int, non_linearity: NonLinearity, init_scale: float
    ) -> None:
        super().__init__()
        self.down_proj = nn.Linear(hidden_size, bottleneck)
        self.act = _ACTIVATIONS[non_linearity]()
        self.up_proj = nn.Linear(bottleneck, hidden_size)
        # Small random down-projection, zero up-projection: the update is exactly 0 at start
        # while the down-projection still receives gradient after the first step.
        nn.init.normal_(self.down_proj.weight, std=init_scale)
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Adapters train in fp32 even on a half-precision base; cast in and back out.
        dtype = self.up_proj.weight.dtype
        return self.up_proj(self.act(self.down_proj(x.to(dtype)))).to(x.dtype)


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output: Any, value: torch.Tensor) -> Any:
    return (value, *output[1:]) if isinstance(output, tuple) else value


def attach_adapter(
    layer: nn.Module,
    site: str,
    adapter: BottleneckAdapter,
    variant: Literal["sequential", "parallel"],
) -> torch.utils.hooks.RemovableHandle:
    """Register `adapter` under `layer.adapters[site]` and hook it onto `layer.<site>`.

    `site` names a sub-module whose first output is the hidden state (`mlp` returns a tensor,
    `self_attn` a tuple `(hidden, attn_weights)`).
    """
    target = getattr(layer, site, None)
    if not isinstance(target, nn.Module):
        raise ValueError(f"{type(layer).__name__} has no sub-module {site!r} to adapt")
    container = getattr(layer, ADAPTER_CONTAINER, None)
    if container is None:
        container = nn.ModuleDict()
        layer.add_module(ADAPTER_CONTAINER, container)
    if site in container:
        raise ValueError(f"{type(layer).__name__}.{site} already has an adapter")
    container[site] = adapter

    if variant == "sequential":

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            hidden = _first(output)
            return _replace_first(output, hidden + adapter(hidden))

    else:

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            x = args[0] if args else kwargs["hidden_states"]
            return _replace_first(output, _first(output) + adapter(x))

    return target.register_forward_hook(hook, with_kwargs=True)
