"""A GGUF file as a transformers folder: where it lies, its stale quantizer, the one-time conversion.

transformers reads llama.cpp's GGUF weights by dequantizing them to float, which takes tens of
seconds for a 0.5B model; `convert_gguf_to_safetensors` does it once and saves a folder that
reloads in about a second. `fetch.py` converts every catalogue base this way after download,
and `loader.py` reads a `*.gguf` path given as a base model with the same helpers. This module
sits below both (it resolves no catalogue name), so neither needs the other to convert.

    python -c "from risk_app.models.convert import convert_gguf_to_safetensors as c; c('m.gguf', 'out')"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, AutoTokenizer

from risk_app.atomic import atomic_dir
from risk_app.errors import ConfigError, ModelNotFoundError
from risk_app.models.tiny import TINY_NAME

GGUF_SUFFIX = ".gguf"


def base_not_found(name: str, exc: BaseException) -> ModelNotFoundError:
    """One line for a base model transformers could not load, with the forms that work."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return ModelNotFoundError(
        f"base model {name!r} could not be loaded: {detail[:300]}. Use a local folder saved with "
        f"save_pretrained, a .gguf file, '{TINY_NAME}' or a catalogue name (risk-app bases list); "
        "a hub id needs network access or the "
        "local Hugging Face cache (this machine may be offline)."
    )


def gguf_location(name: str) -> tuple[str, str]:
    """(folder, file name) of an existing `*.gguf` file named by `name`."""
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"GGUF file {name!r} does not exist")
    return str(path.resolve().parent), path.name


def drop_gguf_quantizer(model: Any) -> None:
    """Forget the GGUF quantizer transformers leaves on a model it dequantized while loading."""
    # transformers dequantizes GGUF weights to float while loading but leaves a GGUF
    # quantizer on the model, which blocks training and save_pretrained; the weights are
    # ordinary tensors now, so the quantizer is stale.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def convert_gguf_to_safetensors(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Dequantize a GGUF file once and save it as a transformers folder (safetensors).

    The language-model weights are saved (not a classifier), so each training run still
    gets a freshly seeded head. Returns `out_dir`, written atomically.
    """
    if not str(gguf_path).lower().endswith(GGUF_SUFFIX):
        raise ConfigError(f"{str(gguf_path)!r} is not a .gguf file")
    source, gguf_file = gguf_location(str(gguf_path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    except (OSError, ValueError, KeyError) as exc:
        raise base_not_found(str(gguf_path), exc) from exc
    drop_gguf_quantizer(model)
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out


__all__ = [
    "GGUF_SUFFIX",
    "base_not_found",
    "convert_gguf_to_safetensors",
    "drop_gguf_quantizer",
    "gguf_location",
]
