"""The supervised loop: loss falls, only LoRA + head change, checkpoints, early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import UnknownMethodError, get_method
from risk_app.finetune.run_setup import class_weights, seed_everything
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainingDataError
from risk_app.models.loader import load_classifier
from tests.finetune.helpers import credit_texts


def _base_name(peft_name: str) -> str:
    """Name of a wrapped base tensor in the unwrapped model."""
    name = peft_name.removeprefix("base_model.model.").replace(".base_layer", "")
    return name.replace("score.original_module.", "score.")


def test_lora_run_lowers_loss_changes_only_adapters_and_checkpoints(tiny_qwen2: Path, tmp_path: Path) -> None:
    texts, labels = credit_texts(200)
    val_texts, val_labels = credit_texts(60, offset=900)
    config = TrainConfig(epochs=3, batch_size=16, max_length=128, patience=0, seed=7)
    result = train_classifier(texts, labels, val_texts, val_labels, config, tmp_path / "ckpt", progress=False)

    # The loss falls.
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]

    # Base weights are bit-identical to a fresh load with the same seed; adapters and head moved.
    seed_everything(config.seed)
    fresh, _ = load_classifier("tiny-qwen2")
    fresh_state = fresh.state_dict()
    trained = dict(result.model.named_parameters())
    frozen = {n: p for n, p in trained.items() if "lora_" not in n and "modules_to_save" not in n}
    assert len(frozen) == len(fresh_state)
    for name, param in frozen.items():
        assert not param.requires_grad
        assert torch.equal(param.detach(), fresh_state[_base_name(name)]), name
    for name, param in trained.items():
        if "lora_B" in name:  # starts at zero
            assert param.detach().abs().sum() > 0, name
        if "modules_to_save" in name:
            assert not torch.equal(param.detach(), fresh_state["score.weight"])

    # Counts and facts.
    assert result.trainable_params == sum(p.numel() for p in trained.values() if p.requires_grad)
    assert result.total_params == sum(p.numel() for p in trained.values())
    assert 0 < result.trainable_percent < 10
    assert result.tokens_per_second > 0 and result.wall_seconds > 0 and result.peak_memory_mb > 0
    assert result.device == "cpu" and result.method_name == "lora"
    assert result.best_val_auc == max(h["val_auc"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_auc"] == result.best_val_auc

    # The returned model is the best epoch's: its validation AUC is the recorded best.
    proba = predict_proba(result.model, result.tokenizer, val_texts, max_length=config.max_length)
    assert roc_auc_score(val_labels, proba) == pytest.approx(result.best_val_auc, abs=1e-9)
    np.testing.assert_allclose(proba, result.best_val_proba, atol=1e-6)

    # One checkpoint per epoch: the method's state plus that epoch's metrics.
    saved_keys = set(get_method("lora").state_to_save(result.model))
    for epoch in (1, 2, 3):
        folder = tmp_path / "ckpt" / f"epoch-{epoch}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["epoch"] == epoch and metrics == pytest.approx(result.history[epoch - 1])
        state = load_file(folder / "state.safetensors")
        assert set(state) == saved_keys
        assert not any(_base_name(k) in fresh_state and "score" not in k for k in state)


def test_early_stopping_when_validation_auc_stalls(tiny_qwen2: Path) -> None:
    texts, labels = credit_texts(32)
    val_texts, val_labels = credit_texts(24, offset=900)
    # A vanishing learning rate leaves predictions (and so the AUC) unchanged: no gain.
    config = TrainConfig(epochs=5, learning_rate=1e-12, patience=1, batch_size=16, max_length=64)
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    assert len(result.history) == 2
    assert result.stopped_early and result.best_epoch == 1


def test_max_train_rows_subsamples_stratified(tiny_qwen2: Path) -> None:
    texts, labels = credit_texts(120)
    val_texts, val_labels = credit_texts(20, offset=900)
    config = TrainConfig(epochs=1, max_train_rows=40, batch_size=20, max_length=48)
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    assert len(result.history) == 1  # 40 rows / batch 20 ran without error
    assert result.tokens_per_second > 0


def test_class_weights_inverse_to_frequency() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]))
    assert weights.tolist() == pytest.approx([4 / 6, 2.0])


@pytest.mark.parametrize(
    ("train_labels", "fragment"),
    [
        ([0, 1, 1], "3 texts but 3 labels|labels; they must match"),
        ([0, 0, 0, 0], "only label 0"),
        ([0, 1, 2, 0], "row 2: label 2"),
    ],
)
def test_bad_training_data_is_rejected(train_labels: list[int], fragment: str) -> None:
    texts = ["Duration: 6 months."] * 4
    with pytest.raises(TrainingDataError, match=fragment):
        train_classifier(texts, train_labels, texts[:2], [0, 1], TrainConfig(), None, progress=False)


def test_empty_text_rejected_with_row() -> None:
    with pytest.raises(TrainingDataError, match="row 1: text is empty"):
        train_classifier(["a", " ", "b"], [0, 1, 0], ["a", "b"], [0, 1], TrainConfig(), None, progress=False)


def test_unknown_method_in_config() -> None:
    with pytest.raises(UnknownMethodError, match="registered methods: .*lora"):
        train_classifier(["a", "b"], [0, 1], ["a", "b"], [0, 1], TrainConfig(method="magic"), None)
