"""The base class every fine-tuning method subclasses: the hooks the trainer calls.

A method decides *which parameters train*; the objective that trains them (the supervised loop,
or RLHF) and the run itself belong to the trainer (`risk_app.finetune.trainer`). A method
object holds no state of one run: what the run needs is passed in (`RunPlan`, the configs) and
what it produces comes back (the prepared model, a regularizer closure, `TrainResult`). Adding a
method means one module in this folder plus its name in `registry.BUILTIN_METHOD_MODULES`:

    @register
    class FreezeMethod(FineTuneMethod):
        name = "freeze"
        description = "Train the last N decoder layers."

        class Config(BaseModel):
            model_config = ConfigDict(extra="forbid")
            n_layers: int = Field(default=1, ge=1, description="Decoder layers to unfreeze.")

        def prepare(self, model, cfg, plan=None):
            ...freeze / unfreeze...
            return model

The hooks below have working defaults, so a method overrides only what it changes: `qlora`
overrides `load_base` and `make_optimizer` and reuses LoRA's `prepare`; `full` returns an EWC
`regularizer`. A method chooses parameters only; *how* they train is an objective
(`risk_app.finetune.objectives`: `rlhf` is one, over any of these methods, resolved by
`registry.resolve_method`). Called by the trainer, in order: `parse_config`, `load_base`, `prepare(model, cfg,
plan)`, then per run `regularizer(...)` once, `trainable_parameters`, `make_optimizer`,
`on_optimizer_step` after each step, and `state_to_save` / `load_state` for checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from risk_app.config_errors import validated
from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.run_setup import count_parameters
from risk_app.finetune.speed import optimizer_options
from risk_app.finetune.types import ObjectiveName, Regularizer, RunPlan, TrainData
from risk_app.models.loader import load_classifier

__all__ = ["HEAD_MODULE", "EmptyConfig", "FineTuneMethod", "count_parameters", "is_head_parameter"]

# Sub-module name of the classification head in every *ForSequenceClassification model
# transformers builds for decoder LLMs (Qwen2, Llama, Mistral ...).
HEAD_MODULE = "score"


class EmptyConfig(BaseModel):
    """Config for a method without parameters: still rejects unknown keys."""

    model_config = ConfigDict(extra="forbid")


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
    # Whether the prepared model reads each application from its own tokens through the
    # `score` head, so several can share a packed row (`SpeedConfig.packing`): not when virtual
    # tokens are prepended (prompt tuning) or a head of its own pools the hidden states.
    supports_packing: ClassVar[bool] = True

    def objective_for(self, cfg: BaseModel) -> ObjectiveName:
        """The objective that trains this method's parameters when the run names the method
        itself: `supervised`, unless the config leaves nothing for it (`freeze` with no decoder
        layer trains the head on cached features)."""
        return "supervised"

    # ---- configuration -------------------------------------------------------------------
    def parse_config(self, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Validate raw parameters with `Config`; errors list the allowed keys."""
        if isinstance(params, self.Config):
            return params
        if isinstance(params, BaseModel):
            params = params.model_dump()
        return validated(self.Config, params or {}, f"method {self.name!r} parameters")

    # ---- model ---------------------------------------------------------------------------
    def load_base(
        self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None
    ) -> tuple[Any, Any]:
        """Load the base classifier and tokenizer (quantized methods override this)."""
        return load_classifier(base_model, num_labels=2)

    @abstractmethod
    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        """Choose which parameters train (set requires_grad, wrap with adapters) and return the model.

        `plan` describes the coming training run; None when a saved model is rebuilt for
        inference, so `prepare` must build the same structure either way.
        """

    def for_inference(self, model: Any, cfg: BaseModel) -> Any:
        """The model to predict with once it will not train again (a loaded artifact).

        Default: as it is. A method whose trained parts fold into the base weights (LoRA)
        returns the folded model, which gives the same scores for fewer operations a token."""
        return model

    # ---- training hooks (the trainer calls them; they keep nothing on `self`) -------------
    def regularizer(
        self, model: Any, tokenizer: Any, data: TrainData, train_cfg: TrainConfig, cfg: BaseModel
    ) -> Regularizer | None:
        """An extra loss term for this run, or None. Called once, with the model already on
        the training device and before the first step; whatever it measures (EWC's Fisher and
        starting weights) lives in the returned closure."""
        return None

    def on_optimizer_step(self, model: Any, global_step: int) -> None:
        """Called after every optimizer step, before gradients are cleared (AdaLoRA reallocates ranks)."""
        return None

    def make_optimizer(
        self, param_groups: list[dict[str, Any]], train_cfg: TrainConfig, cfg: BaseModel
    ) -> torch.optim.Optimizer:
        """The optimizer over `param_groups` (torch AdamW; `qlora` may use paged 8-bit AdamW)."""
        params = [p for group in param_groups for p in group["params"]]
        return torch.optim.AdamW(
            param_groups, lr=train_cfg.learning_rate, **optimizer_options(train_cfg.speed, params)
        )

    def trainable_parameters(self, model: Any) -> list[tuple[str, torch.nn.Parameter]]:
        """Parameters the optimizer updates."""
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    # ---- persistence ---------------------------------------------------------------------
    def state_to_save(self, model: Any, cfg: BaseModel | None = None) -> dict[str, torch.Tensor]:
        """Tensors that, loaded into `prepare(load_base(...))`, reproduce the trained model.

        Default: every trainable parameter plus the classification head. Buffers are skipped
        because `prepare` rebuilds them. `cfg` is the method's config, for methods whose saved
        state depends on it.
        """
        state: dict[str, torch.Tensor] = {}
        for name, param in model.named_parameters():
            if param.requires_grad or is_head_parameter(name):
                state[name] = param.detach()
        if not state:
            raise ConfigError(f"method {self.name!r}: model has no trainable parameters to save")
        return state

    def load_state(self, model: Any, state: Mapping[str, torch.Tensor], cfg: BaseModel | None = None) -> None:
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
