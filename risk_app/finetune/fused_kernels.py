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

Scoring (`for_scoring`, called when a model is put on a GPU to predict) asks the same question
for the forward pass alone: a small model in bf16 is limited by memory traffic, not matmuls
(SmolLM2-135M: a hidden size of 576, and the library's RMSNorm makes five passes over each
activation in fp32), so the fused RMSNorm and SwiGLU may pay where they did not in training,
or the reverse. Only the instance's norms and MLPs are fused there (RoPE is a module-level
patch, and a scoring process may also train or score other models of the type).

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


def apply_liger(model: Any, *, rope: bool = True) -> None:
    """Liger's RMSNorm, SwiGLU and (with `rope`) RoPE on `model` (in place). The cross-entropy
    kernels target a language-model head; a classifier keeps its own loss."""
    _liger_apply()(
        model=model,
        rope=rope,
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
    """Median seconds of one decoder layer's forward (+ backward, for training), without and
    with Liger."""

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
    # transformers: heavy (seconds to import), and only a GPU measurement needs it here.
    from transformers import AutoModel

    small = copy.deepcopy(config)
    small.num_hidden_layers = 1
    small.vocab_size = 256
    if getattr(small, "layer_types", None):
        small.layer_types = small.layer_types[:1]
    with torch.device(device):
        model = AutoModel.from_config(small, dtype=torch.bfloat16)
    return model


def _time_layer(
    model: torch.nn.Module, tokens: int, weight_grads: bool, repeats: int = 5, *, backward: bool = True
) -> float:
    for p in model.parameters():
        p.requires_grad_(weight_grads)
    hidden = model.config.hidden_size
    rows = max(1, tokens // MEASURE_WIDTH)
    device = next(model.parameters()).device
    x = torch.randn(rows, MEASURE_WIDTH, hidden, device=device, dtype=torch.bfloat16, requires_grad=backward)
    times = []
    for i in range(repeats + 2):  # two warm-ups (Triton compiles on the first)
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        if backward:
            out = model(inputs_embeds=x, use_cache=False).last_hidden_state
            out.float().square().mean().backward()
        else:
            with torch.inference_mode():
                model(inputs_embeds=x, use_cache=False)
        torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
        x.grad = None
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def measure(
    config: Any, device: torch.device, tokens: int, weight_grads: bool, *, backward: bool = True
) -> KernelTiming:
    """Time one decoder layer of `config` with the library's kernels and with Liger's: forward
    and backward (training), or the forward alone without RoPE's kernel (`backward=False`:
    scoring, as `for_scoring` applies it)."""
    if device.type != "cuda":
        raise ConfigError(f"speed.fused_kernels needs a CUDA device; this run is on {device.type}")
    tokens = max(MEASURE_WIDTH, min(tokens, MEASURE_TOKENS))
    gpu = torch.cuda.get_device_name(device)
    width = getattr(config, "intermediate_size", 0)
    key = (gpu, config.model_type, config.hidden_size, width, tokens, weight_grads, backward)
    if key in _MEASURED:
        return _MEASURED[key]
    plain = _one_layer_model(config, device)
    plain_s = _time_layer(plain, tokens, weight_grads, backward=backward)
    fused = _one_layer_model(config, device)
    with liger_scope(fused):
        apply_liger(fused, rope=backward)
        liger_s = _time_layer(fused, tokens, weight_grads, backward=backward)
    del plain, fused
    torch.cuda.empty_cache()
    timing = KernelTiming(gpu=gpu, tokens=tokens, plain_s=plain_s, liger_s=liger_s)
    _MEASURED[key] = timing
    choice = "Liger" if timing.use_liger else "plain"
    log.info(
        "fused kernels on %s, %s layer, %d tokens, %s: plain %.2f ms, Liger %.2f ms -> %s",
        gpu, config.model_type, tokens, "training" if backward else "scoring", 1e3 * plain_s,
        1e3 * liger_s, choice,
    )  # fmt: skip
    return timing


# Set on a model once `for_scoring` has fused its norms and MLPs (so a second call does nothing).
FUSED_FOR_SCORING = "_risk_app_fused_for_scoring"


def liger_available() -> bool:
    """Whether liger-kernel can be imported here (it needs Triton, so CUDA installs only)."""
    try:
        _liger_apply()
    except (ConfigError, ImportError, RuntimeError):
        return False
    return True


def for_scoring(model: Any, tokens: int) -> KernelTiming | None:
    """Fuse `model`'s RMSNorms and SwiGLU MLPs with Liger's kernels for scoring on its GPU when
    one layer's forward at `tokens` tokens a batch measured faster with them (in place).

    Returns the measurement, or None where none was made: not on CUDA, liger-kernel absent, a
    4-bit/8-bit base (its layers are bitsandbytes modules), a model that is not a plain
    transformers model (a peft wrapper), or a model type Liger does not know. The module-level
    patches Liger also makes are put back (`liger_scope`), so only this instance changes; its
    scores move by bf16 rounding only (both compute the norm in fp32)."""
    config = getattr(model, "config", None)
    device = next(iter(model.parameters()), torch.empty(0)).device
    if device.type != "cuda" or config is None or getattr(model, FUSED_FOR_SCORING, False):
        return None
    if not type(model).__module__.startswith("transformers.models."):  # a peft wrapper, a hybrid
        return None
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        return None
    if not liger_available():
        return None
    try:
        timing = measure(config, device, tokens, weight_grads=False, backward=False)
    except (ValueError, KeyError, NotImplementedError) as exc:  # a model type Liger cannot build
        log.info("fused kernels for scoring not measured: %s", exc)
        return None
    if timing.use_liger:
        with liger_scope(model):
            apply_liger(model, rope=False)
        setattr(model, FUSED_FOR_SCORING, True)
    return timing
