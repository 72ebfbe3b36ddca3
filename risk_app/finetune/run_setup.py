"""Pieces of a training run shared by the trainer, the objectives and the methods.

Seeding, device and precision choice, class weights, optimizer parameter groups, step counts,
parameter counts, train-set subsampling and checkpoint writing. They sit below everything else
in `risk_app.finetune` (this module imports no other part of it apart from `types`), so the
supervised loop, the RLHF stages and a method's hooks can all use them without importing one
another.
"""

from __future__ import annotations

import math
import random
import resource
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from sklearn.model_selection import train_test_split

from risk_app.atomic import atomic_dir, atomic_write_json
from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.types import TrainData

STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.json"


def seed_everything(seed: int) -> None:
    """Seed python, numpy, torch and transformers: the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    transformers.set_seed(seed)


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; an explicit CUDA device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    return torch.device(device)


def resolve_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this run, or None for plain fp32."""
    if precision == "fp32":
        return None
    if device.type != "cuda":
        if precision == "fp16":
            raise ConfigError("precision 'fp16' needs a CUDA device; use 'fp32' or 'bf16' on CPU")
        # CPU bf16 autocast is slower than fp32 on most CPUs, so 'auto' stays fp32 there.
        return torch.bfloat16 if precision == "bf16" else None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Weights inverse to class frequency, normalised so a balanced set gives 1.0 each."""
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return torch.tensor(len(labels) / (2.0 * counts), dtype=torch.float32)


def weighted_cross_entropy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Class-weighted cross-entropy of `logits` against 0/1 `labels`, as the trainer weights it."""
    target = torch.as_tensor(labels, dtype=torch.long)
    weight = class_weights(np.asarray(labels, dtype=np.int64))
    return float(torch.nn.functional.cross_entropy(logits.float().cpu(), target, weight=weight))


def optimizer_groups(
    named_params: Sequence[tuple[str, torch.nn.Parameter]], weight_decay: float
) -> list[dict[str, Any]]:
    """Decay weight matrices only: decaying biases and norm gains just hurts."""
    decay, no_decay = [], []
    for name, param in named_params:
        if param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def steps_per_epoch(n_train: int, config: TrainConfig) -> int:
    """Optimizer steps in one pass over `n_train` examples (after gradient accumulation)."""
    batches = math.ceil(n_train / config.batch_size)
    return math.ceil(batches / config.gradient_accumulation_steps)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts.

    bitsandbytes 4-bit weights pack two values per byte, so their `numel` is half the real
    count; we undo that so QLoRA's totals compare with the other methods'.
    """
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if param.__class__.__name__ == "Params4bit":
            itemsize = getattr(getattr(param, "quant_storage", None), "itemsize", 1) or 1
            n = n * 2 * itemsize
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def peak_memory_mb(device: torch.device) -> float:
    """CUDA's allocator peak on a GPU; the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS; it is the process peak, not this run's alone.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def subsample_train(data: TrainData, max_rows: int | None, seed: int) -> TrainData:
    """A seeded, stratified subset of the train split (validation untouched)."""
    n = len(data.train_texts)
    if max_rows is None or max_rows >= n:
        return data
    idx = np.arange(n)
    try:
        keep, _ = train_test_split(idx, train_size=max_rows, stratify=data.train_labels, random_state=seed)
    except ValueError:  # a class too small to stratify: plain seeded sample
        keep = np.random.default_rng(seed).choice(idx, size=max_rows, replace=False)
    keep = np.sort(keep)
    texts = [data.train_texts[i] for i in keep]
    return TrainData.build(
        texts, data.train_labels[keep], data.val_texts, data.val_labels, data.dataset, data.exclude_fields
    )


def is_dispatched(model: Any) -> bool:
    """Models placed by accelerate/bitsandbytes must not be moved with `.to()`."""
    return bool(getattr(model, "hf_device_map", None)) or getattr(model, "hf_quantizer", None) is not None


def save_checkpoint(
    state: Mapping[str, torch.Tensor],
    out_dir: Path,
    metrics: dict[str, Any],
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a method's saved `state` as `state.safetensors` + `metrics.json` (+ `extra` files,
    e.g. the trainer state for resuming) into `out_dir`, atomically: a checkpoint is whole or absent."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    with atomic_dir(out_dir) as tmp:
        save_file(tensors, str(tmp / STATE_FILE))
        atomic_write_json(tmp / METRICS_FILE, metrics)
        for name, content in (extra or {}).items():
            (tmp / name).write_bytes(content)
    return out_dir
