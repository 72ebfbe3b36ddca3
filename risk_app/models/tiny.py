"""The embedded default base model: a tiny Qwen2 built locally, no download needed.

`ensure_tiny_qwen2()` builds it once under `paths.models_dir()/tiny-qwen2` and returns that
folder: a byte-level BPE tokenizer trained with `tokenizers` on serialized German credit
applications, and a randomly initialised (seeded) 2-layer Qwen2 whose shape mirrors the real
family (grouped-query attention, SwiGLU MLP, RMSNorm), so every fine-tuning method that works
on Qwen2 works here in seconds on a CPU. It is a test and demo model, not a pretrained one.

    python -c "from risk_app.models.tiny import ensure_tiny_qwen2; print(ensure_tiny_qwen2())"
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_PRETOKENIZE_REGEX

from data_contracts.spec import load_spec
from risk_app import paths
from risk_app.atomic import atomic_dir, atomic_write_json
from risk_app.errors import ConfigError

TINY_NAME = "tiny-qwen2"
# Bump when the recipe below changes, so old caches are rebuilt instead of reused.
TINY_RECIPE_VERSION = 1
SEED = 1234
VOCAB_SIZE = 2048
PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN]
MARKER_FILE = "tiny_recipe.json"

# Words an analyst might write next to an application, so the tokenizer has merges for them.
_GENERIC_FINANCE_TEXT = [
    "The applicant requests a loan. Credit risk is assessed from income, savings and history.",
    "Probability of default, interest rate, collateral, guarantor, installment, balance, debt.",
    "Loan application approved. Loan application declined. Manual review required.",
    "Checking account, savings account, employment, housing, property, purpose, duration.",
    "The customer repaid all previous credits on time. The customer has delayed payments.",
]


def _tiny_config() -> Qwen2Config:
    return Qwen2Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )


def _bundled_file() -> Path:
    """The built-in default data set's file, as its spec declares it (never $RISK_APP_DATASET:
    the tiny model's tokenizer must not depend on the deployment)."""
    spec = load_spec()
    if spec.data_path is None:
        raise ConfigError(f"data set {spec.name!r} ships no data file to train the tiny tokenizer on")
    return spec.data_path


def _credit_corpus() -> Iterator[str]:
    """'Column name: value.' sentences, one text per application in the bundled dataset."""
    frame = pd.read_csv(_bundled_file(), dtype=str).fillna("unknown")
    columns = list(frame.columns)
    labels = {c: c.replace("_", " ").capitalize() for c in columns}
    for row in frame.itertuples(index=False):
        yield " ".join(f"{labels[c]}: {v}." for c, v in zip(columns, row, strict=True))
    yield from _GENERIC_FINANCE_TEXT


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on the credit corpus; deterministic for a fixed corpus."""
    tok = Tokenizer(models.BPE())
    # The exact normalizer and pre-tokenizer of transformers' Qwen2Tokenizer, which
    # AutoTokenizer rebuilds for any qwen2 model: training with them keeps the saved
    # tokenizer and the one AutoTokenizer loads identical (digits split one by one).
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_credit_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        padding_side="right",
        model_max_length=512,
    )


def _build_into(folder: Path) -> None:
    tokenizer = build_tokenizer()
    config = _tiny_config()
    # Embedding rows rounded up to a multiple of 64, as real checkpoints do.
    config.vocab_size = -(-len(tokenizer) // 64) * 64
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.eos_token_id
    # Seed only this construction, restoring the caller's RNG so building has no side effect.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    atomic_write_json(folder / MARKER_FILE, {"name": TINY_NAME, "recipe_version": TINY_RECIPE_VERSION})


def _is_complete(folder: Path) -> bool:
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text())["recipe_version"] == TINY_RECIPE_VERSION
    except (ValueError, KeyError):
        return False


def ensure_tiny_qwen2() -> Path:
    """Folder of the tiny Qwen2 (model + tokenizer), building it on first use."""
    target = paths.models_dir() / TINY_NAME
    if _is_complete(target):
        return target
    # An exclusive lock so two processes (Dagster workers, parallel tests) build it once;
    # atomic_dir makes the folder appear whole or not at all.
    lock_path = paths.models_dir() / f".{TINY_NAME}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _is_complete(target):
                with atomic_dir(target) as tmp:
                    _build_into(tmp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
