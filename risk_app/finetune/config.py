"""Training configuration shared by every fine-tuning method.

`TrainConfig` holds what the supervised loop needs (epochs, learning rate, batch size ...) plus
the method's name and its raw parameters. The method's own `Config` class validates
`method_params`; this class validates everything else. How scores become decisions
(calibration, cut-off, decline cap) is the credit policy's business, not training's:
see `risk_app.policy.credit.PolicyConfig`. Defaults are tuned so that LoRA on the
embedded `tiny-qwen2` model learns something in a few CPU seconds; a real base model usually
wants a smaller learning rate (2e-4 is the usual LoRA choice).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.config_errors import validated
from risk_app.finetune.defaults import DEFAULT_BASE_MODEL, DEFAULT_EPOCHS, DEFAULT_METHOD
from risk_app.finetune.speed import SpeedConfig

Precision = Literal["auto", "fp32", "bf16", "fp16"]
_LEGACY_POLICY_KEYS = ("calibration", "threshold_objective", "max_decline_rate")


class TrainConfig(BaseModel):
    """Everything the trainer needs, apart from the data and the method's own parameters."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(
        default=DEFAULT_METHOD, description="Registered fine-tuning method name (see list_methods)."
    )
    method_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters for the method, checked by the method's own Config."
    )
    base_model: str = Field(
        default=DEFAULT_BASE_MODEL,
        description="Base model: 'tiny-qwen2', a hub id, a local folder, or a .gguf file.",
    )
    epochs: int = Field(
        default=DEFAULT_EPOCHS, ge=1, le=1000, description="Maximum number of passes over the train set."
    )
    learning_rate: float = Field(
        default=1e-3, gt=0, le=1.0, description="Peak AdamW learning rate (after warmup)."
    )
    batch_size: int = Field(default=16, ge=1, le=4096, description="Training examples per forward pass.")
    eval_batch_size: int = Field(default=64, ge=1, le=8192, description="Examples per batch at validation.")
    max_length: int = Field(
        default=256, ge=8, le=32768, description="Token limit per text; longer texts are truncated."
    )
    warmup_ratio: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Fraction of optimizer steps spent warming up the LR."
    )
    weight_decay: float = Field(
        default=0.01, ge=0.0, le=1.0, description="AdamW weight decay on weight matrices (not biases/norms)."
    )
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient clipping threshold (L2 norm).")
    patience: int = Field(
        default=2,
        ge=0,
        description="Stop after this many epochs without a better validation AUC; 0 disables early stopping.",
    )
    class_weighting: bool = Field(
        default=True, description="Weight the loss inversely to class frequency in the train set."
    )
    label_smoothing: float = Field(
        default=0.0, ge=0.0, lt=0.5, description="Cross-entropy label smoothing (0 = none)."
    )
    seed: int = Field(default=42, ge=0, description="Seed for torch, numpy, random and data order.")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=1024, description="Batches whose gradients are summed per optimizer step."
    )
    device: str = Field(
        default="auto", description="'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."
    )
    precision: Precision = Field(
        default="auto",
        description="'auto' = bf16 autocast on CUDA when supported, else fp32; fp16 needs CUDA.",
    )
    max_train_rows: int | None = Field(
        default=None, ge=2, description="Train on a seeded random subset of this many rows (quick runs)."
    )
    speed: SpeedConfig = Field(
        default_factory=SpeedConfig,
        description="Speed levers of the loop (token-budget batches, bf16 frozen weights, fused kernels).",
    )

    @classmethod
    def from_artifact(cls, values: dict[str, Any]) -> TrainConfig:
        """Read an artifact's train_config, including those saved before the credit policy
        (calibration, cut-off objective, decline cap) moved out of TrainConfig."""
        return cls.model_validate({k: v for k, v in values.items() if k not in _LEGACY_POLICY_KEYS})

    @model_validator(mode="after")
    def _check_device(self) -> TrainConfig:
        device = self.device
        if device not in ("auto", "cpu", "cuda") and not (
            device.startswith("cuda:") and device[5:].isdigit()
        ):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict, turning pydantic errors into one clear ConfigError."""
        return validated(cls, values, "training config")
