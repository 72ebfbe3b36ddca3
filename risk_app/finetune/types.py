"""Plain data passed between the trainer, the objectives and the fine-tuning methods.

`TrainData` is the input of a training run (texts and 0/1 labels, already split), `RunPlan`
what the trainer tells a method about the coming run, `Regularizer` the per-run loss term a
method may hand back, and `TrainResult` what every objective returns (its measurements,
`TrainingNumbers`, are what the run record keeps). They live at the bottom
of `risk_app.finetune` so every layer can import them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from risk_app.errors import RiskAppError

# The objectives the trainer can run over a method's parameters (`objectives/<name>.py`).
ObjectiveName = Literal["supervised", "rlhf", "frozen_features"]

# A per-run extra loss term: called on the model after every training forward pass and added
# to the classification loss (EWC's penalty, AdaLoRA's orthogonality term). None = no term.
Regularizer = Callable[[Any], torch.Tensor | None]


class TrainingDataError(RiskAppError):
    """Training data that cannot train a classifier (mismatched lengths, one class, bad labels)."""


@dataclass(frozen=True)
class TrainData:
    """Serialized applications and their labels (1 = default / bad, 0 = good)."""

    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    # The data set the texts come from (a built-in name or a spec file), when the caller knows
    # it: an objective that reads more of it (rlhf: the data set's override ledger) needs it.
    dataset: str | None = None
    # Fields the texts leave out (the run's `exclude_fields`): text an objective builds from the
    # data set itself (rlhf's override pairs) must leave them out too.
    exclude_fields: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        train_texts: Sequence[str],
        train_labels: Sequence[int] | np.ndarray,
        val_texts: Sequence[str],
        val_labels: Sequence[int] | np.ndarray,
        dataset: str | None = None,
        exclude_fields: Sequence[str] = (),
    ) -> TrainData:
        """Check and normalise the four inputs; every problem names the split and row."""
        parts = {}
        for split, texts, labels in (
            ("train", train_texts, train_labels),
            ("validation", val_texts, val_labels),
        ):
            texts = [str(t) if not isinstance(t, str) else t for t in texts]
            labels_arr = np.asarray(labels)
            if len(texts) != len(labels_arr):
                raise TrainingDataError(
                    f"{split} split: {len(texts)} texts but {len(labels_arr)} labels; they must match"
                )
            if len(texts) == 0:
                raise TrainingDataError(f"{split} split is empty")
            bad = np.flatnonzero(~np.isin(labels_arr, [0, 1]))
            if bad.size:
                raise TrainingDataError(
                    f"{split} split row {int(bad[0])}: label {labels_arr[bad[0]].item()!r} "
                    "is not 0 (good) or 1 (bad)"
                )
            empty = [i for i, t in enumerate(texts) if not t.strip()]
            if empty:
                raise TrainingDataError(f"{split} split row {empty[0]}: text is empty")
            if len(np.unique(labels_arr)) < 2:
                raise TrainingDataError(
                    f"{split} split has only label {int(labels_arr[0])}; both good (0) and bad (1) are "
                    "needed to train and to compute AUC"
                )
            parts[split] = (texts, labels_arr.astype(np.int64))
        (train_texts, train_y), (val_texts, val_y) = parts["train"], parts["validation"]
        return cls(train_texts, train_y, val_texts, val_y, dataset, tuple(exclude_fields))


@dataclass(frozen=True)
class RunPlan:
    """What the trainer knows about the coming run before it prepares the model.

    Passed to `FineTuneMethod.prepare(model, cfg, plan)` during training and None when a
    saved model is rebuilt for inference. AdaLoRA sizes its rank schedule from `total_steps`.
    """

    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


class PpoGuardVerdict(BaseModel):
    """Which policy an `rlhf` run kept and why (`objectives.rlhf_guard`): PPO's; or the supervised
    one PPO started from, because the reward showed no evidence of ranking held-out (validation) outcomes
    (PPO did not run) or because PPO lowered validation AUC by more than `max_drop`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kept: Literal["ppo", "supervised"]
    reason: Literal["ppo_within_tolerance", "ppo_lowered_validation", "reward_without_evidence"]
    supervised_val_auc: float
    supervised_epoch: int
    ppo_val_auc: float | None = None  # None: PPO did not run
    max_drop: float
    reward_rank_auc: float
    reward_rank_p_value: float
    max_reward_p_value: float
    feedback: str = ""  # where the reward model's pairs came from (`objectives.feedback`)

    def sentence(self) -> str:
        """Plain sentences for the card, the CLI summary and the run's metadata."""
        said = self._verdict()
        return f"{said} Feedback: {self.feedback}." if self.feedback else said

    def _verdict(self) -> str:
        evidence = f"AUC {self.reward_rank_auc:.3f}, one-sided p {self.reward_rank_p_value:.2g}"
        if self.reason == "reward_without_evidence":
            return (
                f"PPO not run: the reward model's preferences rank the validation applications' "
                f"outcomes no better than chance beyond what the supervised policy ranks ({evidence}, "
                f"more than {self.max_reward_p_value:g}); "
                f"the supervised policy (validation AUC {self.supervised_val_auc:.4f}, epoch "
                f"{self.supervised_epoch}) is kept."
            )
        if self.reason == "ppo_lowered_validation":
            return (
                f"PPO discarded: it lowered validation AUC from {self.supervised_val_auc:.4f} (supervised, "
                f"epoch {self.supervised_epoch}) to {self.ppo_val_auc:.4f}, more than the allowed "
                f"{self.max_drop:g}; the supervised policy's weights are the ones saved and evaluated."
            )
        return (
            f"PPO kept: validation AUC {self.ppo_val_auc:.4f} after PPO against "
            f"{self.supervised_val_auc:.4f} for the supervised policy it started from; its reward ranks "
            f"the validation outcomes beyond that policy ({evidence})."
        )


class TrainingNumbers(BaseModel):
    """What training measured: the trainer's `TrainResult` and the run record's `TrainingFacts`
    (`risk_app.run.record`) both are these, declared once here."""

    model_config = ConfigDict(extra="forbid")

    best_epoch: int = Field(description="The epoch whose weights were kept (best validation AUC).")
    best_val_auc: float = Field(description="Validation ROC AUC of the kept epoch.")
    stopped_early: bool = Field(default=False, description="Whether early stopping ended training.")
    trainable_params: int = Field(description="Parameters the optimizer updated.")
    total_params: int = Field(description="All parameters of the model.")
    trainable_percent: float = Field(description="100 * trainable_params / total_params.")
    wall_seconds: float = Field(description="Wall-clock seconds of training.")
    peak_memory_mb: float = Field(description="Peak accelerator memory (0 on CPU).")
    tokens_per_second: float = Field(description="Training tokens per second (all processes).")
    device: str = Field(description="Where the model trained (cpu, cuda:0, ...).")
    # Names of the parameters the optimizer updated, so the artifact records exactly what
    # trained (freeze picks them by layer and sub-module).
    trainable_parameter_names: list[str] = Field(default_factory=list)
    ppo_guard: PpoGuardVerdict | None = Field(
        default=None,
        description="rlhf only: whether the PPO policy or the supervised one it started from was kept "
        "(PPO is discarded when it lowers validation AUC by more than the method's max_val_auc_drop).",
    )

    def numbers(self) -> dict[str, Any]:
        """These fields (objects kept as they are), to build another `TrainingNumbers` from."""
        return {name: getattr(self, name) for name in TrainingNumbers.model_fields}


class TrainResult(TrainingNumbers):
    """The trained model plus what happened while training it."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: Any
    tokenizer: Any
    history: list[dict[str, Any]]
    method_name: str = ""
    method_config: dict[str, Any] = Field(default_factory=dict)
    # P(default) on the validation texts from the best epoch, for threshold choice without
    # another forward pass.
    best_val_proba: np.ndarray | None = None
