"""What every training objective is: one function of one `ObjectiveInputs`, returning `TrainResult`.

An objective trains a model that a parameter method has prepared (`MethodChoice.method`):
`supervised` (`supervised.py`), `frozen_features` (`frozen_features.py`) and `rlhf`
(`rlhf.py`). They share this one signature, the `Objective` protocol, and are looked up by
name in `OBJECTIVES` (`run_objective` takes the choice's objective).

Add one: a module here with a function that is an `Objective`, its name in
`risk_app.finetune.types.ObjectiveName`, and an entry in `OBJECTIVES` (module and function by
name: an objective's module is imported only when a run uses it, so fine-tuning with
`supervised` never loads `rlhf`'s feedback sources and the warehouse).

    inputs = ObjectiveInputs(resolve_method("lora", {"r": 4}), model, tokenizer, data, TrainConfig())
    result = run_objective(inputs)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.registry import MethodChoice
from risk_app.finetune.types import ObjectiveName, TrainData, TrainResult


@dataclass(frozen=True)
class ObjectiveInputs:
    """One training run handed to an objective: the resolved method, the model it prepared,
    the data, the run's config, where checkpoints go (None: nowhere) and whether to show progress."""

    choice: MethodChoice
    model: Any
    tokenizer: Any
    data: TrainData
    config: TrainConfig
    checkpoint_dir: Path | None = None
    progress: bool = True

    @property
    def method(self) -> FineTuneMethod:
        """The parameter method whose hooks (optimizer, regularizer, saved state) the loop calls."""
        return self.choice.method

    @property
    def method_cfg(self) -> BaseModel:
        return self.choice.method_cfg


class Objective(Protocol):
    """How a prepared model trains: one function per module of `risk_app.finetune.objectives`
    (`supervised_fit`, `rlhf_fit`, `frozen_features_fit`)."""

    def __call__(self, inputs: ObjectiveInputs, /) -> TrainResult: ...


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
    objective: Objective = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return objective


def run_objective(inputs: ObjectiveInputs) -> TrainResult:
    """Train the prepared model with the objective the method choice names."""
    return get_objective(inputs.choice.objective)(inputs)
