"""The `lora` method: config checks, which parameters train, and each variant trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import count_parameters
from risk_app.finetune.registry import get_method
from risk_app.finetune.trainer import train_classifier
from risk_app.models.loader import load_classifier
from tests.finetune.helpers import credit_texts


def test_bad_target_module_is_named_with_allowed_list() -> None:
    with pytest.raises(ConfigError) as info:
        get_method("lora").parse_config({"target_modules": ["q_proj", "attn_c"]})
    message = str(info.value)
    assert "'attn_c'" in message
    assert "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" in message
    assert "Allowed keys:" in message


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"target_modules": []}, "target_modules is empty"),
        ({"variant": "qlora"}, "'variant'"),
        ({"r": 0}, "'r'"),
        ({"dropout": 1.5}, "'dropout'"),
    ],
)
def test_invalid_values_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_method("lora").parse_config(params)


def test_only_adapters_and_head_train_with_exact_count(tiny_qwen2: Path) -> None:
    model, _ = load_classifier("tiny-qwen2")
    _, base_total = count_parameters(model)
    method = get_method("lora")
    cfg = method.parse_config({"r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]})
    model = method.prepare(model, cfg)
    c = model.config
    head_dim = c.hidden_size // c.num_attention_heads
    kv = c.num_key_value_heads * head_dim
    per_layer = (
        4 * (c.hidden_size + c.hidden_size)
        + 4 * (c.hidden_size + kv)
        + 4 * (c.intermediate_size + c.hidden_size)
    )
    expected = c.num_hidden_layers * per_layer + 2 * c.hidden_size  # + trainable copy of score
    trainable, total = count_parameters(model)
    assert trainable == expected
    # Total = base + adapters + the head copy peft keeps for modules_to_save.
    assert total == base_total + expected
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "modules_to_save" in n for n in names)
    assert any("down_proj.lora_A" in n for n in names) and not any("k_proj.lora" in n for n in names)


@pytest.mark.parametrize("variant", ["dora", "adalora"])
def test_variants_train_and_lower_loss(tiny_qwen2: Path, tmp_path: Path, variant: str) -> None:
    texts, labels = credit_texts(96)
    val_texts, val_labels = credit_texts(40, offset=900)
    config = TrainConfig(
        method_params={"variant": variant, "r": 4},
        epochs=3,
        batch_size=16,
        max_length=96,
        patience=0,
    )
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    names = [n for n, p in result.model.named_parameters() if p.requires_grad]
    if variant == "dora":
        assert any("lora_magnitude_vector" in n for n in names)
    else:
        assert any("lora_E" in n for n in names)
        # AdaLoRA's schedule ran to the end: ranks were allocated and pruned singular values
        # zeroed (budget r=4 -> target_r=2 per module on average).
        assert result.model.peft_config["default"].rank_pattern
        singular = torch.cat(
            [p.detach().flatten() for n, p in result.model.named_parameters() if "lora_E" in n]
        )
        assert (singular == 0).sum() >= singular.numel() // 4
    assert all(torch.isfinite(torch.as_tensor(h["val_loss"])) for h in result.history)
