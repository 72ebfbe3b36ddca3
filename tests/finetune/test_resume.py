"""A training run killed after an epoch resumes from its checkpoint to the same result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from risk_app.finetune.events import on_epoch_end
from risk_app.finetune.resume import TRAINER_STATE, latest_checkpoint, resuming
from risk_app.finetune.trainer import train_classifier
from tests.finetune.test_method_suite import suite_data, suite_train_config


class Killed(KeyboardInterrupt):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


def _train(config, checkpoint_dir: Path):  # noqa: ANN001, ANN202
    data = suite_data()
    return train_classifier(
        data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, checkpoint_dir,
        progress=False,
    )  # fmt: skip


def _kill_after(epoch: int):  # noqa: ANN202
    def listener(record) -> None:  # noqa: ANN001
        if record["epoch"] == epoch:
            raise Killed

    return on_epoch_end(listener)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_resume_after_a_kill_matches_the_uninterrupted_run(
    method: str, _tiny_qwen2_build: Path, tmp_path: Path
) -> None:
    config = suite_train_config(method, str(_tiny_qwen2_build)).model_copy(update={"patience": 0})
    whole = _train(config, tmp_path / "whole")

    with pytest.raises(Killed), _kill_after(1):
        _train(config, tmp_path / "killed")
    assert latest_checkpoint(tmp_path / "killed")[0] == 1
    with resuming():
        resumed = _train(config, tmp_path / "killed")

    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(whole.history, resumed.history, strict=True):
        for key in ("train_loss", "val_loss", "val_auc", "learning_rate"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key
    assert resumed.best_epoch == whole.best_epoch
    np.testing.assert_allclose(resumed.best_val_proba, whole.best_val_proba, rtol=1e-5)


def test_checkpoint_state_loads_without_running_code(_tiny_qwen2_build: Path, tmp_path: Path) -> None:
    config = suite_train_config("lora", str(_tiny_qwen2_build)).model_copy(update={"epochs": 1})
    _train(config, tmp_path / "ck")
    state = torch.load(tmp_path / "ck" / "epoch-1" / TRAINER_STATE, weights_only=True)
    assert {"optimizer", "scheduler", "shuffler", "rng", "history", "best"} <= set(state)


def test_resuming_with_no_checkpoint_starts_from_the_beginning(
    _tiny_qwen2_build: Path, tmp_path: Path
) -> None:
    config = suite_train_config("lora", str(_tiny_qwen2_build)).model_copy(update={"epochs": 1})
    with resuming():
        result = _train(config, tmp_path / "empty")
    assert [h["epoch"] for h in result.history] == [1]
