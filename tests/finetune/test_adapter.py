"""The `adapter` method: identity at start, placement, gradients, counts, configs, state round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.adapters_layer import BottleneckAdapter
from risk_app.finetune.predict import encode_texts, pad_batch
from risk_app.finetune.registry import get_method
from risk_app.models.loader import load_classifier
from tests.finetune.test_method_suite import suite_data

VARIANTS = [
    {},
    {"placement": "houlsby", "non_linearity": "gelu"},
    {"variant": "parallel", "non_linearity": "silu", "reduction_factor": 8},
]


def _batch(tokenizer: object) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    data = suite_data()
    # Mixed lengths, so padding and the attention mask are exercised too.
    return pad_batch(tokenizer, encode_texts(tokenizer, data.train_texts[:8], 64)), torch.as_tensor(
        data.train_labels[:8]
    )


def _base_and_adapted(params: dict) -> tuple[torch.nn.Module, torch.nn.Module, object]:
    torch.manual_seed(0)
    base, tokenizer = load_classifier("tiny-qwen2")
    torch.manual_seed(0)
    model, _ = load_classifier("tiny-qwen2")
    method = get_method("adapter")
    return base.eval(), method.prepare(model, method.parse_config(params)).eval(), tokenizer


@pytest.mark.parametrize("params", VARIANTS)
def test_adapted_model_equals_base_at_initialisation(tiny_qwen2: Path, params: dict) -> None:
    base, adapted, tokenizer = _base_and_adapted(params)
    batch, _ = _batch(tokenizer)
    with torch.no_grad():
        assert torch.equal(adapted(**batch).logits, base(**batch).logits)
        # ... and only because the up-projections start at zero: perturb any one adapter
        # (so each hook is live) and the output differs.
        for site, adapter in adapted.model.layers[0].adapters.items():
            adapter.up_proj.weight.normal_(std=0.5)
            assert not torch.allclose(adapted(**batch).logits, base(**batch).logits), site
            adapter.up_proj.weight.zero_()


@pytest.mark.parametrize(
    ("params", "sites"),
    [({}, ["mlp"]), ({"placement": "houlsby"}, ["self_attn", "mlp"]), ({"variant": "parallel"}, ["mlp"])],
)
def test_placement_and_exact_parameter_count(tiny_qwen2: Path, params: dict, sites: list[str]) -> None:
    _, model, _ = _base_and_adapted(params)
    hidden = model.config.hidden_size
    bottleneck = hidden // 16
    for layer in model.model.layers:
        assert sorted(layer.adapters.keys()) == sorted(sites)
        assert layer.adapters["mlp"].down_proj.out_features == bottleneck
    per_adapter = (hidden * bottleneck + bottleneck) + (bottleneck * hidden + hidden)
    expected = model.config.num_hidden_layers * len(sites) * per_adapter + 2 * hidden  # + head
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


@pytest.mark.parametrize("params", VARIANTS)
def test_gradients_reach_only_adapters_and_head(tiny_qwen2: Path, params: dict) -> None:
    _, model, tokenizer = _base_and_adapted(params)
    model.train()
    batch, labels = _batch(tokenizer)
    torch.nn.functional.cross_entropy(model(**batch).logits, labels).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    expected = {n for n, _ in model.named_parameters() if ".adapters." in n or n == "score.weight"}
    assert with_grad == expected
    # The zero up-projections get a real gradient at once (down-projections from step two).
    up = model.model.layers[0].adapters.mlp.up_proj.weight.grad
    assert up.abs().sum() > 0


@pytest.mark.parametrize("params", VARIANTS)
def test_state_round_trip_into_a_fresh_model(tiny_qwen2: Path, params: dict) -> None:
    _, trained, tokenizer = _base_and_adapted(params)
    method = get_method("adapter")
    with torch.no_grad():  # stand-in for training: every adapter weight non-trivial
        for name, param in trained.named_parameters():
            if ".adapters." in name:
                param.normal_(std=0.2)
    state = method.state_to_save(trained)
    assert set(state) == {
        n for n, _ in trained.named_parameters() if ".adapters." in n or n == "score.weight"
    }
    torch.manual_seed(123)
    fresh, _ = load_classifier("tiny-qwen2")
    fresh = method.prepare(fresh, method.parse_config(params)).eval()
    method.load_state(fresh, state)
    batch, _ = _batch(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(fresh(**batch).logits, trained(**batch).logits, rtol=0, atol=1e-6)


def test_bottleneck_adapter_is_zero_update_at_start() -> None:
    adapter = BottleneckAdapter(32, 4, "relu", init_scale=0.1)
    x = torch.randn(2, 5, 32)
    assert torch.equal(adapter(x), torch.zeros_like(x))
    assert adapter(x.to(torch.bfloat16)).dtype == torch.bfloat16  # computes in fp32, returns input dtype


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"variant": "parallel", "placement": "houlsby"}, "applies to variant 'sequential' only"),
        ({"non_linearity": "tanh"}, "'non_linearity'"),
        ({"reduction_factor": 0}, "'reduction_factor'"),
        ({"init_scale": 0}, "'init_scale'"),
    ],
)
def test_invalid_configs_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_method("adapter").parse_config(params)


def test_reduction_factor_wider_than_model_rejected_at_prepare(tiny_qwen2: Path) -> None:
    method = get_method("adapter")
    model, _ = load_classifier("tiny-qwen2")
    with pytest.raises(ConfigError, match="reduction_factor=128 exceeds the model's hidden size 64"):
        method.prepare(model, method.parse_config({"reduction_factor": 128}))
