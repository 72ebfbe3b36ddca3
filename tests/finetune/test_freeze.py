"""The `freeze` method: which layers / sub-modules train, the names the result records, bad configs,
fp32 upcast."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.methods.freeze import FreezeMethod, trainable_parameter_names
from risk_app.finetune.objectives.base import ObjectiveInputs
from risk_app.finetune.objectives.supervised import supervised_fit
from risk_app.finetune.registry import get_method, resolve_method
from risk_app.models.loader import load_classifier
from tests.finetune.test_method_suite import prepare_and_fit, suite_data, suite_train_config


def _prepared(params: dict, dtype: torch.dtype | None = None) -> tuple[FreezeMethod, torch.nn.Module]:
    method = get_method("freeze")
    assert isinstance(method, FreezeMethod)
    model, _ = load_classifier("tiny-qwen2", dtype=dtype)
    return method, method.prepare(model, method.parse_config(params))


def test_default_trains_last_two_layers_and_head(tiny_qwen2: Path) -> None:
    _, model = _prepared({})
    names = trainable_parameter_names(model)
    assert "score.weight" in names
    assert any(n.startswith("model.layers.0.") for n in names)  # tiny-qwen2 has exactly 2 layers
    assert not any(n.startswith("model.embed_tokens") or n == "model.norm.weight" for n in names)


def test_one_layer_mlp_only(tiny_qwen2: Path) -> None:
    _, model = _prepared({"n_trainable_layers": 1, "modules": ["mlp"]})
    names = set(trainable_parameter_names(model))
    expected = {n for n, _ in model.named_parameters() if n.startswith("model.layers.1.mlp.")} | {
        "score.weight"
    }
    assert names == expected
    assert len(expected) == 4  # gate, up, down projections + head


def test_modules_restrict_to_named_submodules(tiny_qwen2: Path) -> None:
    _, model = _prepared({"n_trainable_layers": 2, "modules": ["self_attn", "input_layernorm"]})
    layer_names = [n for n in trainable_parameter_names(model) if n != "score.weight"]
    assert layer_names
    assert all(".self_attn." in n or ".input_layernorm." in n for n in layer_names)
    assert {n.split(".")[2] for n in layer_names} == {"0", "1"}


def test_unknown_module_rejected_listing_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        get_method("freeze").parse_config({"modules": ["mlp", "lm_head"]})
    message = str(info.value)
    assert "'lm_head'" in message
    assert "mlp, self_attn, input_layernorm, post_attention_layernorm" in message


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"modules": []}, "modules is empty"),
        ({"n_trainable_layers": -1}, "'n_trainable_layers'"),
        ({"n_trainable_layers": 0, "modules": ["mlp"]}, "leave it unset"),
    ],
)
def test_invalid_values_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_method("freeze").parse_config(params)


def test_more_layers_than_the_model_has_rejected_at_prepare(tiny_qwen2: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"n_trainable_layers=3 but the base model has only 2 decoder layer"
    ):
        _prepared({"n_trainable_layers": 3})


def test_trainable_upcast_to_fp32_frozen_keep_dtype(tiny_qwen2: Path) -> None:
    method, model = _prepared({"n_trainable_layers": 1}, dtype=torch.bfloat16)
    for name, param in model.named_parameters():
        assert param.dtype == (torch.float32 if param.requires_grad else torch.bfloat16), name


def test_training_moves_only_the_chosen_layer(tiny_qwen2: Path) -> None:
    config = suite_train_config("freeze", "tiny-qwen2", epochs=1)
    run = prepare_and_fit("freeze", {"n_trainable_layers": 1, "modules": ["mlp"]}, config, suite_data())
    trained = run.result.trainable_parameter_names  # what the optimizer updated
    assert set(trained) == {n for n in run.before if n.startswith("model.layers.1.mlp.")} | {"score.weight"}
    after = dict(run.result.model.named_parameters())
    for name, old in run.before.items():
        same = torch.equal(old, after[name].detach())
        assert same is (name not in trained), name


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_half_precision_base_trains(tiny_qwen2: Path, precision: str) -> None:
    method, model = _prepared({"n_trainable_layers": 1}, dtype=torch.bfloat16)
    _, tokenizer = load_classifier("tiny-qwen2")
    config = suite_train_config("freeze", "tiny-qwen2", epochs=1, precision=precision)
    choice = resolve_method("freeze", {"n_trainable_layers": 1})
    result = supervised_fit(ObjectiveInputs(choice, model, tokenizer, suite_data(), config, progress=False))
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16  # frozen: untouched
