"""A training config checked once, at the edge: its method, the method's typed parameters and
the processes it runs on.

The CLI, `workflow.train_run` and the `fine_tuned_model` asset each make one `TrainingPlan`
from what the user gave (`plan_training`) before any data is loaded or any folder made; the
fine-tune stage (`launch.fine_tune_stage`, `stages.fine_tune`), the trainer and the run
record take the plan, so no later step parses `method_params` or checks the process count
again. A rank started by torchrun reads the config back from the run record, a new process
and so a new edge (`TrainingPlan.of`).

    plan = plan_training(TrainConfig(method="lora", method_params={"r": 8}), nproc=2)
    plan.choice.params.r, plan.method_params   # 8; every parameter after validation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel

from data_contracts.spec import DatasetSpec
from risk_app.errors import ConfigError
from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives.feedback import load_feedback
from risk_app.finetune.registry import MethodChoice, resolve_method

MAX_NPROC = 64


@dataclass(frozen=True)
class TrainingPlan:
    """What one fine-tuning run trains with, every part already checked."""

    config: TrainConfig
    choice: MethodChoice  # config.method resolved: its parameter method and objective, typed
    nproc: int = 1

    @classmethod
    def of(cls, config: TrainConfig, nproc: int = 1) -> TrainingPlan:
        """The plan of a config already checked once (read back from a run record)."""
        return cls(config, resolve_method(config.method, config.method_params), nproc)

    @property
    def method_config(self) -> BaseModel:
        """The parameters of `config.method`, its own Config (rlhf's names its policy method)."""
        return self.choice.params

    @property
    def method_params(self) -> dict[str, Any]:
        """The method's parameters after validation, every key (what records and MLflow keep)."""
        return self.method_config.model_dump(mode="json")

    @property
    def objective(self) -> str:
        return self.choice.objective


def plan_training(
    config: TrainConfig, nproc: int = 1, dataset: DatasetSpec | str | None = None
) -> TrainingPlan:
    """Parse the method's parameters and check the process count, once, before anything starts;
    a `ConfigError` names what is wrong. With the run's `dataset`, an `rlhf` run with too little
    feedback is refused here too, before a run folder or an MLflow run exists."""
    if not 1 <= nproc <= MAX_NPROC:
        raise ConfigError(f"nproc must be between 1 and {MAX_NPROC}, got {nproc}")
    plan = TrainingPlan.of(config, nproc)
    if dataset is not None and plan.objective == "rlhf":
        load_feedback(plan.method_config, dataset, config.seed)  # type: ignore[arg-type]  # RlhfParams
    if nproc > 1:
        if plan.objective != "supervised":
            # RLHF's PPO and the cached-feature head have no sharded loop: N copies would only repeat it.
            raise ConfigError(
                f"method {config.method!r} with these parameters trains with the {plan.objective!r} "
                "objective, which runs in one process; use nproc=1"
            )
        check_gpus(nproc, config.device)
    return plan


def check_gpus(nproc: int, device: str) -> None:
    """On CUDA each rank takes the GPU of its local rank: there must be one per rank."""
    if distributed.choose_backend(device) != "nccl":
        return
    if device.startswith("cuda:"):
        raise ConfigError(f"device {device!r} names one GPU; with nproc={nproc} use 'cuda' or 'auto'")
    if nproc > torch.cuda.device_count():
        raise ConfigError(
            f"nproc={nproc} needs one GPU per process; this machine has {torch.cuda.device_count()} "
            "(train on CPU with --set device=cpu)"
        )


__all__ = ["MAX_NPROC", "TrainingPlan", "check_gpus", "plan_training"]
