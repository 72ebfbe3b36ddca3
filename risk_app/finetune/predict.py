"""Batched inference: P(default) for a list of serialized applications.

Texts are sorted by token length so each batch pads to a similar length (far less wasted
compute than random batches), then the results are put back in the caller's order. Nothing
here runs row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to `max_length`, unpadded."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [list(ids) for ids in encoded["input_ids"]]


def pad_batch(
    tokenizer: Any, sequences: Sequence[Sequence[int]], multiple: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad token id lists to the longest one (rounded up to `multiple`), on the tokenizer's padding side."""
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("tokenizer has no pad token; load it through risk_app.models.loader")
    width = max(len(seq) for seq in sequences)
    if multiple:
        width = -(-width // multiple) * multiple
    left = getattr(tokenizer, "padding_side", "right") == "left"
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if left:
            ids[row, width - n :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - n :] = 1
        else:
            ids[row, :n] = torch.tensor(seq, dtype=torch.long)
            mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (where inputs must go)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 256,
) -> np.ndarray:
    """Raw class logits, shape (n_texts, num_labels), float32, in input order."""
    texts = list(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not texts:
        num_labels = int(getattr(getattr(model, "config", None), "num_labels", 2) or 2)
        return np.zeros((0, num_labels), dtype=np.float32)
    sequences = encode_texts(tokenizer, texts, max_length)
    # Longest first: the first batch shows at once whether memory suffices.
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    device = model_device(model)
    was_training = model.training
    model.eval()
    chunks: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch_idx = order[start : start + batch_size]
                batch = pad_batch(tokenizer, [sequences[i] for i in batch_idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(**batch).logits
                chunks.append(logits.float().cpu().numpy())
    finally:
        model.train(was_training)
    sorted_logits = np.concatenate(chunks, axis=0)
    out = np.empty_like(sorted_logits)
    out[np.asarray(order)] = sorted_logits
    return out


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
