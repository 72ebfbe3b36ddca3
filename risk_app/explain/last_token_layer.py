"""The last decoder layer of a classifier, run in full only at the token its head reads.

A last-token classification head reads one position; every other token's output of the last
decoder layer is thrown away. Inside `last_layer_at` that layer runs twice on a batch: on all
tokens only until their keys and values are computed (a stand-in cache takes them from the
attention's `update` call and stops the layer there), then on the one token per row the head
reads, attending to those keys and values. Queries, attention and MLP of the other tokens are
skipped; what the head reads is the same computation as before.

    layer, index = last_decoder_layer(model)
    with last_layer_at(layer, index, last_token_per_row):
        model(input_ids=..., past_key_values=cache, use_cache=True)  # head exact at those tokens

The layer must take `attention_mask`, `position_ids`, `position_embeddings` and
`past_key_values` as keywords (Llama, Qwen2, Mistral ...) and hand its keys to the cache; one
that does not raises NotExactError, and the caller (`occlusion_cache`) keeps the text path.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def last_decoder_layer(model: nn.Module) -> tuple[nn.Module | None, int]:
    """The last decoder layer and its cache index, when it is a layer of the usual form (it takes
    the mask, positions, rotary embeddings and cache as keywords: Llama, Qwen2, Mistral ...)."""
    layers = getattr(getattr(model, "base_model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        return None, 0
    wanted = {"attention_mask", "position_ids", "position_embeddings", "past_key_values"}
    if not wanted <= set(inspect.signature(layers[-1].forward).parameters):
        return None, 0
    return layers[-1], len(layers) - 1


class NotExactError(RuntimeError):
    """The model did something the cached path does not reproduce; the caller scores texts."""


class _StopAfterKeys(Exception):
    """Raised by _KeyRecorder once the layer has computed its keys and values."""


class _KeyRecorder:
    """Stands in for the cache during one layer call: keeps the keys and values the attention
    hands to `update` (computed exactly as in a normal pass) and stops the layer there."""

    keys: torch.Tensor
    values: torch.Tensor

    def update(self, keys: torch.Tensor, values: torch.Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: ARG002
        self.keys, self.values = keys, values
        raise _StopAfterKeys


class _KnownKeys:
    """Stands in for the cache when the last layer runs for one token a row: its attention gets
    the keys and values of every token already (its own among them) instead of appending."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values

    def update(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ARG002
        return self.keys, self.values


@contextlib.contextmanager
def last_layer_at(layer: nn.Module | None, index: int, last: torch.Tensor) -> Iterator[None]:
    """Within: the last decoder layer computes its output only at token `last[b]` of each row.

    The head reads nothing else, so the rest of that layer (queries, attention, MLP of every
    other token) is skipped: the layer runs once on all tokens up to their keys and values, and
    once on the one token per row that the head reads, with those keys and values. `layer` is
    the model's last decoder layer (`last_decoder_layer`), `index` its cache index; None: as is."""
    if layer is None:
        yield
        return
    original, owner = layer.forward, threading.get_ident()
    rows = torch.arange(len(last))

    def forward(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if threading.get_ident() != owner:  # another thread's pass over the same model: as is
            return original(hidden_states, *args, **kwargs)
        cache, mask = kwargs["past_key_values"], kwargs["attention_mask"]
        recorder = _KeyRecorder()
        with contextlib.suppress(_StopAfterKeys):
            original(hidden_states, *args, **{**kwargs, "past_key_values": recorder})
        if not hasattr(recorder, "keys"):  # the layer never handed its keys to the cache
            raise NotExactError("the last decoder layer did not use its cache")
        # Every key and value of the row, its prefix's and all its suffix tokens' (the token the
        # head reads among them): the one query per row sees exactly what it saw before.
        keys, values = cache.update(recorder.keys, recorder.values, index)
        one = {
            **kwargs,
            "past_key_values": _KnownKeys(keys, values),
            # No mask (a full pass, unpadded): the one query per row sees every key, as before.
            "attention_mask": None if mask is None else mask[rows, :, last][:, :, None],
            "position_ids": kwargs["position_ids"][rows, last][:, None],
            "position_embeddings": tuple(t[rows, last][:, None] for t in kwargs["position_embeddings"]),
        }
        out = original(hidden_states[rows, last][:, None], *args, **one)
        full = hidden_states.new_zeros(hidden_states.shape)
        full[rows, last] = out[:, 0]
        return full

    layer.forward = forward
    try:
        yield
    finally:
        # Ours may have been wrapped meanwhile (another thread): only our own is taken away. A
        # layer left unwrapped early just runs in full, which gives the same head outputs.
        if layer.__dict__.get("forward") is forward:
            del layer.forward  # the instance attribute; the class's forward shows again
