"""The trainer: owns one fine-tuning run from config to `TrainResult`.

Two independent choices make a run, as in LLaMA-Factory: the *parameter method* (which
parameters train: full, freeze, lora, qlora, adapter, prompt, quantum;
`risk_app.finetune.methods`) and the *objective* (how they train: `supervised`, or `rlhf` =
SFT -> reward model from analyst feedback -> clipped PPO with KL;
`risk_app.finetune.objectives`). `train_classifier`:

1. resolves the method name into both (`registry.resolve_method` -> `MethodChoice`: `lora`
   is lora + supervised, `rlhf` is its policy method + rlhf), each config validated by its
   own class;
2. checks the data, subsamples the train split when asked, seeds everything;
3. plans the run (`RunPlan`: steps per epoch and epochs) and hands it to `method.prepare`
   after `method.load_base` — the method object keeps nothing of the run;
4. runs the objective (`objectives.base.run_objective`), which returns the `TrainResult`.

    from risk_app.finetune.trainer import train_classifier
    result = train_classifier(tr_texts, tr_y, va_texts, va_y, TrainConfig(epochs=2), "var/runs/x")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.objectives.base import ObjectiveInputs, run_objective
from risk_app.finetune.registry import MethodChoice, resolve_method
from risk_app.finetune.run_setup import resolve_device, seed_everything, steps_per_epoch, subsample_train
from risk_app.finetune.speed import apply_load_levers
from risk_app.finetune.types import RunPlan, TrainData, TrainResult


def plan_run(n_train: int, config: TrainConfig) -> RunPlan:
    """What `prepare` may know about the coming run: optimizer steps per epoch, epochs."""
    return RunPlan(steps_per_epoch=steps_per_epoch(n_train, config), epochs=config.epochs)


def train_classifier(
    train_texts: Sequence[str],
    train_labels: Sequence[int] | np.ndarray,
    val_texts: Sequence[str],
    val_labels: Sequence[int] | np.ndarray,
    config: TrainConfig,
    checkpoint_dir: str | Path | None,
    choice: MethodChoice | None = None,
    progress: bool = True,
    dataset: str | None = None,
    exclude_fields: Sequence[str] = (),
) -> TrainResult:
    """Fine-tune `config.base_model` with `config.method` and return the result.

    `dataset` (a built-in name or a spec file) says which data set the texts come from, for an
    objective that reads more of it (rlhf's override ledger), and `exclude_fields` the fields its
    texts leave out (so that objective leaves them out too). `choice`: the method already
    resolved from `config.method` and its parameters (a run's `TrainingPlan` passes it);
    without it, `config.method_params` are parsed here, for direct callers."""
    if choice is None:
        choice = resolve_method(config.method, config.method_params)
    method, cfg = choice.method, choice.method_cfg
    data = TrainData.build(train_texts, train_labels, val_texts, val_labels, dataset, exclude_fields)
    data = subsample_train(data, config.max_train_rows, config.seed)
    seed_everything(config.seed)
    plan = plan_run(len(data.train_texts), config)
    model, tokenizer = method.load_base(config.base_model, cfg, config)
    device = resolve_device(config.device)
    model = apply_load_levers(model, config.speed, device, weight_grads=method.name == "full")
    model = method.prepare(model, cfg, choice.plan_for_method(plan))
    run_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    result = run_objective(ObjectiveInputs(choice, model, tokenizer, data, config, run_dir, progress))
    return unsharded(result, method, cfg, config) if distributed.is_sharded(result.model) else result


def unsharded(
    result: TrainResult, method: FineTuneMethod, cfg: BaseModel, config: TrainConfig
) -> TrainResult:
    """An FSDP-trained result with, on rank 0, the same weights in an ordinary model.

    What rank 0 does next (save the weights, score the test split) runs in rank 0 alone, and a
    sharded model's forward would wait for the other ranks. Every rank helps gather the weights;
    rank 0 rebuilds the model as an artifact is rebuilt (`prepare(load_base(...))`) and loads
    them. Other ranks, which write nothing, keep their shards."""
    state = distributed.full_state(method.state_to_save(result.model, cfg))
    if not distributed.is_main_process():
        return result
    device = torch.device(result.device)  # next to rank 0's shards, 1/N of the weights
    model, _ = method.load_base(config.base_model, cfg, config)
    model = method.prepare(apply_load_levers(model, config.speed, device, weight_grads=False), cfg, None)
    method.load_state(model, state, cfg)
    return result.model_copy(update={"model": model.to(device).eval()})
