"""The consortium's configuration: one typed record the server and every lender agree on.

`FederatedConfig` says how the consortium trains (rounds, the fraction of lenders asked per
round, local epochs, the minimum number of lenders a round needs, FedAvg or FedProx), which
product training config each lender runs (`train`: method, base model, learning rate ...), and
the privacy options (`secure_aggregation`: Flower's SecAgg+; `privacy`: central differential
privacy with client-side clipping; `record_privacy`: DP-SGD inside each lender). It is parsed
once at the edge (`FederatedConfig.from_dict`), unknown keys refused with the allowed ones listed.

`Partition` is how a simulation cuts one data set into lenders: by a spec column
(`"purpose"`) or by a Dirichlet label skew (`"dirichlet:0.5"`).

    cfg = FederatedConfig.from_dict({"rounds": 3, "strategy": "fedprox", "proximal_mu": 0.01})
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.config_errors import validated
from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig

StrategyName = Literal["fedavg", "fedprox"]


class SecureAggregationConfig(BaseModel):
    """Flower's SecAgg+ (`SecAggPlusWorkflow` + `secaggplus_mod`): the server sees only the sum."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Aggregate with SecAgg+ instead of in the clear.")
    num_shares: float = Field(
        default=1.0,
        gt=0,
        description="Shares of each lender's key: a count (> 1) or a fraction (<= 1) of the lenders sampled.",
    )
    reconstruction_threshold: float = Field(
        default=0.67,
        gt=0,
        description="Shares needed to rebuild a dropped lender's mask: a count (> 1) or a fraction (<= 1).",
    )
    clipping_range: float = Field(
        default=8.0,
        gt=0,
        description="Every trainable value is clipped to [-range, range] before quantizing.",
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="How long each SecAgg+ stage waits for replies (None: for all)."
    )


class PrivacyConfig(BaseModel):
    """Central differential privacy at the lender level (Flower's client-side fixed clipping).

    Each lender clips its update (new weights minus the round's global weights) to L2 norm
    `clipping_norm` (`fixedclipping_mod`); the server adds Gaussian noise of standard deviation
    `noise_multiplier * clipping_norm / lenders sampled` to the average
    (`DifferentialPrivacyClientSideFixedClipping`). The spent ε at `delta` is counted by opacus'
    RDP accountant, one Gaussian release per round with the round's sampling rate.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Clip each lender's update and noise the average.")
    clipping_norm: float = Field(default=1.0, gt=0, description="L2 bound on one lender's update per round.")
    noise_multiplier: float = Field(
        default=1.0, ge=0, description="Noise standard deviation in units of the clipping norm."
    )
    delta: float = Field(default=1e-5, gt=0, lt=1, description="δ at which the spent ε is reported.")
    max_epsilon: float | None = Field(
        default=None, gt=0, description="Refuse a configuration whose planned rounds would spend more ε."
    )


class RecordPrivacyConfig(BaseModel):
    """Record-level differential privacy inside each lender: DP-SGD with Opacus (`dpsgd.py`).

    Each lender trains the head on frozen features with Poisson-sampled batches, every
    example's gradient clipped to `max_grad_norm` and Gaussian noise of
    `noise_multiplier * max_grad_norm` on each batch's sum; its ε at `delta` is counted by
    Opacus' RDP accountant over all its steps in all rounds. For the linear head on frozen
    features (method freeze, n_trainable_layers 0) only.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Train each lender's update with DP-SGD.")
    noise_multiplier: float = Field(
        default=1.0, gt=0, description="Noise standard deviation in units of max_grad_norm, per step."
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="L2 bound on one example's gradient.")
    delta: float = Field(default=1e-5, gt=0, lt=1, description="δ at which each lender's ε is reported.")
    max_epsilon: float | None = Field(
        default=None, gt=0, description="A lender whose planned rounds would spend more ε refuses at join."
    )
    statistics_noise_multiplier: float = Field(
        default=4.0,
        gt=0,
        description="Standardised head: noise of each statistics release (the feature mean, the spread) in "
        "units of its sensitivity; both releases count in the lender's ε.",
    )
    statistics_clip_mean: float = Field(
        default=8.0,
        gt=0,
        description="Standardised head: L2 bound on one row's features in the mean's release (tiny-qwen2's "
        "final RMSNorm puts every row at norm 7.99).",
    )
    statistics_clip_spread: float = Field(
        default=1.5,
        gt=0,
        description="Standardised head: L2 bound on one row's deviation from the mean in the spread's "
        "release.",
    )


class FederatedConfig(BaseModel):
    """How a consortium of lenders fine-tunes one model."""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(default=3, ge=1, le=1000, description="Federated rounds (one aggregation each).")
    fraction_fit: float = Field(
        default=1.0, gt=0, le=1.0, description="Fraction of the admitted lenders asked to train each round."
    )
    local_epochs: int = Field(default=1, ge=1, le=100, description="Epochs each lender trains per round.")
    min_lenders: int = Field(
        default=2,
        ge=1,
        description="Fewest lenders whose updates make a round; with fewer the round is skipped, said so.",
    )
    strategy: StrategyName = Field(default="fedavg", description="Aggregation: fedavg or fedprox.")
    round_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="The learning rate across rounds: train.learning_rate every round, or "
        "train.learning_rate * (1 + cos(pi * (round - 1) / rounds)) / 2, so late rounds take small "
        "steps (FedAvg with a fixed step on non-IID lenders stalls short of the pooled optimum).",
    )
    proximal_mu: float = Field(
        default=0.01, ge=0, description="FedProx only: weight of the proximal term mu/2 ||w - w_global||^2."
    )
    train: TrainConfig = Field(
        default_factory=TrainConfig,
        description="The product training config every lender runs (method, base model, lr ...); "
        "`epochs` is replaced by local_epochs.",
    )
    secure_aggregation: SecureAggregationConfig = Field(
        default_factory=SecureAggregationConfig, description="SecAgg+ options."
    )
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Differential privacy options.")
    record_privacy: RecordPrivacyConfig = Field(
        default_factory=RecordPrivacyConfig, description="Record-level DP-SGD inside each lender."
    )
    round_timeout_seconds: float | None = Field(
        default=None, gt=0, description="How long a round waits for lenders' replies (None: for all)."
    )
    seed: int = Field(default=42, ge=0, description="Seed of the initial weights and of lender sampling.")

    @model_validator(mode="after")
    def _one_kind_of_privacy(self) -> FederatedConfig:
        if self.privacy.enabled and self.record_privacy.enabled:
            raise ValueError(
                "privacy (lender-level, noise added by the server) and record_privacy (DP-SGD inside each "
                "lender) are two ways to the same end; enable one"
            )
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FederatedConfig:
        """Build from a plain dict, pydantic errors turned into one ConfigError line."""
        return validated(cls, values, "federated config")

    def lender_train_config(self, server_round: int) -> TrainConfig:
        """The product training config a lender runs in `server_round`: local epochs, a per-round seed,
        the round's learning rate, no early stopping inside the round (the consortium, not the
        lender, decides when to stop)."""
        return self.train.model_copy(
            update={
                "epochs": self.local_epochs,
                "seed": self.train.seed + server_round,
                "patience": 0,
                "learning_rate": self.round_learning_rate(server_round),
            }  # fmt: skip
        )

    def round_learning_rate(self, server_round: int) -> float:
        """The peak learning rate of `server_round` (1-based) under `round_schedule`."""
        if self.round_schedule == "constant":
            return self.train.learning_rate
        done = min(max(server_round - 1, 0), self.rounds) / self.rounds
        return self.train.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))


class Partition(BaseModel):
    """How one data set is cut into virtual lenders: by a spec column, or by Dirichlet label skew."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["column", "dirichlet"]
    column: str | None = None
    alpha: float | None = None

    @classmethod
    def parse(cls, text: str) -> Partition:
        """`COLUMN` or `dirichlet:ALPHA` (ALPHA > 0; smaller is more skewed)."""
        text = text.strip()
        if text.startswith("dirichlet:"):
            raw = text.split(":", 1)[1]
            try:
                alpha = float(raw)
            except ValueError:
                raise ConfigError(f"--partition-by {text!r}: ALPHA {raw!r} is not a number") from None
            if not alpha > 0:
                raise ConfigError(f"--partition-by {text!r}: ALPHA must be > 0 (smaller = more label skew)")
            return cls(kind="dirichlet", alpha=alpha)
        if not text:
            raise ConfigError("--partition-by is empty; give a spec column or dirichlet:ALPHA")
        return cls(kind="column", column=text)

    def describe(self) -> str:
        return f"dirichlet:{self.alpha:g}" if self.kind == "dirichlet" else f"column {self.column}"
