"""Batched inference: P(default) for a list of serialized applications.

Texts are grouped by token length, then the results are put back in the caller's order.
On the CPU a batch holds texts of one length only, so nothing is padded and attention needs no
mask. On a CUDA device (`bucketed_logits`) texts are tokenized in slices by a background thread
while the GPU scores the slice before, and each slice is cut into batches of a few fixed shapes:
widths are multiples of `BUCKET_WIDTH` tokens, rows per batch are the token budget over the
width, and a bucket's last, partial batch is topped up with one-token rows to a power of two.
A long file meets the same handful of shapes in every chunk, and even its first chunk meets
only a few, so the GPU's per-shape start (kernel choice, allocator growth) is paid a few
times rather than once per batch. Nothing here runs row by row.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from risk_app.finetune import fused_kernels

# Padded tokens per batch on a GPU: enough work per launch for a small model ...
GPU_TOKEN_BUDGET = 65_536
# ... but no more than a layer's transient activations fit in this much memory: a fixed 65,536
# tokens through a 7B layer (MLP width 18,944) is about 10 GB, more than its 4-bit weights.
GPU_ACTIVATION_BYTES = 1 << 30
# ... and a 4-bit or 8-bit base, loaded so to fit a small GPU, a quarter of that: measured on the
# Qwen2-7B shape under QLoRA (H200, 2026-12-02), validation's batches set the run's peak, 6,855
# MiB with 1 GiB of activations against 6,217 MiB with 256 MiB.
QUANTIZED_ACTIVATION_BYTES = 1 << 28
# Texts tokenized a call: each call starts the tokenizer's thread pool again (system time), so
# not too few either.
ENCODE_SLICE = 16_384
# GPU scoring: batch widths are multiples of this many tokens (4 widths up to 256 tokens) ...
BUCKET_WIDTH = 64
# ... and texts are tokenized in slices of these sizes (the last repeats), the first small so
# the GPU starts early; the next slice is tokenized while the GPU scores this one.
GPU_SLICES = (1_024, 4_096, 16_384)


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to `max_length`, unpadded."""
    out: list[list[int]] = []
    # In slices: a fast tokenizer's encodings also hold token strings and offsets (~100 bytes
    # a token), so 50,000 texts at once would take gigabytes only to be thrown away.
    for start in range(0, len(texts), ENCODE_SLICE):
        piece = list(texts[start : start + ENCODE_SLICE])
        encoded = tokenizer(piece, truncation=True, max_length=max_length, padding=False)
        out.extend(list(ids) for ids in encoded["input_ids"])
    return out


def pad_batch(
    tokenizer: Any, sequences: Sequence[Sequence[int]], multiple: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad token id lists to the longest one (rounded up to `multiple`), on the tokenizer's padding side."""
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("tokenizer has no pad token; load it through risk_app.models.loader")
    lengths = np.fromiter((len(seq) for seq in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max())
    if multiple:
        width = -(-width // multiple) * multiple
    left = getattr(tokenizer, "padding_side", "right") == "left"
    # One vectorized fill rather than a tensor per row: on a GPU the host builds every batch,
    # and a Python loop over thousands of rows kept the device waiting. Row-major order of the
    # real positions is each row's tokens in order, for either padding side.
    cols = np.arange(width)
    real = cols >= (width - lengths)[:, None] if left else cols < lengths[:, None]
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    flat = itertools.chain.from_iterable(sequences)
    ids[real] = np.fromiter(flat, dtype=np.int64, count=int(lengths.sum()))
    ids, mask = torch.from_numpy(ids), torch.from_numpy(real.astype(np.int64))
    return {"input_ids": ids, "attention_mask": mask}


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (where inputs must go)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row positions in batches of at most `batch_size` rows that share one token length.

    Longest first (the first batch shows at once whether memory suffices). A batch of one
    length needs no padding, so attention takes the plain causal path (no mask is built) and a
    row's score does not depend on which other rows share its batch or its file chunk."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for _, group in itertools.groupby(order, key=lambda i: lengths[i]):
        rows = list(group)
        batches.extend(rows[start : start + batch_size] for start in range(0, len(rows), batch_size))
    return batches


def gpu_token_budget(model: Any) -> int:
    """Padded tokens per GPU batch for this model: `GPU_TOKEN_BUDGET`, less for wide models.

    A decoder layer's inference holds about (3 x MLP width + 6 x hidden) bf16 values a token at
    once (gate, up and their product; the residual stream, norms and attention outputs), within
    `GPU_ACTIVATION_BYTES`, or `QUANTIZED_ACTIVATION_BYTES` for a 4-bit or 8-bit base."""
    config = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    width = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    per_token = 2 * (3 * width + 6 * hidden)
    if per_token <= 0:
        return GPU_TOKEN_BUDGET
    quantized = any(getattr(m, "is_loaded_in_4bit", False) or getattr(m, "is_loaded_in_8bit", False)
                    for m in (model, getattr(model, "base_model", None)))  # fmt: skip
    memory = min(GPU_ACTIVATION_BYTES, QUANTIZED_ACTIVATION_BYTES) if quantized else GPU_ACTIVATION_BYTES
    return max(2_048, min(GPU_TOKEN_BUDGET, memory // per_token))


def _run_batches(
    model: Any, tokenizer: Any, sequences: list[list[int]], batches: list[list[int]], device: torch.device
) -> np.ndarray:
    """Logits of every batch, put back in `sequences` order."""
    on_gpu = device.type == "cuda"
    pieces: list[torch.Tensor] = []
    with torch.inference_mode(), _gpu_autocast(model, device):
        for batch_idx in batches:
            batch = pad_batch(tokenizer, [sequences[i] for i in batch_idx])
            if on_gpu:  # pinned host memory lets the copy overlap the previous batch's compute
                batch = {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
            else:
                batch = {k: v.to(device) for k, v in batch.items()}
            # Kept on the device: a copy back per batch would make the host wait for every
            # batch instead of preparing the next one while the GPU computes.
            pieces.append(model(**batch).logits.float())
    logits = torch.cat(pieces).cpu().numpy()
    out = np.empty_like(logits)
    out[np.concatenate([np.asarray(b) for b in batches])] = logits
    return out


def _gpu_autocast(model: Any, device: torch.device) -> Any:
    """bf16 autocast on a CUDA device whose model still holds fp32 weights; nothing elsewhere.

    Any fp32 weight counts, not only the first: a QLoRA model keeps bf16 embeddings beside
    its fp32 head and adapters, and without autocast their matmuls meet mismatched dtypes."""
    if device.type != "cuda" or not torch.cuda.is_bf16_supported():
        return contextlib.nullcontext()
    if not any(p.dtype == torch.float32 for p in model.parameters()):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def cast_for_gpu_inference(model: Any, *, fused: bool = True) -> Any:
    """A model that will only predict on a CUDA device, stored in bf16 (in place), with Liger's
    fused RMSNorm and SwiGLU where they measured faster on this GPU (`fused`;
    `fused_kernels.for_scoring`).

    Under autocast every matmul already runs in bf16, but fp32 weights are cast again on each
    forward and norms run in fp32: measured on an H200, SmolLM2 scored 1.4x faster in bf16
    weights than in fp32 under autocast. Quantized (4-bit) models and CPU models are left as
    they are."""
    if model_device(model).type != "cuda" or not torch.cuda.is_bf16_supported():
        return model
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        return model
    model = model.to(torch.bfloat16)
    if fused:
        fused_kernels.for_scoring(model, gpu_token_budget(model))
    return model


def bucket_batches(
    lengths: Sequence[int], budget: int, width_step: int = BUCKET_WIDTH
) -> list[tuple[int, list[int]]]:
    """(width, row positions) batches of a few fixed shapes: each text goes to the bucket of its
    length rounded up to `width_step`; a bucket is cut into batches of `budget // width` rows
    (at least one), longest bucket first."""
    buckets: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        buckets.setdefault(max(width_step, -(-n // width_step) * width_step), []).append(i)
    out: list[tuple[int, list[int]]] = []
    for width in sorted(buckets, reverse=True):
        rows = buckets[width]
        per_batch = max(1, budget // width)
        out.extend((width, rows[k : k + per_batch]) for k in range(0, len(rows), per_batch))
    return out


def filled_rows(n: int, per_batch: int) -> int:
    """Rows a batch of `n` texts is topped up to: the next power of two, at most `per_batch`."""
    return min(per_batch, 1 << max(0, n - 1).bit_length())


def _slices(n: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of the texts each background tokenizer call takes (`GPU_SLICES`)."""
    start, k = 0, 0
    while start < n:
        stop = min(n, start + GPU_SLICES[min(k, len(GPU_SLICES) - 1)])
        yield start, stop
        start, k = stop, k + 1


def bucketed_logits(
    model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, budget: int, device: torch.device
) -> np.ndarray:
    """Logits of `texts` in input order, tokenized in a background thread, in fixed-shape batches.

    The GPU path of `predict_logits` (it runs on any device: the CPU tests compare it with the
    plain path). The fast tokenizer releases the GIL while it encodes, so the next slice is
    tokenized while this thread pads and launches the batches of the current one."""
    pad_id = tokenizer.pad_token_id
    on_gpu = device.type == "cuda"
    pieces: list[torch.Tensor] = []
    order: list[np.ndarray] = []
    slices = list(_slices(len(texts)))
    with ThreadPoolExecutor(max_workers=1) as pool, torch.inference_mode(), _gpu_autocast(model, device):
        pending = pool.submit(encode_texts, tokenizer, texts[slices[0][0] : slices[0][1]], max_length)
        for k, (start, _stop) in enumerate(slices):
            sequences = pending.result()
            if k + 1 < len(slices):
                nxt = slices[k + 1]
                pending = pool.submit(encode_texts, tokenizer, texts[nxt[0] : nxt[1]], max_length)
            lengths = [len(seq) for seq in sequences]
            for width, rows in bucket_batches(lengths, budget):
                filler = [[pad_id]] * (filled_rows(len(rows), max(1, budget // width)) - len(rows))
                batch = pad_batch(tokenizer, [sequences[i] for i in rows] + filler, multiple=width)
                if on_gpu:  # pinned host memory lets the copy overlap the previous batch's compute
                    batch = {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
                else:
                    batch = {k: v.to(device) for k, v in batch.items()}
                # Kept on the device: a copy back per batch would make the host wait for every batch.
                pieces.append(model(**batch).logits[: len(rows)].float())
                order.append(start + np.asarray(rows))
    logits = torch.cat(pieces).cpu().numpy()
    out = np.empty_like(logits)
    out[np.concatenate(order)] = logits
    return out


def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 256,
    *,
    token_budget: int | None = None,
) -> np.ndarray:
    """Raw class logits, shape (n_texts, num_labels), float32, in input order.

    On the CPU, batches of at most `batch_size` rows of one token length (no padding); on a
    CUDA device, `bucketed_logits`: fixed-shape batches of about `token_budget` padded tokens
    (default: what `gpu_token_budget` allows the model) in bf16 autocast, tokenized in a
    background thread. Both under `torch.inference_mode`."""
    texts = list(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not texts:
        num_labels = int(getattr(getattr(model, "config", None), "num_labels", 2) or 2)
        return np.zeros((0, num_labels), dtype=np.float32)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        if device.type == "cuda":
            budget = token_budget or gpu_token_budget(model)
            return bucketed_logits(model, tokenizer, texts, max_length, budget, device)
        sequences = encode_texts(tokenizer, texts, max_length)
        batches = length_batches([len(seq) for seq in sequences], batch_size)
        return _run_batches(model, tokenizer, sequences, batches, device)
    finally:
        model.train(was_training)


def softmax_default(logits: np.ndarray) -> np.ndarray:
    """P(class 1 = default) from 2-class logits, computed stably."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp[:, 1] / exp.sum(axis=1)).astype(np.float64)


def predict_proba(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 256,
) -> np.ndarray:
    """P(default) = softmax(logits)[:, 1] for each text, in input order."""
    return softmax_default(predict_logits(model, tokenizer, texts, batch_size, max_length))
