"""GGUF base models: load a .gguf directly and convert it once to a safetensors folder.

The GGUF file is written from the tiny Qwen2 with the `gguf` package (see gguf_fixture.py),
so the test needs no download and can compare every tensor with the source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from risk_app.errors import ConfigError
from risk_app.models.convert import convert_gguf_to_safetensors
from risk_app.models.loader import load_classifier
from tests.models.gguf_fixture import write_qwen2_gguf


@pytest.fixture
def tiny_gguf(tiny_qwen2: Path, tmp_path: Path) -> Path:
    return write_qwen2_gguf(tiny_qwen2, tmp_path / "tiny-qwen2-f32.gguf")


def _assert_same_base(model: torch.nn.Module, source: Path) -> None:
    expected = load_file(source / "model.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def test_gguf_loads_as_float_classifier(tiny_gguf: Path, tiny_qwen2: Path) -> None:
    model, tokenizer = load_classifier(tiny_gguf)
    assert model.hf_quantizer is None and not hasattr(model.config, "quantization_config")
    assert model.config.pad_token_id == tokenizer.pad_token_id is not None
    _assert_same_base(model, tiny_qwen2)
    text = "Credit amount: 1169 DM. Age: 67 years."
    _, reference_tokenizer = load_classifier("tiny-qwen2")
    assert tokenizer(text)["input_ids"] == reference_tokenizer(text)["input_ids"]
    # Trainable like any float model.
    out = model(**tokenizer([text], return_tensors="pt")).logits.sum()
    out.backward()
    assert model.score.weight.grad is not None


def test_convert_gguf_once_then_reload_folder(tiny_gguf: Path, tiny_qwen2: Path, tmp_path: Path) -> None:
    folder = convert_gguf_to_safetensors(tiny_gguf, tmp_path / "converted")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    model, _ = load_classifier(folder)
    _assert_same_base(model, tiny_qwen2)


def test_convert_rejects_non_gguf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a .gguf file"):
        convert_gguf_to_safetensors("tiny-qwen2", tmp_path / "x")
