"""The `quantum` method: a simulated variational circuit head on the frozen tiny Qwen2.

Checks the parameter budget against the real modules, that pooling is the base model's own,
that training moves only the head and lowers the loss, the save/load round trip, config
validation, and that both heads train with their own parameter budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.quantum import (
    ClassicalHead,
    QuantumHead,
    QuantumMethod,
    head_parameter_counts,
)
from risk_app.finetune.predict import pad_batch, predict_proba
from risk_app.finetune.run_setup import seed_everything
from risk_app.finetune.trainer import train_classifier
from tests.finetune.helpers import credit_texts


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("n_qubits", "n_layers"), [(4, 2), (2, 1), (6, 3), (10, 6)])
def test_head_parameter_counts_match_the_modules(n_qubits: int, n_layers: int) -> None:
    counts = head_parameter_counts(64, n_qubits, n_layers)
    assert n_params(QuantumHead(64, n_qubits, n_layers)) == counts["quantum"]
    assert n_params(ClassicalHead(64, n_qubits, n_layers)) == counts["classical"]
    # Same projection; the rest differs by less than one hidden unit's worth of weights.
    assert abs(counts["quantum"] - counts["classical"]) <= (n_qubits + 3) // 2 + 1


def test_documented_default_counts() -> None:
    assert head_parameter_counts(64, 4, 2) == {
        "projection": 260,
        "quantum": 294,
        "classical": 297,
        "classical_hidden_width": 5,
    }


def test_config_validation() -> None:
    method = QuantumMethod()
    assert method.parse_config({}).model_dump() == {"n_qubits": 4, "n_layers": 2, "head": "quantum"}
    for bad in ({"n_qubits": 1}, {"n_qubits": 11}, {"n_layers": 0}, {"head": "analog"}, {"qubits": 3}):
        with pytest.raises(ConfigError, match="method 'quantum' parameters"):
            method.parse_config(bad)


def test_circuit_is_differentiable() -> None:
    torch.manual_seed(0)
    head = QuantumHead(8, 3, 1)
    logits = head(torch.randn(5, 8))
    assert logits.shape == (5, 2) and logits.dtype == torch.float32
    logits.sum().backward()
    grad = head.circuit.layer.weights.grad
    assert grad is not None and grad.abs().sum() > 0


def test_pooling_is_the_base_models_own(tiny_qwen2: Path) -> None:
    method = QuantumMethod()
    cfg = method.parse_config({"n_qubits": 2, "n_layers": 1})
    base, tokenizer = method.load_base("tiny-qwen2", cfg)
    model = method.prepare(base, cfg)
    texts, _ = credit_texts(3)
    batch = pad_batch(tokenizer, tokenizer(texts, truncation=True, max_length=40)["input_ids"])
    with torch.no_grad():
        pooled = model.pooled_hidden(batch["input_ids"], batch["attention_mask"])
        # Qwen2ForSequenceClassification scores the same pooled token with its `score` head.
        expected = base(**batch).logits
    torch.testing.assert_close(base.score(pooled), expected)


def test_training_moves_only_the_head_and_round_trips(tiny_qwen2: Path, tmp_path: Path) -> None:
    texts, labels = credit_texts(64)
    val_texts, val_labels = credit_texts(24, offset=64)
    config = TrainConfig(
        method="quantum",
        method_params={"n_qubits": 3, "n_layers": 1},
        epochs=3,
        batch_size=16,
        max_length=48,
        learning_rate=3e-2,
        patience=0,
        seed=0,
        device="cpu",
    )
    method = QuantumMethod()
    cfg = method.parse_config(config.method_params)
    seed_everything(0)
    base, _ = method.load_base("tiny-qwen2", cfg)
    base_before = {k: v.clone() for k, v in base.state_dict().items()}

    result = train_classifier(texts, labels, val_texts, val_labels, config, tmp_path / "run", progress=False)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0], losses

    model = result.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    assert result.trainable_params == head_parameter_counts(64, 3, 1)["quantum"]
    # Same seed, same base: the frozen backbone and its original score head are bit-identical.
    for key, value in model.base.state_dict().items():
        assert torch.equal(value, base_before[key]), key

    state = method.state_to_save(model)
    assert set(state) == trainable
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "head.safetensors"))
    fresh = QuantumMethod()
    seed_everything(123)  # a different head init, overwritten by the saved weights
    reloaded = fresh.prepare(fresh.load_base("tiny-qwen2", cfg)[0], cfg)
    untrained = predict_proba(reloaded, result.tokenizer, val_texts, 8, 48)
    fresh.load_state(reloaded, load_file(str(tmp_path / "head.safetensors")))
    expected = predict_proba(model, result.tokenizer, val_texts, 8, 48)
    np.testing.assert_allclose(
        predict_proba(reloaded, result.tokenizer, val_texts, 8, 48), expected, atol=1e-6
    )
    assert not np.allclose(untrained, expected, atol=1e-4)


def test_both_heads_train_with_their_own_parameter_budget(tiny_qwen2: Path) -> None:
    # The quantum head and its classical twin, as `risk-app compare-methods` runs them.
    texts, labels = credit_texts(48)
    val_texts, val_labels = credit_texts(24, offset=48)
    counts = head_parameter_counts(64, 2, 1)
    for head in ("quantum", "classical"):
        config = TrainConfig(
            method="quantum",
            method_params={"n_qubits": 2, "n_layers": 1, "head": head},
            epochs=1, batch_size=16, max_length=32, learning_rate=2e-2, seed=0, device="cpu",
        )  # fmt: skip
        result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
        assert result.trainable_params == counts[head]
        assert 0.0 <= result.best_val_auc <= 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quantum_head_trains_with_the_base_on_cuda() -> None:
    """The circuit stays on the CPU while the projection and output layers live on the GPU."""
    from risk_app.finetune.methods.quantum import QuantumHead

    head = QuantumHead(64, 3, 1).to("cuda")
    pooled = torch.randn(5, 64, device="cuda")
    logits = head(pooled)
    logits.sum().backward()
    assert logits.device.type == "cuda"
    assert head.circuit.layer.weights.device.type == "cpu"
    assert head.circuit.layer.weights.grad is not None and head.projection.linear.weight.grad is not None
