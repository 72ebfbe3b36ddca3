"""The training loop's speed levers: batches from length buckets, no per-step host sync, CUDA-only refusals.

Speed itself is measured by `bench/gpu_throughput.py`, not here; these tests check that each
lever keeps the run correct (every row once per epoch, the budget respected, the same
divergence error) and that a lever that needs CUDA refuses a CPU run in plain words.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.fused_kernels import KernelTiming, liger_scope
from risk_app.finetune.objectives import supervised
from risk_app.finetune.speed import (
    SpeedConfig,
    apply_load_levers,
    epoch_batches,
    training_attention,
    training_forward,
)
from risk_app.finetune.trainer import train_classifier
from tests.finetune.test_method_suite import suite_data, suite_train_config


def _lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(20, 240) for _ in range(n)]


def test_token_budget_batches_cover_every_row_once_within_the_budget() -> None:
    lengths = _lengths(1000)
    order = list(range(1000))
    random.Random(1).shuffle(order)
    speed = SpeedConfig(token_budget=4096, pad_to_multiple_of=16)
    batches = epoch_batches(lengths, order, 16, speed)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    padded = [len(b) * (-(-max(lengths[i] for i in b) // 16) * 16) for b in batches]
    assert max(padded) <= 4096
    # Length buckets waste far less padding than fixed batches in shuffled order.
    fixed = epoch_batches(lengths, order, 16, SpeedConfig())
    real = sum(lengths)
    waste_budget = 1 - real / sum(padded)
    waste_fixed = 1 - real / sum(len(b) * max(lengths[i] for i in b) for b in fixed)
    assert waste_budget < 0.15 < waste_fixed


def test_token_budget_order_depends_on_the_shuffle() -> None:
    lengths = _lengths(300)
    a, b = list(range(300)), list(range(300))
    random.Random(1).shuffle(a)
    random.Random(2).shuffle(b)
    speed = SpeedConfig(token_budget=2048)
    assert epoch_batches(lengths, a, 8, speed) != epoch_batches(lengths, b, 8, speed)


def test_a_token_budget_run_trains_and_plans_its_steps(_tiny_qwen2_build: Path) -> None:
    data = suite_data()
    config = suite_train_config(
        "lora", str(_tiny_qwen2_build), epochs=2, speed={"token_budget": 512, "log_every": 3}
    )
    result = train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
    )
    assert result.best_val_auc > 0.8
    assert all(h["train_tokens_per_second"] > 0 for h in result.history)


def test_activation_checkpointing_recomputes_and_trains_the_same(_tiny_qwen2_build: Path) -> None:
    # The memory lever must not change the run: dropout's random state is replayed in the
    # recomputation, so losses match the plain run to float rounding.
    data = suite_data()
    runs = {}
    for on in (False, True):
        config = suite_train_config(
            "lora", str(_tiny_qwen2_build), epochs=1, speed={"activation_checkpointing": on}
        )
        runs[on] = train_classifier(
            data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
        )
    on, off = runs[True], runs[False]
    assert on.model.get_base_model().is_gradient_checkpointing
    assert not off.model.get_base_model().is_gradient_checkpointing
    assert on.history[0]["train_loss"] == pytest.approx(off.history[0]["train_loss"], abs=1e-6)
    assert on.best_val_auc == pytest.approx(off.best_val_auc, abs=1e-6)


def test_a_diverging_loss_is_reported_even_between_host_syncs(
    _tiny_qwen2_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = supervised.loss_functions

    def nan_loss(data, config, device):  # noqa: ANN001, ANN202
        train_fn, val_fn = real(data, config, device)
        return (lambda logits, target: train_fn(logits, target) * float("nan")), val_fn

    monkeypatch.setattr(supervised, "loss_functions", nan_loss)
    data = suite_data()
    config = suite_train_config("lora", str(_tiny_qwen2_build), epochs=1, speed={"log_every": 1000})
    with pytest.raises(supervised.TrainingDivergedError, match="lower learning_rate"):
        train_classifier(
            data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
        )


@pytest.mark.parametrize("speed", [{"fused_kernels": True}, {"fused_kernels": "measure"}, {"compile": True}])
def test_cuda_only_levers_refuse_a_cpu_run(speed: dict) -> None:
    cfg = SpeedConfig(**speed)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        apply_load_levers(torch.nn.Linear(2, 2), cfg, torch.device("cpu"))
        training_forward(torch.nn.Linear(2, 2), cfg, torch.device("cpu"))


def test_fused_adamw_on_a_cpu_is_refused(_tiny_qwen2_build: Path) -> None:
    data = suite_data()
    config = suite_train_config("lora", str(_tiny_qwen2_build), epochs=1, speed={"fused_adamw": "on"})
    with pytest.raises(ConfigError, match="fused_adamw"):
        train_classifier(
            data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
        )


def test_unknown_speed_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="turbo"):
        TrainConfig(speed={"turbo": True})


def test_training_steps_run_without_cudnn_attention(
    _tiny_qwen2_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cuDNN's SDPA backward returns NaN on padded bf16 batches whose logits sit far below zero
    # (Qwen2.5's attention sinks; speed.training_attention): every forward and backward of a
    # training step must run with that backend off. Validation (forward only) may keep it.
    flags: dict[str, list[bool]] = {"forward": [], "backward": []}
    real_setup = supervised.setup_run

    def watched_setup(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        run = real_setup(*args, **kwargs)

        def on_forward(module, inputs, output):  # noqa: ANN001, ANN202
            if module.training:
                flags["forward"].append(torch.backends.cuda.cudnn_sdp_enabled())
                output.logits.register_hook(
                    lambda grad: flags["backward"].append(torch.backends.cuda.cudnn_sdp_enabled())
                )

        run.model.register_forward_hook(on_forward)
        return run

    monkeypatch.setattr(supervised, "setup_run", watched_setup)
    data = suite_data()
    config = suite_train_config("full", str(_tiny_qwen2_build), epochs=1, precision="bf16")
    train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
    )
    assert flags["forward"] and flags["backward"]
    assert not any(flags["forward"]) and not any(flags["backward"])
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored after the step


def _sink_attention_grads(width: int) -> torch.Tensor:
    """dQ of one bf16 SDPA step (cuDNN allowed) whose every logit is about -120, keys padded."""
    import math

    import torch.nn.functional as F

    torch.manual_seed(0)
    d = 64
    q = torch.randn(2, 2, width, d, device="cuda", dtype=torch.bfloat16) * 0.1
    k = torch.randn(2, 2, width, d, device="cuda", dtype=torch.bfloat16) * 0.1
    v = torch.randn(2, 2, width, d, device="cuda", dtype=torch.bfloat16)
    q[..., 0], k[..., 0] = 1.0, -120 * math.sqrt(d)  # a sink-like row: log-sum-exp far below -88.7
    q.requires_grad_()
    causal = torch.ones(width, width, dtype=torch.bool, device="cuda").tril()
    mask = causal[None, None] & (torch.arange(width, device="cuda") < width - 7)[None, None, None]
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()
    assert q.grad is not None
    return q.grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN attention exists on CUDA only")
def test_training_attention_keeps_sink_gradients_finite_on_cuda() -> None:
    # The mechanism itself, on the GPU: with the training context the same step is finite
    # whatever the padded width (192 is 64 mod 128, the width that broke).
    for width in (192, 200, 256):
        with training_attention():
            assert torch.isfinite(_sink_attention_grads(width)).all()


def test_fused_kernels_accept_on_off_and_measure_only() -> None:
    assert SpeedConfig(fused_kernels=True).fused_kernels is True
    assert SpeedConfig().fused_kernels is False  # saved configs of earlier runs still load
    assert SpeedConfig(fused_kernels="measure").fused_kernels == "measure"
    with pytest.raises(ValueError, match="fused_kernels"):
        SpeedConfig(fused_kernels="sometimes")


def test_liger_is_chosen_only_when_measured_faster() -> None:
    assert KernelTiming("gpu", 4096, plain_s=1.0, liger_s=0.9).use_liger
    assert not KernelTiming("gpu", 4096, plain_s=1.0, liger_s=0.99).use_liger  # within noise
    assert not KernelTiming("gpu", 4096, plain_s=1.0, liger_s=1.2).use_liger


def test_liger_scope_puts_the_model_module_back(_tiny_qwen2_build: Path) -> None:
    # Liger replaces module-level classes and RoPE of the model's transformers module; a
    # measurement or a benchmark row must not leave them to the next model of that type.
    from transformers.models.qwen2 import modeling_qwen2

    from risk_app.models.loader import load_classifier

    model, _ = load_classifier(str(_tiny_qwen2_build), num_labels=2, device=torch.device("cpu"))
    rope, mlp = modeling_qwen2.apply_rotary_pos_emb, modeling_qwen2.Qwen2MLP
    with liger_scope(model):
        modeling_qwen2.apply_rotary_pos_emb = lambda *a: a
        modeling_qwen2.Qwen2MLP = torch.nn.Identity
    assert modeling_qwen2.apply_rotary_pos_emb is rope
    assert modeling_qwen2.Qwen2MLP is mlp
