"""load_classifier: the tiny model, padding, and clear errors for bad references."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ModelNotFoundError
from risk_app.models.loader import load_classifier


def test_tiny_loads_as_two_class_classifier_with_padding(tiny_qwen2: Path) -> None:
    model, tokenizer = load_classifier("tiny-qwen2")
    assert model.config.num_labels == 2
    assert tokenizer.pad_token is not None
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert tuple(model.score.weight.shape) == (2, model.config.hidden_size)
    batch = tokenizer(
        ["Duration: 6 months.", "Purpose: car (new). Age: 30."], padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        logits = model(**batch).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_eos_becomes_pad_when_tokenizer_has_none(tiny_qwen2: Path, tmp_path: Path) -> None:
    model, tokenizer = load_classifier("tiny-qwen2")
    tokenizer.pad_token = None
    folder = tmp_path / "no-pad"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _, reloaded_tok = load_classifier(folder)
    assert reloaded_tok.pad_token == reloaded_tok.eos_token


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("/definitely/not/here/model", "could not be loaded"),
        ("/definitely/not/here/model.gguf", "does not exist"),
    ],
)
def test_bad_reference_raises_model_not_found(reference: str, fragment: str) -> None:
    with pytest.raises(ModelNotFoundError, match=fragment):
        load_classifier(reference)


def test_folder_without_config_raises_model_not_found(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_classifier(tmp_path)
