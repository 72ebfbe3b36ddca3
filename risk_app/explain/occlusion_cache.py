"""Occlusion scores exactly, with one forward pass per row and the suffix of each variant.

A risk model here is a causal decoder with a last-token classification head: a token sees only
the tokens before it. Leaving a field's clause out of a text therefore changes nothing before
that clause, so the key/value cache of the full text, computed once per row (the pass that is
also the row's own score), holds every variant's prefix. Each variant then runs only the tokens
after the left-out clause, on top of the prefix part of that cache, at its own positions:

    full text    [ C1 | C2 | C3 | C4 ]        one pass, cache kept
    without C3   [ C1 | C2 ]+[ C4 ]           C4's tokens only, positions after C2
    without C4   [ C1 | C2 | C3 ]             C3's last token again, on the cache before it
    without C1   [ C2 | C3 | C4 ]             no shared prefix: the whole variant runs

About half the tokens of the variants of a row are skipped, and no variant is tokenized: the
clauses are tokenized once per distinct value and put together. The head reads one token, so
the last decoder layer (of the full pass and of each variant) runs in full only there; for
the other tokens it stops once their keys and values, which the later tokens need, are
computed (`last_token_layer`).
These shortcuts are exact, and checked rather than assumed:

* tokens: a row is taken only if its clauses' tokens put together equal the tokenizer's tokens
  of its full text (a ByteLevel BPE splits before " Label" at every clause; a tokenizer that
  adds a BOS token or merges across clauses fails this and the row keeps the generic path);
* model: only a plain `*ForSequenceClassification` decoder (or one with LoRA-style PEFT layers
  inside), on the CPU, whose forward takes a cache and whose pooled logits equal its `score`
  head at the last token; anything else (prompt or prefix tuning, a quantum head, a hybrid, a
  pooled head) returns None and the caller scores every variant as text, as before. The
  caller (`reasons.reason_codes`) also scores one row's texts on every call and drops the
  cache's numbers if they differ.

    scored = cached_occlusion(risk_model, clauses, occluded, full_texts)
    if scored is not None: scored.p_without[scored.exact_rows]  # calibrated, rows x occluded

Batches of variants put the prefix cache of each row in the first slots (the cache keeps keys
already rotated to their positions, so slots need not match positions), the suffix after the
longest prefix, and an explicit 4D mask that lets each suffix token see its own prefix and the
suffix tokens up to itself.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from risk_app.explain.last_token_layer import NotExactError, last_decoder_layer, last_layer_at
from risk_app.finetune.predict import encode_texts, length_batches, model_device, softmax_default
from risk_app.registry.artifact import RiskModel

_log = logging.getLogger(__name__)

# Rows whose full-text caches are kept at a time: the cache of a row is
# layers x 2 x kv_heads x tokens x head_dim floats (about 100 KB for tiny-qwen2).
CACHE_BYTES = 256 * 2**20
# Suffix tokens per batch of variants (rows x longest suffix): big enough that the tiny model's
# matrix products are worth a call, small enough that a batch's mask stays a few MB.
SUFFIX_TOKEN_BUDGET = 8_192
FULL_BATCH = 64


@dataclass(frozen=True)
class CachedOcclusion:
    """Calibrated P(default) of full texts and of each variant, for the rows the cache covered."""

    p_full: np.ndarray  # (n_rows,); NaN where the row is not exact
    p_without: np.ndarray  # (n_rows, n_occluded); NaN where the row is not exact
    exact_rows: np.ndarray  # (n_rows,) bool: rows whose scores came from here


@dataclass(frozen=True)
class _Classifier:
    model: nn.Module  # the *ForSequenceClassification module to call
    head: nn.Module  # its `score` layer (hooked for the logits at every position)
    tokenizer: Any
    max_length: int
    calibrator: Any
    last_layer: nn.Module | None  # the last decoder layer when it can run for one token a row
    last_layer_index: int


def classifier_for_cache(risk_model: Any) -> _Classifier | None:
    """The parts the cached path needs, or None when the model is not one it is exact for."""
    # Only a RiskModel's own text scoring is softmax(logits) then its calibrator; a subclass or
    # another scorer (hybrid stack, test double) may score texts some other way.
    if type(risk_model).predict_texts is not RiskModel.predict_texts:
        return None
    model = getattr(risk_model, "model", None)
    tokenizer = getattr(risk_model, "tokenizer", None)
    if model is None or tokenizer is None or not getattr(tokenizer, "is_fast", False):
        return None
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        # LoRA and friends live inside the layers: the base model with them is the whole model.
        # Prompt and prefix tuning add virtual tokens in the wrapper's forward: not exact here.
        if getattr(model.active_peft_config, "is_prompt_learning", True):
            return None
        model = model.get_base_model()
    if not type(model).__name__.endswith("ForSequenceClassification"):
        return None
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or _sliding(config):
        return None
    head = getattr(model, "score", None)
    if (
        not isinstance(head, nn.Module)
        or "past_key_values" not in inspect.signature(model.forward).parameters
    ):
        return None
    if model_device(model).type != "cpu":  # on a GPU predict_texts runs in bf16: keep its numbers
        return None
    probe = tokenizer("a")["input_ids"]
    if probe != tokenizer("a", add_special_tokens=False)["input_ids"]:
        return None  # special tokens around the text: clause pieces cannot simply be joined
    layer, index = last_decoder_layer(model)
    return _Classifier(
        model, head, tokenizer, int(risk_model.max_length), risk_model.calibrator, layer, index
    )


def _sliding(config: Any) -> bool:
    layer_types = getattr(config, "layer_types", None) or ()
    return bool(getattr(config, "use_sliding_window", False)) or any("sliding" in t for t in layer_types)


# ---- tokens -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RowTokens:
    ids: list[list[int]]  # full-text token ids per row
    starts: np.ndarray  # (n_rows, n_clauses + 1): token offset where each clause begins
    first_alone: list[list[int]]  # tokens of clause 1 opening a text (the variant without clause 0)
    exact: np.ndarray  # (n_rows,) bool: clause tokens put together equal the real tokens


def _piece_ids(tokenizer: Any, pieces: Sequence[str]) -> dict[str, list[int]]:
    distinct = list(dict.fromkeys(pieces))
    encoded = tokenizer(distinct, add_special_tokens=False)["input_ids"] if distinct else []
    return dict(zip(distinct, (list(ids) for ids in encoded), strict=True))


def row_tokens(cls: _Classifier, clauses: Sequence[Sequence[str]], full_texts: Sequence[str]) -> _RowTokens:
    """Each row's tokens from its clauses' tokens (each distinct clause tokenized once), checked
    against the tokenizer's own tokens of the full text."""
    n_rows, n_clauses = len(full_texts), len(clauses)
    # A clause after the first is preceded by the space that joins it, and is tokenized with it.
    heads = _piece_ids(cls.tokenizer, [str(c) for c in clauses[0]])
    tails = _piece_ids(cls.tokenizer, [" " + str(c) for column in clauses[1:] for c in column])
    second = _piece_ids(cls.tokenizer, [str(c) for c in clauses[1]]) if n_clauses > 1 else {}
    real = encode_texts(cls.tokenizer, full_texts, cls.max_length)
    ids: list[list[int]] = []
    starts = np.zeros((n_rows, n_clauses + 1), dtype=np.int64)
    exact = np.zeros(n_rows, dtype=bool)
    for r in range(n_rows):
        row = list(heads[str(clauses[0][r])])
        starts[r, 1] = len(row)
        for k in range(1, n_clauses):
            row += tails[" " + str(clauses[k][r])]
            starts[r, k + 1] = len(row)
        exact[r] = row == real[r] and " ".join(str(c[r]) for c in clauses) == full_texts[r]
        ids.append(row)
    first_alone = [second[str(clauses[1][r])] if n_clauses > 1 else [] for r in range(n_rows)]
    return _RowTokens(ids, starts, first_alone, exact)


# ---- forward passes -----------------------------------------------------------------------
class _HeadLogits:
    """Captures the `score` head's output at every position during this thread's forward passes
    (another thread scoring with the same model meanwhile is left alone)."""

    def __init__(self, head: nn.Module) -> None:
        self.last: torch.Tensor | None = None
        self._owner = threading.get_ident()
        self._handle = head.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:  # noqa: ARG002
        if threading.get_ident() == self._owner:
            self.last = output

    def take(self) -> torch.Tensor:
        assert self.last is not None, "the forward pass did not run the score head"
        out, self.last = self.last.float(), None
        return out

    def close(self) -> None:
        self._handle.remove()


@dataclass
class _FullPass:
    logits: np.ndarray  # (n_rows, n_labels): the head at the last token
    keys: list[torch.Tensor]  # per layer: (n_rows, kv_heads, longest, head_dim)
    values: list[torch.Tensor]
    consistent: bool  # the model's pooled logits equal its head at the last token


def _full_pass(cls: _Classifier, ids: list[list[int]], hook: _HeadLogits) -> _FullPass:
    """Every row's full text once, in batches of one token length (no padding, as predict_texts)."""
    n, longest = len(ids), max(len(seq) for seq in ids)
    logits: list[np.ndarray] = [np.empty(0)] * n
    keys: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    consistent = True
    for batch in length_batches([len(seq) for seq in ids], FULL_BATCH):
        width = len(ids[batch[0]])
        positions = torch.arange(width)[None, :].expand(len(batch), width)
        with last_layer_at(cls.last_layer, cls.last_layer_index, torch.full((len(batch),), width - 1)):
            out = cls.model(
                input_ids=torch.tensor([ids[i] for i in batch]), position_ids=positions, use_cache=True
            )
        every = hook.take()
        consistent &= torch.allclose(out.logits.float(), every[:, -1], atol=1e-6, rtol=0)
        for layer, cache in enumerate(out.past_key_values.layers):
            if type(cache).__name__ != "DynamicLayer":  # sliding or quantized: slots mean positions
                consistent = False
            if not keys or len(keys) <= layer:
                shape = (n, cache.keys.shape[1], longest, cache.keys.shape[3])
                keys.append(cache.keys.new_zeros(shape))
                values.append(cache.values.new_zeros(shape))
            keys[layer][batch, :, :width] = cache.keys
            values[layer][batch, :, :width] = cache.values
        for pos, i in enumerate(batch):
            logits[i] = every[pos, -1].numpy()
    return _FullPass(np.stack(logits), keys, values, consistent)


def _suffix_batch(
    cls: _Classifier,
    full: _FullPass,
    hook: _HeadLogits,
    rows: list[int],
    prefix: list[int],
    suffixes: list[list[int]],
) -> np.ndarray:
    """Logits of variants = row's first `prefix` tokens (cached) + `suffix`, at the suffix's last token."""
    # transformers (seconds to import) only once a model takes the cached path.
    from transformers import DynamicCache

    b, p_max, s_max = len(rows), max(prefix), max(len(s) for s in suffixes)
    index = torch.tensor(rows)
    cache = DynamicCache(
        ddp_cache_data=[
            (k[index, :, :p_max], v[index, :, :p_max]) for k, v in zip(full.keys, full.values, strict=True)
        ]
    )
    dtype = full.keys[0].dtype
    plen = torch.tensor(prefix)[:, None]
    ids = torch.full((b, s_max), int(cls.tokenizer.pad_token_id or 0), dtype=torch.long)
    for i, suffix in enumerate(suffixes):
        ids[i, : len(suffix)] = torch.tensor(suffix)
    positions = plen + torch.arange(s_max)[None, :]
    # Key slot k: a prefix slot (k < p_max) is seen when it holds the row's prefix (k < plen);
    # a suffix slot p_max + j is seen by suffix token q when j <= q (causal). Pads see and are
    # seen as any token would, but their logits are never read.
    seen_prefix = (torch.arange(p_max)[None, :] < plen)[:, None, :].expand(b, s_max, p_max)
    causal = torch.ones(s_max, s_max, dtype=torch.bool).tril()[None].expand(b, s_max, s_max)
    allowed = torch.cat([seen_prefix, causal], dim=2)[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    last = torch.tensor([len(s) - 1 for s in suffixes])
    with last_layer_at(cls.last_layer, cls.last_layer_index, last):
        cls.model(
            input_ids=ids, past_key_values=cache, position_ids=positions, attention_mask=mask, use_cache=True
        )
    every = hook.take()
    return every[torch.arange(b), last].numpy()


# ---- the variants of a block of rows --------------------------------------------------------
def _block_rows(cls: _Classifier, longest: int) -> int:
    """Rows whose full-text caches fit CACHE_BYTES together."""
    cfg = cls.model.config
    heads = int(getattr(cfg, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or int(getattr(cfg, "hidden_size", 64)) // heads)
    per_row = 2 * int(getattr(cfg, "num_hidden_layers", 1)) * kv_heads * head_dim * max(longest, 1) * 4
    return max(1, CACHE_BYTES // per_row)


def _block_logits(
    cls: _Classifier, hook: _HeadLogits, tokens: _RowTokens, rows: np.ndarray, occluded: Sequence[int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Logits of the full texts (rows,) and of the variants (rows, occluded) of a block of rows;
    None when the model's pooled output is not its head at the last token."""
    ids = [tokens.ids[r] for r in rows]
    full = _full_pass(cls, ids, hook)
    if not full.consistent:
        return None
    n_labels = full.logits.shape[1]
    out = np.empty((len(rows), len(occluded), n_labels), dtype=np.float32)
    jobs: list[tuple[int, int, int, list[int]]] = []  # (row in block, variant, prefix, suffix)
    for i, r in enumerate(rows):
        starts = tokens.starts[r]
        for j, k in enumerate(occluded):
            begin, end = int(starts[k]), int(starts[k + 1])
            if begin == 0:  # the first clause: the next one opens the text without its space
                jobs.append((i, j, 0, tokens.first_alone[r] + ids[i][int(starts[2]) :]))
            elif end == len(ids[i]):  # the last clause: its variant is the prefix; rerun its last token
                jobs.append((i, j, begin - 1, ids[i][begin - 1 : begin]))
            else:
                jobs.append((i, j, begin, ids[i][end:]))
    # Longest suffixes first, cut by a token budget: the suffixes of a batch differ little in length.
    jobs.sort(key=lambda job: -len(job[3]))
    start = 0
    while start < len(jobs):
        size = max(1, SUFFIX_TOKEN_BUDGET // len(jobs[start][3]))
        batch = jobs[start : start + size]
        logits = _suffix_batch(
            cls, full, hook, [b[0] for b in batch], [b[2] for b in batch], [b[3] for b in batch]
        )
        out[[b[0] for b in batch], [b[1] for b in batch]] = logits
        start += size
    return full.logits, out


def _probability(cls: _Classifier, logits: np.ndarray) -> np.ndarray:
    """P(default) as RiskModel.predict_texts gives it: softmax, then the model's calibrator."""
    flat = logits.reshape(-1, logits.shape[-1])
    return np.asarray(cls.calibrator.transform(softmax_default(flat)), dtype=float).reshape(logits.shape[:-1])


def cached_occlusion(
    risk_model: Any, clauses: Sequence[Sequence[str]], occluded: Sequence[int], full_texts: Sequence[str]
) -> CachedOcclusion | None:
    """Calibrated P(default) of each row's full text and of the text without each clause in
    `occluded` (positions in `clauses`), or None when the model is not one this is exact for.

    `clauses[k][r]` is row r's clause of the k-th field of the text ("Label: value."), the text
    being the clauses joined by single spaces, `full_texts[r]`. Rows whose tokens do not split
    at the clauses are left out (`exact_rows` False, NaN scores): the caller scores them as text.
    """
    cls = classifier_for_cache(risk_model)
    n_rows = len(full_texts)
    if cls is None or len(clauses) < 2 or n_rows == 0:
        return None
    tokens = row_tokens(cls, clauses, full_texts)
    exact = tokens.exact.copy()
    p_full = np.full(n_rows, np.nan)
    p_without = np.full((n_rows, len(occluded)), np.nan)
    todo = np.flatnonzero(exact)
    if not todo.size:
        return CachedOcclusion(p_full, p_without, exact)
    block = _block_rows(cls, max(len(tokens.ids[r]) for r in todo))
    hook = _HeadLogits(cls.head)
    was_training = cls.model.training
    cls.model.eval()
    try:
        with torch.inference_mode():
            for begin in range(0, todo.size, block):
                rows = todo[begin : begin + block]
                try:
                    logits = _block_logits(cls, hook, tokens, rows, occluded)
                except (NotExactError, RuntimeError, TypeError, ValueError, IndexError) as exc:
                    # A shortcut must not fail a batch the text path can score: say so, use that.
                    _log.warning("reason codes: no prefix cache for %s (%s)", type(cls.model).__name__, exc)
                    return None
                if logits is None:
                    return None
                p_full[rows] = _probability(cls, logits[0])
                p_without[rows] = _probability(cls, logits[1])
    finally:
        hook.close()
        cls.model.train(was_training)
    return CachedOcclusion(p_full, p_without, exact)
