"""Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE): applied, or chosen by measuring them.

Whether the fused kernels pay depends on the GPU and the run, not on a rule: on an H200 they
made full fine-tuning of the 0.5B shape 26 % faster and LoRA 10 % slower, on an H100 LoRA
ran 30 % faster with them. `SpeedConfig.fused_kernels="measure"` therefore times one decoder
layer of the model's own configuration, forward and backward, at the run's tokens per batch,
once with the library's kernels and once with Liger's, on the GPU the run has, and applies
Liger only when it was faster (by `MIN_GAIN`). The answer is kept per GPU and shape for the
process (`measured`).

Liger patches the model's transformers module as well as the instance (classes for models
built later, and the module-level `apply_rotary_pos_emb` every model of that type calls).
`liger_scope` puts the module back as it was, so a measurement, or one benchmark row, does
not leak fused kernels into the next model of the same type.

liger-kernel is optional (a CUDA speed-up); absent, asking for it is a ConfigError.
"""

from __future__ import annotations

import copy
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModel

from risk_app.errors import ConfigError

log = logging.getLogger(__name__)

# Liger must beat the library's kernels by this fraction to be chosen (timing noise).
MIN_GAIN = 0.03
# Tokens a measured layer sees per batch at most (the run's budget, capped) and its row width.
MEASURE_TOKENS = 16_384
MEASURE_WIDTH = 256


def _liger_apply() -> Any:
    try:
        # liger-kernel: a heavy optional library (CUDA and Triton), absent on CPU installs.
        from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance
    except ImportError as exc:
        raise ConfigError(
            "speed.fused_kernels needs the liger-kernel package (pip install liger-kernel)"
        ) from exc
    return _apply_liger_kernel_to_instance


def apply_liger(model: Any) -> None:
    """Liger's RMSNorm, SwiGLU and RoPE on `model` (in place). The cross-entropy kernels target
    a language-model head; a classifier keeps its own loss."""
    _liger_apply()(
        model=model,
        rope=True,
        rms_norm=True,
        swiglu=True,
        cross_entropy=False,
        fused_linear_cross_entropy=False,
    )


@contextmanager
def liger_scope(model: Any) -> Iterator[None]:
    """Restore the transformers modules of `model`'s classes afterwards (Liger's module-level
    patches); the instance patched inside keeps its fused modules, but not the module-level
    RoPE, which is the library's again for every model of that type."""
    names = {type(m).__module__ for m in model.modules()} if isinstance(model, torch.nn.Module) else set()
    modules = [sys.modules[n] for n in names if n.startswith("transformers.models.") and n in sys.modules]
    saved = [(m, dict(vars(m))) for m in modules]
    try:
        yield
    finally:
        for module, before in saved:
            for key, value in before.items():
                if vars(module).get(key) is not value:
                    setattr(module, key, value)


@dataclass(frozen=True)
class KernelTiming:
    """Median seconds of one decoder layer's forward + backward, without and with Liger."""

    gpu: str
    tokens: int
    plain_s: float
    liger_s: float

    @property
    def use_liger(self) -> bool:
        return self.liger_s < (1 - MIN_GAIN) * self.plain_s


_MEASURED: dict[tuple, KernelTiming] = {}


def measured() -> dict[tuple, KernelTiming]:
    """Every measurement of this process, by (GPU, model type, widths, tokens, weight grads)."""
    return dict(_MEASURED)


def _one_layer_model(config: Any, device: torch.device) -> torch.nn.Module:
    """A one-layer, small-vocabulary base model of `config` (random weights: speed only)."""
    small = copy.deepcopy(config)
    small.num_hidden_layers = 1
    small.vocab_size = 256
    if getattr(small, "layer_types", None):
        small.layer_types = small.layer_types[:1]
    with torch.device(device):
        model = AutoModel.from_config(small, dtype=torch.bfloat16)
    return model


def _time_layer(model: torch.nn.Module, tokens: int, weight_grads: bool, repeats: int = 5) -> float:
    for p in model.parameters():
        p.requires_grad_(weight_grads)
    hidden = model.config.hidden_size
    rows = max(1, tokens // MEASURE_WIDTH)
    device = next(model.parameters()).device
    x = torch.randn(rows, MEASURE_WIDTH, hidden, device=device, dtype=torch.bfloat16, requires_grad=True)
    times = []
    for i in range(repeats + 2):  # two warm-ups (Triton compiles on the first)
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = model(inputs_embeds=x, use_cache=False).last_hidden_state
        out.float().square().mean().backward()
        torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
        x.grad = None
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def measure(config: Any, device: torch.device, tokens: int, weight_grads: bool) -> KernelTiming:
    """Time one decoder layer of `config` with the library's kernels and with Liger's."""
    if device.type != "cuda":
        raise ConfigError(f"speed.fused_kernels needs a CUDA device; this run is on {device.type}")
    tokens = max(MEASURE_WIDTH, min(tokens, MEASURE_TOKENS))
    gpu = torch.cuda.get_device_name(device)
    width = getattr(config, "intermediate_size", 0)
    key = (gpu, config.model_type, config.hidden_size, width, tokens, weight_grads)
    if key in _MEASURED:
        return _MEASURED[key]
    plain = _one_layer_model(config, device)
    plain_s = _time_layer(plain, tokens, weight_grads)
    fused = _one_layer_model(config, device)
    with liger_scope(fused):
        apply_liger(fused)
        liger_s = _time_layer(fused, tokens, weight_grads)
    del plain, fused
    torch.cuda.empty_cache()
    timing = KernelTiming(gpu=gpu, tokens=tokens, plain_s=plain_s, liger_s=liger_s)
    _MEASURED[key] = timing
    choice = "Liger" if timing.use_liger else "plain"
    log.info(
        "fused kernels on %s, %s layer, %d tokens: plain %.2f ms, Liger %.2f ms -> %s",
        gpu, config.model_type, tokens, 1e3 * plain_s, 1e3 * liger_s, choice,
    )  # fmt: skip
    return timing
