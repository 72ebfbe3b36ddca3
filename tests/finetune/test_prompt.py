"""The `prompt` method: virtual tokens, text init, padding with soft prompts, prefix variant, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.methods.prompt import DEFAULT_INIT_TEXT, move_pads_first
from risk_app.finetune.predict import encode_texts, pad_batch, predict_proba, softmax_default
from risk_app.finetune.registry import get_method
from tests.finetune.test_method_suite import prepare_and_fit, suite_data, suite_train_config

SHORT = "Duration: 6 months. Credit history: delay in paying off in the past."
LONG = (
    "Duration: 48 months. Purpose: business. Savings account: < 100 DM. Housing: rent. Age: 29 years. "
    "Credit amount: 7882 DM. Credit history: existing credits paid back duly till now."
)


def _prepared(params: dict) -> tuple[object, torch.nn.Module, object]:
    method = get_method("prompt")
    cfg = method.parse_config(params)
    torch.manual_seed(0)
    model, tokenizer = method.load_base("tiny-qwen2", cfg)
    return method, method.prepare(model, cfg), tokenizer


@pytest.mark.parametrize("n_tokens", [1, 7])
def test_virtual_token_count_and_trainable_parameters(tiny_qwen2: Path, n_tokens: int) -> None:
    _, model, _ = _prepared({"num_virtual_tokens": n_tokens, "init": "random"})
    hidden = model.config.hidden_size
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    prompt = [p for n, p in trainable.items() if "prompt_encoder" in n]
    assert [tuple(p.shape) for p in prompt] == [(n_tokens, hidden)]
    head = [n for n in trainable if "score" in n]
    assert head and all("modules_to_save" in n for n in head)  # peft trains a copy of the head
    assert sum(p.numel() for p in trainable.values()) == n_tokens * hidden + 2 * hidden


def test_text_init_copies_the_init_text_embeddings(tiny_qwen2: Path) -> None:
    _, model, tokenizer = _prepared({"num_virtual_tokens": 30})
    ids = tokenizer(DEFAULT_INIT_TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) < 30  # so the text is repeated to fill the prompt, as peft does
    ids = (ids * (30 // len(ids) + 1))[:30]
    word_embeddings = model.get_input_embeddings().weight
    prompt = model.prompt_encoder["default"].embedding.weight
    torch.testing.assert_close(prompt, word_embeddings[ids], rtol=0, atol=0)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(
    "params", [{"num_virtual_tokens": 4}, {"variant": "prefix", "num_virtual_tokens": 4}]
)
def test_prediction_does_not_depend_on_batch_padding(tiny_qwen2: Path, params: dict, side: str) -> None:
    # A short text scored alone (no padding) and next to a long one (padded) must agree:
    # the attention mask covers the virtual tokens and pooling reads the last real token.
    _, model, tokenizer = _prepared(params)
    tokenizer.padding_side = side
    alone = predict_proba(model, tokenizer, [SHORT], batch_size=1, max_length=64)
    batched = predict_proba(model, tokenizer, [SHORT, LONG], batch_size=2, max_length=64)
    np.testing.assert_allclose(batched[:1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("variant", "side"), [("prompt", "right"), ("prompt", "left"), ("prefix", "left")])
def test_without_the_position_hooks_padding_changes_the_score(
    tiny_qwen2: Path, variant: str, side: str
) -> None:
    # Why `prepare` installs the hooks: plain peft prompt tuning pools a pad (right padding)
    # or shifts the text away from the prompt (left padding); prefix tuning shifts it too.
    _, model, tokenizer = _prepared({"variant": variant, "num_virtual_tokens": 4})
    model.base_model._forward_pre_hooks.clear()
    tokenizer.padding_side = side
    alone = predict_proba(model, tokenizer, [SHORT], batch_size=1, max_length=64)
    # Padded together by hand: predict_proba itself never pads on the CPU (one length a batch).
    padded = pad_batch(tokenizer, encode_texts(tokenizer, [SHORT, LONG], 64))
    with torch.inference_mode():
        batched = softmax_default(model(**padded).logits.float().numpy())
    assert not np.allclose(batched[:1], alone, atol=1e-5)


def test_move_pads_first_keeps_token_order() -> None:
    embeds = torch.arange(10, dtype=torch.float32).reshape(2, 5, 1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 1, 1]])  # prompt+text+pads, prompt+pads+text
    moved, new_mask, positions = move_pads_first(embeds, mask)
    assert moved[:, :, 0].tolist() == [[3.0, 4.0, 0.0, 1.0, 2.0], [6.0, 7.0, 5.0, 8.0, 9.0]]
    assert new_mask.tolist() == [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert positions.tolist() == [[0, 0, 0, 1, 2], [0, 0, 0, 1, 2]]


def test_prefix_variant_trains_key_value_prefixes(tiny_qwen2: Path) -> None:
    config = suite_train_config("prompt", "tiny-qwen2", epochs=2)
    params = {"variant": "prefix", "num_virtual_tokens": 4}
    run = prepare_and_fit("prompt", params, config, suite_data())
    cfg = run.result.model.peft_config["default"]
    assert cfg.peft_type.value == "PREFIX_TUNING"
    layers, hidden = run.result.model.config.num_hidden_layers, run.result.model.config.hidden_size
    kv_dim = (
        hidden // run.result.model.config.num_attention_heads * run.result.model.config.num_key_value_heads
    )
    prefix = run.result.model.prompt_encoder["default"].embedding.weight
    assert tuple(prefix.shape) == (4, layers * 2 * kv_dim)  # a key and a value per layer
    assert not torch.equal(prefix.detach(), run.before["prompt_encoder.default.embedding.weight"])
    losses = [h["train_loss"] for h in run.result.history]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"num_virtual_tokens": 0}, "'num_virtual_tokens'"),
        ({"num_virtual_tokens": 101}, "'num_virtual_tokens'"),
        ({"variant": "prefix", "init": "text"}, "prefix tuning starts random"),
        ({"init": "vocab"}, "'init'"),
        ({"init_text": ""}, "'init_text'"),
    ],
)
def test_invalid_configs_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_method("prompt").parse_config(params)


def test_prefix_config_survives_a_save_and_reload() -> None:
    method = get_method("prompt")
    cfg = method.parse_config({"variant": "prefix"})
    assert cfg.init == "random"  # the default, normalised to what prefix tuning does
    assert method.parse_config(cfg.model_dump(mode="json")) == cfg
