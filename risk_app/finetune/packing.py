"""Padding-free packing: several applications per row, none of them able to see another.

A training batch of applications of different lengths is usually padded to its longest text;
with token-budget batches from length buckets that padding is a few per cent, but every padded
token still goes through every linear layer. Packing lays the applications of a batch end to
end in a few long rows instead (first-fit decreasing into rows of `SpeedConfig.pack_length`
tokens), and keeps them apart the way transformers 5.x does for its own packed inputs
(`DataCollatorWithFlattening`):

* position ids restart at 0 for each application, so rotary embeddings see each one exactly as
  if it stood alone;
* the model is called with those `position_ids` and **no** attention mask (and no cache);
  transformers' `masking_utils.find_packed_sequence_indices` reads the restarts and builds a
  block-diagonal causal mask: a boolean mask for SDPA or eager attention, a block-sparse
  `BlockMask` for `flex_attention` (which then skips the blocks across applications), and
  varlen sequence boundaries for `flash_attention_2` where flash-attn is installed
  (`SpeedConfig.attention` chooses);
* the classification head runs on every token; a forward hook on it (`HeadTap`) keeps its
  output, and each application's logits are read at its own last token, the token the
  sequence-classification pooling reads in an unpacked batch.

The tail of a row after its last application is padding with its own restarting positions,
so it is a separate block that no application attends to. The same batches go through the
loop as without packing, so the run optimizes the same thing: `tests/finetune/test_packing.py`
checks logits, losses and validation AUC against the unpacked run on the tiny model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from risk_app.finetune.methods.base import HEAD_MODULE
from risk_app.finetune.speed import padded_length


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Positions of `lengths` grouped into rows of at most `capacity` tokens (first-fit
    decreasing); a sequence longer than `capacity` gets a row of its own."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        n = lengths[i]
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(capacity - n)
    return rows


@dataclass
class PackedBatch:
    """Packed model inputs and where each application's last token sits."""

    input_ids: torch.Tensor  # (rows, width)
    position_ids: torch.Tensor  # (rows, width), restarting at 0 per application
    last_row: torch.Tensor  # (n,) row of each application's last token, in input order
    last_col: torch.Tensor  # (n,) column of it

    def to(self, device: torch.device, non_blocking: bool = False) -> PackedBatch:
        pinned = device.type == "cuda"

        def move(t: torch.Tensor) -> torch.Tensor:
            return (t.pin_memory() if pinned else t).to(device, non_blocking=non_blocking)

        return PackedBatch(
            *(move(t) for t in (self.input_ids, self.position_ids, self.last_row, self.last_col))
        )

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments of the model call: no attention mask and no cache, so transformers
        derives the block-diagonal mask from the restarting position ids."""
        return {"input_ids": self.input_ids, "position_ids": self.position_ids, "use_cache": False}


def pack_batch(
    sequences: Sequence[Sequence[int]], capacity: int, pad_id: int, multiple: int | None = None
) -> PackedBatch:
    """Lay `sequences` (token ids) end to end in rows of at most `capacity` tokens.

    Rows are padded to the fullest row's length (rounded up to `multiple`; pass
    `multiple=capacity` for one fixed width, as `torch.compile` wants)."""
    lengths = [len(s) for s in sequences]
    rows = pack_rows(lengths, capacity)
    width = padded_length(max(sum(lengths[i] for i in row) for row in rows), multiple)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    last_row = np.empty(len(sequences), dtype=np.int64)
    last_col = np.empty(len(sequences), dtype=np.int64)
    for r, row in enumerate(rows):
        col = 0
        for i in row:
            n = lengths[i]
            ids[r, col : col + n] = sequences[i]
            pos[r, col : col + n] = np.arange(n)
            last_row[i], last_col[i] = r, col + n - 1
            col += n
        pos[r, col:] = np.arange(width - col)  # the tail: a block of its own
    return PackedBatch(*(torch.from_numpy(a) for a in (ids, pos, last_row, last_col)))


def head_module(model: torch.nn.Module) -> torch.nn.Module:
    """The outermost module named `score` (peft wraps the head; the wrapper's output is the one
    in use)."""
    found = [(name, mod) for name, mod in model.named_modules() if name.split(".")[-1] == HEAD_MODULE]
    if not found:
        raise ValueError(
            f"packing needs a classification head named {HEAD_MODULE!r}; none in {type(model).__name__}"
        )
    return min(found, key=lambda item: item[0].count("."))[1]


class HeadTap:
    """Keeps the head's per-token output of the latest forward pass (a forward hook)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.output: torch.Tensor | None = None
        self._handle = head_module(model).register_forward_hook(self._keep)

    def _keep(self, _module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        self.output = output

    def remove(self) -> None:
        self._handle.remove()

    def logits(self, batch: PackedBatch) -> torch.Tensor:
        """Each application's logits, read at its last token, in input order."""
        if self.output is None:
            raise RuntimeError("the head did not run: call the model before reading its packed logits")
        out, self.output = self.output, None
        return out[batch.last_row, batch.last_col]


@contextmanager
def head_tap(model: torch.nn.Module) -> Iterator[HeadTap]:
    """A `HeadTap` on `model` for the duration of the block."""
    tap = HeadTap(model)
    try:
        yield tap
    finally:
        tap.remove()


def packed_logits(forward: Any, tap: HeadTap, batch: PackedBatch) -> torch.Tensor:
    """One forward pass of a packed batch; per-application logits (n, num_labels)."""
    forward(**batch.model_inputs())
    return tap.logits(batch)
