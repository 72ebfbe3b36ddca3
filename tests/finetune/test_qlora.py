"""The `qlora` method: LoRA on a 4-bit bitsandbytes base, on CPU here (bitsandbytes >= 0.48
runs 4-bit layers on CPU) and on CUDA where present (`-m gpu`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bitsandbytes.nn import Linear4bit

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.lora import LoraMethod, LoraParams
from risk_app.finetune.methods.qlora import (
    HostEmbedding,
    QLoraMethod,
    QLoraParams,
    offload_embeddings,
    resolve_compute_dtype,
    shrink_frozen_embeddings,
)
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.run_setup import seed_everything
from risk_app.finetune.trainer import train_classifier
from tests.finetune.helpers import credit_texts

QUICK = {"r": 4, "target_modules": ["q_proj", "v_proj"], "gradient_checkpointing": True}


def quick_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "method": "qlora",
        "method_params": QUICK,
        "epochs": 3,
        "batch_size": 8,
        "max_length": 32,
        "learning_rate": 1e-2,
        "patience": 0,
        "seed": 0,
        "device": "cpu",
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_config_extends_lora_and_validates() -> None:
    method = QLoraMethod()
    cfg = method.parse_config({"r": 4})
    assert isinstance(cfg, QLoraParams) and isinstance(cfg, LoraParams)
    assert (cfg.quant_type, cfg.double_quant, cfg.compute_dtype) == ("nf4", True, "auto")
    assert isinstance(method, LoraMethod)  # reuses LoRA, adds only quantization
    for bad in ({"quant_type": "int3"}, {"compute_dtype": "float64"}, {"r": 0}, {"bits": 4}):
        with pytest.raises(ConfigError, match="method 'qlora' parameters"):
            method.parse_config(bad)


def test_compute_dtype_auto_is_float32_on_cpu() -> None:
    assert resolve_compute_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_compute_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_load_base_quantizes_projections_but_not_the_head(tiny_qwen2: Path) -> None:
    method = QLoraMethod()
    cfg = method.parse_config({"quant_type": "fp4", "double_quant": False})
    model, _ = method.load_base("tiny-qwen2", cfg, quick_config())
    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(layers) == 2 * 7  # 4 attention + 3 MLP projections in each of 2 layers
    state = layers[0].weight.quant_state
    assert state.quant_type == "fp4" and not state.nested
    assert not isinstance(model.score, Linear4bit) and model.score.weight.dtype == torch.float32


def test_prepare_refuses_an_unquantized_base(tiny_qwen2: Path) -> None:
    plain, _ = LoraMethod().load_base("tiny-qwen2", LoraParams())
    with pytest.raises(ConfigError, match="needs a 4-bit base"):
        QLoraMethod().prepare(plain, QLoraParams())


def test_frozen_embeddings_go_back_to_the_compute_dtype(tiny_qwen2: Path) -> None:
    from risk_app.models.loader import load_classifier

    model, _ = load_classifier(str(tiny_qwen2), num_labels=2)
    table = model.get_input_embeddings().weight
    table.requires_grad_(False)
    # The CPU's compute dtype is fp32: nothing to shrink.
    assert not shrink_frozen_embeddings(model, QLoraParams())
    assert shrink_frozen_embeddings(model, QLoraParams(compute_dtype="bfloat16"))
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    kept = QLoraParams(compute_dtype="float16", embedding_dtype="float32")
    assert not shrink_frozen_embeddings(model, kept)
    table.requires_grad_(True)  # a trained table keeps its dtype
    assert not shrink_frozen_embeddings(model, QLoraParams(compute_dtype="float16"))


def test_cpu_optimizer_choice_comes_from_the_config() -> None:
    method = QLoraMethod()
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "weight_decay": 0.0}]
    auto = method.parse_config({})
    assert isinstance(method.make_optimizer(groups, quick_config(), auto), torch.optim.AdamW)
    paged = method.parse_config({"optimizer": "paged_adamw_8bit"})
    with pytest.raises(ConfigError, match="needs the model on CUDA"):
        method.make_optimizer(groups, quick_config(), paged)
    assert vars(method) == {}  # the choice is read from the config, never kept on the method


def test_trains_on_cpu_keeps_4bit_base_frozen_and_round_trips(tiny_qwen2: Path) -> None:
    texts, labels = credit_texts(32)
    val_texts, val_labels = credit_texts(16, offset=32)
    config = quick_config()
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    model = result.model
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0], losses
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or ".score." in n for n in trainable)

    # The 4-bit weights are byte-for-byte those of a fresh quantization of the same base, so
    # neither training nor the validation passes in eval mode (bitsandbytes' CPU repacking)
    # touched them; this is also why a reload reproduces the model.
    method = QLoraMethod()
    cfg = method.parse_config(config.method_params)
    seed_everything(99)
    fresh = method.prepare(method.load_base("tiny-qwen2", cfg, config)[0], cfg)
    fresh_4bit = {n: p for n, p in fresh.named_parameters() if p.__class__.__name__ == "Params4bit"}
    trained_4bit = {n: p for n, p in model.named_parameters() if p.__class__.__name__ == "Params4bit"}
    assert len(trained_4bit) == 14 and set(fresh_4bit) == set(trained_4bit)
    for name, param in trained_4bit.items():
        assert torch.equal(param.data, fresh_4bit[name].data), name

    expected = predict_proba(model, result.tokenizer, val_texts, 8, config.max_length)
    untrained = predict_proba(fresh, result.tokenizer, val_texts, 8, config.max_length)
    assert not np.allclose(untrained, expected, atol=1e-4)
    state = {k: v.detach().cpu().clone() for k, v in method.state_to_save(model).items()}
    assert not any("base_layer.weight" in k for k in state), "the quantized base must not be saved"
    method.load_state(fresh, state)
    np.testing.assert_allclose(
        predict_proba(fresh, result.tokenizer, val_texts, 8, config.max_length), expected, atol=1e-5
    )


@pytest.mark.gpu
def test_gpu_training_uses_paged_8bit_adamw_and_bf16(tiny_qwen2: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import bitsandbytes as bnb

    texts, labels = credit_texts(32)
    val_texts, val_labels = credit_texts(16, offset=32)
    config = quick_config(device="cuda")
    method = QLoraMethod()
    made: list[torch.optim.Optimizer] = []
    original = method.make_optimizer

    def spy(groups, train_cfg, cfg):  # type: ignore[no-untyped-def]
        made.append(original(groups, train_cfg, cfg))
        return made[-1]

    method.make_optimizer = spy  # type: ignore[method-assign]
    result = train_classifier(
        texts, labels, val_texts, val_labels, config, None, method=method, progress=False
    )
    assert isinstance(made[0], bnb.optim.PagedAdamW8bit)
    layer = next(m for m in result.model.modules() if isinstance(m, Linear4bit))
    assert layer.weight.device.type == "cuda"
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert layer.compute_dtype == expected
    losses = [r["train_loss"] for r in result.history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


def test_offloaded_embeddings_give_the_same_scores_and_leave_the_parameters(tiny_qwen2: Path) -> None:
    # The host table is not a parameter (moving the model leaves it in host memory) and looks up
    # exactly what the device table did; a run with it trains like one without.
    texts, labels = credit_texts(32)
    val_texts, val_labels = credit_texts(16, offset=32)
    method = QLoraMethod()
    runs = {}
    for offload in (False, True):
        config = quick_config(epochs=1, method_params={**QUICK, "embedding_offload": offload})
        runs[offload] = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    on, off = runs[True], runs[False]
    embeddings = on.model.get_input_embeddings()
    assert isinstance(embeddings, HostEmbedding)
    assert not any("embed_tokens" in n for n, _ in on.model.named_parameters())
    assert any("embed_tokens" in n for n, _ in off.model.named_parameters())
    assert on.history[0]["train_loss"] == pytest.approx(off.history[0]["train_loss"], abs=1e-5)
    assert on.best_val_auc == pytest.approx(off.best_val_auc, abs=1e-6)
    cfg = method.parse_config({**QUICK, "embedding_offload": True})
    assert offload_embeddings(off.model, cfg)  # the swap itself: same scores afterwards
    np.testing.assert_allclose(
        predict_proba(off.model, off.tokenizer, val_texts, 8, 32),
        predict_proba(on.model, on.tokenizer, val_texts, 8, 32),
        atol=1e-5,
    )
