"""How `risk_app.finetune.predict` cuts rows into batches: one length a batch on the CPU (the
GPU's fixed-shape batches are tested in test_bucketed_scoring.py); every row exactly once."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from risk_app.finetune.predict import (
    GPU_TOKEN_BUDGET,
    _gpu_autocast,
    gpu_token_budget,
    length_batches,
)

LENGTHS = [5, 9, 9, 3, 9, 5, 12, 3, 3, 3]


def test_cpu_batches_hold_one_length_and_every_row_once() -> None:
    batches = length_batches(LENGTHS, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert all(len({LENGTHS[i] for i in b}) == 1 and len(b) <= 2 for b in batches)
    assert [LENGTHS[b[0]] for b in batches] == sorted((LENGTHS[b[0]] for b in batches), reverse=True)


def test_no_autocast_off_a_gpu() -> None:
    model = torch.nn.Linear(2, 2)
    with _gpu_autocast(model, torch.device("cpu")):
        assert not torch.is_autocast_enabled()


def test_gpu_budget_shrinks_for_wide_models() -> None:
    def shaped(hidden: int, width: int) -> SimpleNamespace:
        return SimpleNamespace(config=SimpleNamespace(hidden_size=hidden, intermediate_size=width))

    small, half_b, seven_b = shaped(576, 1536), shaped(896, 4864), shaped(3584, 18944)
    assert gpu_token_budget(small) == GPU_TOKEN_BUDGET  # SmolLM2: the full budget
    # Qwen2.5-0.5B and Qwen2-7B widths: the budget keeps a layer's activations near 1 GiB.
    assert 20_000 < gpu_token_budget(half_b) < 30_000
    assert 5_000 < gpu_token_budget(seven_b) < 8_000
    assert gpu_token_budget(torch.nn.Linear(2, 2)) == GPU_TOKEN_BUDGET  # no config: the default


def test_gpu_budget_is_smaller_for_a_quantized_base() -> None:
    # A 4-bit base was chosen to fit a small GPU: its inference batches hold a quarter of the
    # activations (the 7B QLoRA peak was set by validation's batches, 6,855 against 6,217 MiB).
    config = SimpleNamespace(hidden_size=3584, intermediate_size=18944)
    plain = SimpleNamespace(config=config)
    four_bit = SimpleNamespace(config=config, is_loaded_in_4bit=True)
    wrapped = SimpleNamespace(config=config, base_model=four_bit)  # as peft wraps it
    assert gpu_token_budget(four_bit) == gpu_token_budget(wrapped) == 2_048
    assert gpu_token_budget(plain) > 3 * gpu_token_budget(four_bit)


def test_fused_scoring_kernels_leave_a_cpu_model_alone() -> None:
    from risk_app.finetune import fused_kernels
    from risk_app.finetune.predict import cast_for_gpu_inference

    model = torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fused_kernels.for_scoring(model, 4096) is None
    assert cast_for_gpu_inference(model) is model
    assert model.weight.dtype == torch.float32 and not hasattr(model, fused_kernels.FUSED_FOR_SCORING)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
