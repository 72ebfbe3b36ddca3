"""The trainer: owns one fine-tuning run from config to `TrainResult`.

Two independent choices make a run, as in LLaMA-Factory: the *method* (which parameters
train: full, freeze, lora, qlora, adapter, prompt, quantum; `risk_app.finetune.methods`) and
the *objective* (how they train: `supervised`, or `rlhf` = SFT -> reward model from analyst
feedback -> clipped PPO with KL; `risk_app.finetune.objectives`). `train_classifier`:

1. resolves the method from the registry and validates its parameters with its own `Config`;
2. checks the data, subsamples the train split when asked, seeds everything;
3. plans the run (`RunPlan`: steps per epoch and epochs) and hands it to `method.prepare`
   after `method.load_base` — the method object keeps nothing of the run;
4. runs the method's objective (`run_objective`), which returns the `TrainResult`.

Add an objective: a module `objectives/<name>.py` with a function that is an `Objective` (the
protocol below), its name in `types.ObjectiveName`, and one entry in `OBJECTIVES` (module and
function by name: an objective's module is imported only when a run uses it).

    from risk_app.finetune.trainer import train_classifier
    result = train_classifier(tr_texts, tr_y, va_texts, va_y, TrainConfig(epochs=2), "var/runs/x")
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from pydantic import BaseModel

from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.registry import get_method
from risk_app.finetune.run_setup import resolve_device, seed_everything, steps_per_epoch, subsample_train
from risk_app.finetune.speed import apply_load_levers
from risk_app.finetune.types import ObjectiveName, RunPlan, TrainData, TrainResult


class Objective(Protocol):
    """How a prepared model trains: one function per module of `risk_app.finetune.objectives`
    (`supervised_fit`, `rlhf_fit`, `frozen_features_fit`), called by `run_objective` alone."""

    def __call__(
        self,
        method: FineTuneMethod,
        model: Any,
        tokenizer: Any,
        data: TrainData,
        config: TrainConfig,
        cfg: BaseModel,
        checkpoint_dir: str | Path | None,
        /,
        *,
        progress: bool = True,
    ) -> TrainResult: ...


# Objective name -> "<module of risk_app.finetune.objectives>:<function>" that trains a prepared
# model with it. Imported by name on first use, as methods are (`registry.get_method`): a
# supervised run never imports `rlhf`, whose override-ledger feedback reads the warehouse
# (duckdb) — a GPU lease that fine-tunes carries torch and transformers, not the storage layer.
OBJECTIVES: dict[ObjectiveName, str] = {
    "supervised": "supervised:supervised_fit",
    "rlhf": "rlhf:rlhf_fit",
    "frozen_features": "frozen_features:frozen_features_fit",
}


def get_objective(name: ObjectiveName) -> Objective:
    """The function of objective `name`, its module imported now if it was not yet."""
    module, function = OBJECTIVES[name].split(":")
    objective: Objective = getattr(importlib.import_module(f"{__package__}.objectives.{module}"), function)
    return objective


def plan_run(n_train: int, config: TrainConfig) -> RunPlan:
    """What `prepare` may know about the coming run: optimizer steps per epoch, epochs."""
    return RunPlan(steps_per_epoch=steps_per_epoch(n_train, config), epochs=config.epochs)


def run_objective(
    method: FineTuneMethod,
    model: Any,
    tokenizer: Any,
    data: TrainData,
    config: TrainConfig,
    cfg: BaseModel,
    checkpoint_dir: str | Path | None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a model `method` has prepared, with the objective the method names for `cfg`."""
    objective = get_objective(method.objective_for(cfg))
    return objective(method, model, tokenizer, data, config, cfg, checkpoint_dir, progress=progress)


def train_classifier(
    train_texts: Sequence[str],
    train_labels: Sequence[int] | np.ndarray,
    val_texts: Sequence[str],
    val_labels: Sequence[int] | np.ndarray,
    config: TrainConfig,
    checkpoint_dir: str | Path | None,
    method: FineTuneMethod | None = None,
    progress: bool = True,
    dataset: str | None = None,
    method_config: BaseModel | None = None,
    exclude_fields: Sequence[str] = (),
) -> TrainResult:
    """Fine-tune `config.base_model` with `config.method` (or `method`) and return the result.

    `dataset` (a built-in name or a spec file) says which data set the texts come from, for an
    objective that reads more of it (rlhf's override ledger), and `exclude_fields` the fields its
    texts leave out (so that objective leaves them out too). `method_config`: the method's
    parameters already parsed (a run's `TrainingPlan` passes them); without it,
    `config.method_params` are parsed here, for direct callers."""
    if method is None:
        method = get_method(config.method)
    cfg = method_config if method_config is not None else method.parse_config(config.method_params)
    data = TrainData.build(train_texts, train_labels, val_texts, val_labels, dataset, exclude_fields)
    data = subsample_train(data, config.max_train_rows, config.seed)
    seed_everything(config.seed)
    plan = plan_run(len(data.train_texts), config)
    model, tokenizer = method.load_base(config.base_model, cfg, config)
    device = resolve_device(config.device)
    model = apply_load_levers(model, config.speed, device, weight_grads=method.name == "full")
    model = method.prepare(model, cfg, plan)
    result = run_objective(method, model, tokenizer, data, config, cfg, checkpoint_dir, progress=progress)
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
