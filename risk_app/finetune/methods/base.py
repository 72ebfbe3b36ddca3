"""The base class every fine-tuning method subclasses.

A method decides *which parameters train* (`prepare`) and, optionally, *how they train*
(`fit`, by default the supervised trainer). Adding a method means one module in this folder:

    @register
    class FreezeMethod(FineTuneMethod):
        name = "freeze"
        description = "Train the last N decoder layers."

        class Config(BaseModel):
            model_config = ConfigDict(extra="forbid")
            n_layers: int = Field(default=1, ge=1, description="Decoder layers to unfreeze.")

        def prepare(self, model, cfg):
            ...freeze / unfreeze...
            return model

plus one import line in `methods/__init__.py`. The hooks below have working defaults so a
method overrides only what it changes: `qlora` overrides `load_base` and reuses LoRA's
`prepare`; an objective such as `rlhf` overrides `fit` and delegates parameter choice to a
parameter method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig, format_validation_error

if TYPE_CHECKING:
    from risk_app.finetune.types import TrainData, TrainResult

# Sub-module name of the classification head in every *ForSequenceClassification model
# transformers builds for decoder LLMs (Qwen2, Llama, Mistral ...).
HEAD_MODULE = "score"


class EmptyConfig(BaseModel):
    """Config for a method without parameters: still rejects unknown keys."""

    model_config = ConfigDict(extra="forbid")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts.

    bitsandbytes 4-bit weights pack two values per byte, so their `numel` is half the real
    count; we undo that so QLoRA's totals compare with the other methods'.
    """
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if param.__class__.__name__ == "Params4bit":
            itemsize = getattr(getattr(param, "quant_storage", None), "itemsize", 1) or 1
            n = n * 2 * itemsize
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def is_head_parameter(name: str) -> bool:
    """True for parameters of the classification head, whether plain or wrapped by peft."""
    parts = name.split(".")
    return HEAD_MODULE in parts


class FineTuneMethod(ABC):
    """One way of fine-tuning a base LLM into a default-probability classifier."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = EmptyConfig
    # For the registry-driven test suite (tests/finetune/test_method_suite.py): quick method
    # parameters for a CPU run on `tiny-qwen2` (e.g. fewer virtual tokens), and a reason to
    # skip the suite where the method cannot run there (e.g. it needs CUDA). Not used at run time.
    suite_params: ClassVar[dict[str, Any]] = {}
    suite_skip_reason: ClassVar[str | None] = None

    def __init__(self) -> None:
        # Optimizer steps of the coming run. The trainer sets it before `prepare`, for methods
        # whose structure or schedule depends on it (AdaLoRA's rank budget). None when loading
        # a saved model for inference.
        self.total_steps: int | None = None

    # ---- configuration -------------------------------------------------------------------
    def parse_config(self, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Validate raw parameters with `Config`; errors list the allowed keys."""
        if isinstance(params, self.Config):
            return params
        if isinstance(params, BaseModel):
            params = params.model_dump()
        try:
            return self.Config.model_validate(dict(params or {}))
        except ValidationError as exc:
            raise ConfigError(
                f"method {self.name!r} parameters: {format_validation_error(exc, self.Config)}"
            ) from exc

    # ---- model ---------------------------------------------------------------------------
    def load_base(
        self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None
    ) -> tuple[Any, Any]:
        """Load the base classifier and tokenizer (quantized methods override this)."""
        from risk_app.models.loader import load_classifier

        return load_classifier(base_model, num_labels=2)

    @abstractmethod
    def prepare(self, model: Any, cfg: BaseModel) -> Any:
        """Choose which parameters train (set requires_grad, wrap with adapters) and return the model."""

    # ---- training ------------------------------------------------------------------------
    def fit(
        self,
        model: Any,
        tokenizer: Any,
        data: TrainData,
        train_cfg: TrainConfig,
        cfg: BaseModel,
        checkpoint_dir: str | Path | None,
        *,
        progress: bool = True,
    ) -> TrainResult:
        """Train the prepared model. Default: the supervised, class-weighted loop."""
        from risk_app.finetune.trainer import supervised_fit

        return supervised_fit(self, model, tokenizer, data, train_cfg, cfg, checkpoint_dir, progress=progress)

    def regularization_loss(self, model: Any) -> torch.Tensor | None:
        """Extra loss added to each training batch (AdaLoRA's orthogonality term); None = none."""
        return None

    def on_optimizer_step(self, model: Any, global_step: int) -> None:
        """Called after every optimizer step (AdaLoRA reallocates ranks here)."""
        return None

    def make_optimizer(
        self, param_groups: list[dict[str, Any]], train_cfg: TrainConfig
    ) -> torch.optim.Optimizer:
        """The optimizer over `param_groups` (torch AdamW; `qlora` uses paged 8-bit AdamW on CUDA)."""
        return torch.optim.AdamW(param_groups, lr=train_cfg.learning_rate)

    def trainable_parameters(self, model: Any) -> list[tuple[str, torch.nn.Parameter]]:
        """Parameters the optimizer updates."""
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    # ---- persistence ---------------------------------------------------------------------
    def state_to_save(self, model: Any) -> dict[str, torch.Tensor]:
        """Tensors that, loaded into `prepare(load_base(...))`, reproduce the trained model.

        Default: every trainable parameter plus the classification head. Buffers are skipped
        because `prepare` rebuilds them.
        """
        state: dict[str, torch.Tensor] = {}
        for name, param in model.named_parameters():
            if param.requires_grad or is_head_parameter(name):
                state[name] = param.detach()
        if not state:
            raise ConfigError(f"method {self.name!r}: model has no trainable parameters to save")
        return state

    def load_state(self, model: Any, state: Mapping[str, torch.Tensor]) -> None:
        """Copy saved tensors into a prepared model; every saved name must exist with its shape."""
        params = dict(model.named_parameters())
        unknown = [k for k in state if k not in params]
        if unknown:
            raise ConfigError(
                f"method {self.name!r}: saved weights do not fit the prepared model; "
                f"{len(unknown)} unknown tensor(s), e.g. {unknown[0]!r}"
            )
        with torch.no_grad():
            for key, value in state.items():
                target = params[key]
                if tuple(target.shape) != tuple(value.shape):
                    raise ConfigError(
                        f"method {self.name!r}: tensor {key!r} has shape {tuple(value.shape)} in the "
                        f"saved weights but {tuple(target.shape)} in the model"
                    )
                target.copy_(value.to(device=target.device, dtype=target.dtype))
