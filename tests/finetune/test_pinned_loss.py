"""Pinned numbers of a short seeded LoRA run, as torchtune's recipe tests pin a few steps' losses.

A refactor of the trainer, the objectives or the method hooks must not change what training
computes. The values below were recorded before the trainer was split into setup / one epoch /
validate / keep best (and method objects stopped holding run state), and the same run gave
bit-identical histories after it (also for adalora, full with EWC, freeze, qlora and rlhf).
The tolerance only absorbs BLAS differences between CPUs; a changed data order, seed use,
loss weighting or schedule moves these numbers by far more.

    pytest tests/finetune/test_pinned_loss.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from risk_app.finetune.trainer import train_classifier
from tests.finetune.test_method_suite import suite_data, suite_train_config

PINNED_TRAIN_LOSS = [0.6436153277754784, 0.33490765653550625, 0.16784975863993168]
PINNED_VAL_LOSS = [0.47707581520080566, 0.2642281651496887, 0.19196848571300507]
PINNED_VAL_AUC = [0.94140625, 0.9765625, 0.9921875]


def test_seeded_lora_run_reproduces_the_pinned_losses(_tiny_qwen2_build: Path) -> None:
    data = suite_data()
    config = suite_train_config("lora", str(_tiny_qwen2_build), method_params={"r": 4})
    result = train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
    )
    history = result.history
    assert [h["train_loss"] for h in history] == pytest.approx(PINNED_TRAIN_LOSS, rel=1e-5)
    assert [h["val_loss"] for h in history] == pytest.approx(PINNED_VAL_LOSS, rel=1e-5)
    assert [h["val_auc"] for h in history] == pytest.approx(PINNED_VAL_AUC, abs=1e-9)
