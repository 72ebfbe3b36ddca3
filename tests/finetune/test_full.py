"""The `full` method: everything trains, EWC penalty, gradient checkpointing, mixed precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.methods.full import EwcPenalty, FullMethod, FullParams, estimate_diagonal_fisher
from risk_app.finetune.predict import encode_texts, pad_batch
from risk_app.finetune.registry import get_method
from risk_app.models.loader import load_classifier
from tests.finetune.test_method_suite import PreparedRun, prepare_and_fit, suite_data, suite_train_config


def _batch(tokenizer: object, n: int = 8) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    data = suite_data()
    ids = encode_texts(tokenizer, data.train_texts[:n], 64)
    return pad_batch(tokenizer, ids), torch.as_tensor(data.train_labels[:n])


def test_every_parameter_trains_and_is_saved(tiny_qwen2: Path) -> None:
    method = get_method("full")
    model, _ = load_classifier("tiny-qwen2")
    model = method.prepare(model, method.parse_config({}))
    names = [n for n, _ in model.named_parameters()]
    assert all(p.requires_grad for p in model.parameters())
    assert sorted(method.state_to_save(model)) == sorted(names)
    assert any(n.startswith("model.embed_tokens") for n in names)


def test_quantized_base_rejected(tiny_qwen2: Path) -> None:
    model, _ = load_classifier("tiny-qwen2")
    model.is_quantized = True
    with pytest.raises(ConfigError, match="cannot train a quantized base"):
        get_method("full").prepare(model, FullParams())


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"ewc_lambda": -1}, "'ewc_lambda'"), ({"ewc_fisher_batches": 0}, "'ewc_fisher_batches'")],
)
def test_invalid_values_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_method("full").parse_config(params)


def test_fisher_is_mean_squared_gradient(tiny_qwen2: Path) -> None:
    model, tokenizer = load_classifier("tiny-qwen2")
    data = suite_data()
    labels = torch.as_tensor(data.train_labels)
    fisher = estimate_diagonal_fisher(
        model, tokenizer, data.train_texts, labels, batch_size=8, max_length=64, n_batches=2
    )
    # By hand: the squared gradient of each of the first two batches, averaged.
    expected: dict[str, torch.Tensor] = {}
    ids = encode_texts(tokenizer, data.train_texts[:16], 64)
    model.eval()
    for start in (0, 8):
        model.zero_grad()
        logits = model(**pad_batch(tokenizer, ids[start : start + 8])).logits
        torch.nn.functional.cross_entropy(logits, labels[start : start + 8]).backward()
        for n, p in model.named_parameters():
            expected[n] = expected.get(n, 0) + p.grad**2 / 2
    estimate_diagonal_fisher(
        model, tokenizer, data.train_texts, labels, batch_size=8, max_length=64, n_batches=1
    )
    assert all(p.grad is None for p in model.parameters())  # leaves no stale gradients behind
    for name, value in fisher.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-10)
    assert fisher["score.weight"].sum() > 0


def test_ewc_penalty_zero_at_start_positive_after_a_step(tiny_qwen2: Path) -> None:
    method = FullMethod()
    train_cfg = suite_train_config("full", "tiny-qwen2")
    model, tokenizer = load_classifier("tiny-qwen2")
    model = method.prepare(model, method.parse_config({}))
    off = method.regularizer(model, tokenizer, suite_data(), train_cfg, method.parse_config({}))
    assert off is None  # ewc_lambda 0: no term
    cfg = method.parse_config({"ewc_lambda": 50.0, "ewc_fisher_batches": 2})
    regularizer = method.regularizer(model, tokenizer, suite_data(), train_cfg, cfg)
    assert isinstance(regularizer, EwcPenalty) and vars(method) == {}  # the run's EWC state is in the closure
    penalty = regularizer(model)
    assert penalty.item() == 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch, labels = _batch(tokenizer)
    torch.nn.functional.cross_entropy(model(**batch).logits, labels).backward()
    optimizer.step()
    penalty = regularizer(model)
    assert penalty.item() > 0
    # It is a differentiable loss term: its gradient pulls weights back towards the start.
    penalty.backward()
    assert model.score.weight.grad is not None


def test_ewc_keeps_important_weights_closer_to_the_base(tiny_qwen2: Path) -> None:
    # EWC constrains the directions the Fisher marks as important (Adam may still move the
    # unimportant ones freely), so drift is measured as the penalty measures it: sum F * d^2.
    data = suite_data()
    config = suite_train_config("full", "tiny-qwen2", epochs=1, learning_rate=5e-3)
    plain = prepare_and_fit("full", {}, config, data)
    ewc_cfg = {"ewc_lambda": 1e4, "ewc_fisher_batches": 8}
    ewc = prepare_and_fit("full", ewc_cfg, config, data)
    # The Fisher the run used, measured again at the same starting weights.
    model, tokenizer = load_classifier(config.base_model)
    model.load_state_dict(ewc.before)
    fisher = estimate_diagonal_fisher(
        model, tokenizer, data.train_texts, torch.as_tensor(data.train_labels),
        batch_size=config.batch_size, max_length=config.max_length, n_batches=8,
    )  # fmt: skip
    assert all(torch.equal(plain.before[n], ewc.before[n]) for n in fisher)  # same start

    def weighted_drift(run: PreparedRun) -> float:
        after = dict(run.result.model.named_parameters())
        return sum(float((fisher[n] * (after[n].detach() - run.before[n]) ** 2).sum()) for n in fisher)

    assert weighted_drift(ewc) < 0.6 * weighted_drift(plain)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_qwen2: Path) -> None:
    grads = []
    for checkpointing in (False, True):
        method = get_method("full")
        torch.manual_seed(0)  # the same freshly initialised head both times
        model, tokenizer = load_classifier("tiny-qwen2")
        model = method.prepare(model, method.parse_config({"gradient_checkpointing": checkpointing}))
        assert model.is_activation_checkpointing is checkpointing
        model.train()
        batch, labels = _batch(tokenizer)
        torch.nn.functional.cross_entropy(model(**batch).logits, labels).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert model.config.use_cache is False
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_with_checkpointing_trains_fp32_weights(tiny_qwen2: Path) -> None:
    config = suite_train_config("full", "tiny-qwen2", epochs=2, precision="bf16")
    run = prepare_and_fit("full", {"gradient_checkpointing": True}, config, suite_data())
    losses = [h["train_loss"] for h in run.result.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in run.result.model.parameters())


def test_half_precision_base_is_upcast(tiny_qwen2: Path) -> None:
    model, _ = load_classifier("tiny-qwen2", dtype=torch.bfloat16)
    model = get_method("full").prepare(model, FullParams())
    assert all(p.dtype == torch.float32 for p in model.parameters())
