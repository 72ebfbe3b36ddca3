"""Speed levers of the training loop, each switchable so `bench/gpu_throughput.py` can measure it.

A GPU step on a small classifier is mostly waiting: for the host (a `.item()` per step), for
padding (fixed batches of 16 padded to their longest text), for fp32 copies of weights that
never change, and for many small kernel launches. `SpeedConfig` names one switch per cause;
the functions here apply them. None changes what is computed beyond float rounding, except
`token_budget` (batches of varying size, so a different optimization path). On a CPU every
"auto" lever stays off, so CPU runs are bit-identical to the plain loop (see
tests/finetune/test_pinned_loss.py).

    TrainConfig(speed={"token_budget": 16384, "frozen_dtype": "bf16", "fused_kernels": True})

Levers that need CUDA (fused AdamW, Liger kernels, `torch.compile` with CUDA graphs) refuse a
CPU run with a clear error when asked for explicitly, and are skipped when "auto".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn.attention import SDPBackend, sdpa_kernel

from risk_app.errors import ConfigError
from risk_app.finetune import fused_kernels

Auto = Literal["auto", "on", "off"]


class SpeedConfig(BaseModel):
    """Switches of the training loop's speed levers ("auto" = on for CUDA, off on a CPU)."""

    model_config = ConfigDict(extra="forbid")

    token_budget: int | None = Field(
        default=None,
        ge=64,
        description=(
            "Padded tokens per batch: batches are built from length buckets so each carries about "
            "this much work (None = fixed batches of batch_size)."
        ),
    )
    pad_to_multiple_of: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Round each batch's padded length up (few shapes for compile).",
    )
    log_every: int = Field(
        default=50,
        ge=1,
        description="Read the loss back from the device every N optimizer steps (each read is a host sync).",
    )
    frozen_dtype: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="Dtype of frozen base weights; 'auto' = bf16 on CUDA under bf16 autocast."
    )
    fused_adamw: Auto = Field(default="auto", description="torch's fused AdamW kernel (CUDA only).")
    fused_kernels: bool | Literal["measure"] = Field(
        default=False,
        description=(
            "Liger's Triton kernels for RMSNorm, SwiGLU and RoPE (CUDA only); 'measure' = time one "
            "decoder layer with and without them on this GPU and keep the faster."
        ),
    )
    attention: Literal["auto", "sdpa", "eager", "flex_attention", "flash_attention_2"] = Field(
        default="auto",
        description=(
            "Attention kernel: 'auto' = the library's default (SDPA where supported); with packing, "
            "'flex_attention' skips the blocks across applications, 'flash_attention_2' (needs "
            "flash-attn) runs them as variable-length sequences."
        ),
    )
    packing: bool = Field(
        default=False,
        description=(
            "Lay each batch's applications end to end in rows of pack_length tokens (position ids "
            "restart per application, a block-diagonal attention mask): no padded tokens."
        ),
    )
    pack_length: int = Field(
        default=2048, ge=64, le=65536, description="Tokens per packed row (with packing)."
    )
    compile: bool = Field(
        default=False, description="torch.compile each decoder layer of the training model (CUDA only)."
    )
    activation_checkpointing: bool = Field(
        default=False,
        description=(
            "Recompute each decoder layer's activations in the backward pass: far less memory "
            "for large token budgets, about a third more compute."
        ),
    )


def resolve(flag: Auto, device: torch.device) -> bool:
    """An on/off/auto switch for this device ('auto' = on for CUDA)."""
    return flag == "on" or (flag == "auto" and device.type == "cuda")


def _need_cuda(what: str, device: torch.device) -> None:
    if device.type != "cuda":
        raise ConfigError(f"speed.{what} needs a CUDA device; this run is on {device.type}")


# ---- batches -----------------------------------------------------------------------------
def padded_length(n: int, multiple: int | None) -> int:
    """`n` rounded up to `multiple` (unchanged when None)."""
    return n if not multiple else int(math.ceil(n / multiple) * multiple)


def token_budget_batches(
    lengths: Sequence[int], order: Sequence[int], budget: int, max_rows: int, multiple: int | None = None
) -> list[list[int]]:
    """Batches of indices whose padded size (rows x longest) stays within `budget` tokens.

    The shuffled `order` is cut into buckets of about 32 batches' worth of rows; each bucket
    is sorted by length so neighbours pad little, cut greedily into batches, and the batches
    of all buckets are interleaved in the bucket order. Randomness stays (which rows share a
    bucket, which bucket comes first) while the padding waste drops to a few per cent.
    """
    if not order:
        return []
    mean_len = max(1, sum(lengths[i] for i in order) // len(order))
    bucket = max(max_rows, 32 * max(1, budget // padded_length(mean_len, multiple)))
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: lengths[i])
        current: list[int] = []
        for i in chunk:
            width = padded_length(lengths[i], multiple)  # the chunk is sorted: i is the longest
            if current and (width * (len(current) + 1) > budget or len(current) >= max_rows):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
    return batches


def epoch_batches(
    lengths: Sequence[int], order: list[int], batch_size: int, speed: SpeedConfig
) -> list[list[int]]:
    """One epoch's batches: fixed-size slices of `order`, or token-budget batches."""
    if speed.token_budget is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    # A batch may hold more rows than batch_size (short texts); cap it so memory stays bounded.
    return token_budget_batches(lengths, order, speed.token_budget, 64 * batch_size, speed.pad_to_multiple_of)


# ---- model levers ------------------------------------------------------------------------
def apply_load_levers(
    model: Any, speed: SpeedConfig, device: torch.device, *, weight_grads: bool = False
) -> Any:
    """Attention kernel and fused kernels, applied before a method wraps the model.

    `weight_grads`: whether the base's weights will train (full fine-tuning), which changes
    what a measured layer's backward computes (`fused_kernels="measure"`)."""
    if speed.attention != "auto" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(speed.attention)
    if speed.activation_checkpointing:
        enable_activation_checkpointing(model)
    if speed.fused_kernels:
        _need_cuda("fused_kernels", device)
        if speed.fused_kernels == "measure":
            tokens = speed.pack_length * 8 if speed.packing else speed.token_budget or 4096
            if not fused_kernels.measure(model.config, device, tokens, weight_grads).use_liger:
                return model
        fused_kernels.apply_liger(model)
    return model


def enable_activation_checkpointing(model: Any) -> None:
    """Checkpoint every decoder layer (non-reentrant: works with inputs that need no grad, as
    under LoRA's frozen embeddings, and under autocast)."""
    kwargs = {"use_reentrant": False}
    # transformers 5.2x renamed gradient checkpointing to activation checkpointing; the GPU
    # image's 5.17 has only the old name.
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False


def cast_frozen(model: Any, speed: SpeedConfig, device: torch.device, amp_dtype: torch.dtype | None) -> int:
    """Store frozen floating-point weights in bf16 (trainable ones stay fp32); returns how many.

    Under bf16 autocast the matmuls already run in bf16, so an fp32 copy of a frozen weight
    only costs memory and a cast per step.
    """
    wanted = speed.frozen_dtype == "bf16" or (
        speed.frozen_dtype == "auto" and device.type == "cuda" and amp_dtype == torch.bfloat16
    )
    # A 4-bit model is already stored small; peft's prepare_model_for_kbit_training upcast its
    # other weights to fp32 on purpose, and casting them back breaks its matmuls (measured:
    # "expected mat1 and mat2 to have the same dtype" on the GPU).
    if not wanted or any(p.__class__.__name__ == "Params4bit" for p in model.parameters()):
        return 0
    n = 0
    for param in model.parameters():
        if not param.requires_grad and param.dtype == torch.float32:
            param.data = param.data.to(torch.bfloat16)
            n += 1
    return n


def optimizer_options(speed: SpeedConfig, params: Sequence[torch.nn.Parameter]) -> dict[str, Any]:
    """Extra AdamW keyword arguments: `fused=True` when every parameter is on CUDA."""
    devices = {p.device.type for p in params}
    if devices == {"cuda"} and resolve(speed.fused_adamw, torch.device("cuda")):
        return {"fused": True}
    if speed.fused_adamw == "on":
        raise ConfigError("speed.fused_adamw needs every trainable parameter on a CUDA device")
    return {}


# Every SDPA kernel but cuDNN's, in torch's own order of preference.
TRAINING_ATTENTION_BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")


@contextlib.contextmanager
def training_attention() -> Iterator[None]:
    """Attention for a step that will be differentiated: any SDPA kernel except cuDNN's.

    Why (the bf16 NaN of the converted Qwen2.5 bases, issue 22): torch 2.11's default SDPA
    backend on H100/H200 for bf16/fp16 inputs with an attention mask is cuDNN's, and its
    backward returns NaN in dQ when the padded key length is 64 mod 128 (64, 192, 320 ...)
    and a query row's log-sum-exp is below about -88.7: the padded half of the last key tile
    is scored 0 instead of -inf, exp(0 - lse) overflows, and inf x 0 gives NaN
    (pytorch/pytorch#196678). Qwen2.5's attention-sink heads, with their massive activations,
    put whole rows of logits far below zero, so a padded batch of width 192 (German credit's
    texts are 150-200 tokens) turns every gradient NaN while the loss of that step is fine;
    random-init models of the same shape never reach such logits, and fp32 never runs cuDNN's
    kernel, which is why only the real weights in bf16 diverged. The forward pass alone is
    correct, so scoring and frozen features keep the default. The backend is chosen when the
    forward runs (the backward replays it), so both the forward and, for activation
    checkpointing's recomputation, the backward run inside this context. On a CPU it changes
    nothing (cuDNN attention is CUDA-only).
    """
    backends = [getattr(SDPBackend, name) for name in TRAINING_ATTENTION_BACKENDS]
    with sdpa_kernel(backends):
        yield


# Graphs dynamo may keep per compiled code object (see `training_forward`).
COMPILE_RECOMPILE_LIMIT = 64


def training_forward(model: Any, speed: SpeedConfig, device: torch.device) -> Any:
    """The callable the training step runs: the model, with its decoder layers compiled when
    `speed.compile` is on.

    Each decoder layer is compiled on its own (`nn.Module.compile`, in place): the mask is
    built outside the layers, so the packed-sequence detection (a data-dependent branch) stays
    eager, and all layers share one compiled graph per input shape. With packing (rows of one
    width) the batch dimension becomes dynamic after its first change, so varying rows per
    batch do not recompile. Without packing, batches of token-budget buckets change both rows
    and width at once, so the layers are compiled for dynamic shapes from the start (one
    compile rather than a static one and then a dynamic one: each is a minute of a GPU lease).
    Validation runs the same layers, compiled on first use. Dynamo keeps at most
    `recompile_limit` graphs per code object (8 by default) and then runs it eagerly for good;
    every layer shares one code object, and guards on a layer's own constants may give each
    its own graph per shape, so the limit is raised to `COMPILE_RECOMPILE_LIMIT`.
    """
    if not speed.compile:
        return model
    _need_cuda("compile", device)
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), COMPILE_RECOMPILE_LIMIT))
    layers = decoder_layers(model)
    if layers is None:
        return torch.compile(model, dynamic=None if speed.packing else True)
    for layer in layers:
        layer.compile(dynamic=None if speed.packing else True)
    return model


def decoder_layers(model: Any) -> torch.nn.ModuleList | None:
    """The model's stack of decoder layers (the longest ModuleList named `layers`), if any."""
    stacks = [
        mod
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.ModuleList) and name.split(".")[-1] == "layers"
    ]
    return max(stacks, key=len) if stacks else None
