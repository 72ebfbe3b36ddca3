"""The consortium's feature statistics: two Flower rounds before training, for the standardised head.

The `standardised` head on frozen features (`risk_app.finetune.standardised_head`) needs the mean
and scale of every feature over the consortium's training rows, which no one holds. Before round
1 the server runs two statistics rounds through Flower, each a FedAvg round (Flower's own
`FedAvg.aggregate_fit`, a mean weighted by each lender's row count; under SecAgg+ Flower's
`SecAggPlusWorkflow`, so the server only ever sees the weighted sum) inside the consortium's
guard (join-aware sampling of every admitted lender, update checks, the minimum of lenders):

1. `feature_mean`: each lender sends the mean of its training rows' features (64 values for
   tiny-qwen2); the weighted average is the consortium's mean;
2. `feature_spread`: with that mean in the instructions, each lender sends the mean of its rows'
   squared deviations from it; the weighted average is the consortium's variance (two rounds,
   not E[x²] − mean², which would cancel catastrophically on features whose offset is 100 times
   their spread).

The result (`ConsortiumStandardisation`) travels to the lenders in every later fit and evaluate
instruction (two float64 vectors, as bytes), is kept in the server's checkpoint and outcome, and
is written into the packaged model's head (`score.mean`, `score.scale`).

What the statistics reveal: without record-level DP, each lender's per-feature mean and mean
squared deviation to whoever sees its update (the server without SecAgg+; only their weighted
sums with it). With record-level DP (`record_privacy`), each lender releases them as Gaussian
mechanisms instead (`lender_moment`): rows clipped to `statistics_clip_mean` for the mean,
deviations clipped to `statistics_clip_spread` and reduced to one scalar (the mean squared
deviation over all features, so one scale for every feature: per-feature variances would drown
in the noise), each with noise `statistics_noise_multiplier` times its sensitivity on the sum;
the two releases are composed with the lender's DP-SGD steps in its ε (`dpsgd.lender_epsilon`).
The row count is not covered, as for every round (dpsgd.py).

    moment = lender_moment(features, PHASE_SPREAD, mean)             # a lender's answer
    ConsortiumStandardisation.from_instructions(fit_config)          # what a round's instruction carries
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.common import Scalar

from risk_app.errors import RiskAppError
from risk_app.federated.config import FederatedConfig, RecordPrivacyConfig
from risk_app.federated.dpsgd import STATISTICS_RELEASES
from risk_app.federated.tensors import WIRE_DTYPE
from risk_app.finetune.registry import get_method

# Instruction keys: which statistic a round asks for, and the consortium's standardisation.
KEY_PHASE = "statistics_phase"
PHASE_MEAN = "feature_mean"
PHASE_SPREAD = "feature_spread"
KEY_MEAN = "standardisation_mean"
KEY_SCALE = "standardisation_scale"
# The statistics rounds' numbers in the round counter (before round 1).
STATISTICS_ROUNDS = {PHASE_MEAN: -1, PHASE_SPREAD: 0}


def encode_vector(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def decode_vector(raw: Any, what: str) -> np.ndarray:
    if not isinstance(raw, bytes) or len(raw) % 8:
        raise RiskAppError(f"the instruction's {what} is not a float64 vector")
    return np.frombuffer(raw, dtype="<f8").copy()


@dataclass(frozen=True)
class ConsortiumStandardisation:
    """Per-feature mean and scale over the consortium's training rows, as the statistics rounds gave."""

    mean: np.ndarray
    scale: np.ndarray

    def instructions(self) -> dict[str, Scalar]:
        return {KEY_MEAN: encode_vector(self.mean), KEY_SCALE: encode_vector(self.scale)}

    @classmethod
    def from_instructions(cls, config: dict[str, Any]) -> ConsortiumStandardisation | None:
        if KEY_MEAN not in config:
            return None
        return cls(decode_vector(config[KEY_MEAN], "mean"), decode_vector(config[KEY_SCALE], "scale"))

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, values: dict[str, list[float]] | None) -> ConsortiumStandardisation | None:
        if values is None:
            return None
        return cls(
            np.asarray(values["mean"], dtype=np.float64), np.asarray(values["scale"], dtype=np.float64)
        )


def _clip_rows(rows: np.ndarray, bound: float) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows * np.minimum(1.0, bound / np.maximum(norms, 1e-12))


def lender_moment(
    features: np.ndarray, phase: str, mean: np.ndarray | None, privacy: RecordPrivacyConfig | None = None
) -> np.ndarray:
    """What a lender sends in a statistics round: its rows' mean, or mean squared deviation from
    `mean` (per feature; under record-level DP a Gaussian release, one scalar spread for all)."""
    x = np.asarray(features, dtype=np.float64)
    n, dim = x.shape
    private = privacy is not None and privacy.enabled
    # Noise from the operating system's CSPRNG, never from the run's (shared) seed.
    noise = np.random.default_rng(secrets.randbits(63)) if private else None
    if phase == PHASE_MEAN:
        if noise is None:
            return x.mean(axis=0).astype(WIRE_DTYPE)
        assert privacy is not None
        bound = privacy.statistics_clip_mean
        total = _clip_rows(x, bound).sum(axis=0) + noise.normal(
            0.0, privacy.statistics_noise_multiplier * bound, dim
        )
        return (total / n).astype(WIRE_DTYPE)
    if phase != PHASE_SPREAD or mean is None or mean.shape != (dim,):
        raise RiskAppError(
            f"statistics round {phase!r}: unknown phase, or no mean of {dim} features to centre on"
        )
    deviations = x - mean
    if noise is None:
        return (deviations**2).mean(axis=0).astype(WIRE_DTYPE)
    assert privacy is not None
    bound = privacy.statistics_clip_spread
    squares = float((_clip_rows(deviations, bound) ** 2).sum())  # one row moves it by at most bound²
    total = squares + float(noise.normal(0.0, privacy.statistics_noise_multiplier * bound**2))
    return np.full(dim, max(total, 0.0) / (n * dim), dtype=WIRE_DTYPE)


def statistics_releases(config: FederatedConfig) -> int:
    """Gaussian releases of the statistics rounds a lender makes (0 without the standardised head)."""
    return STATISTICS_RELEASES if uses_standardised_head(config) else 0


def uses_standardised_head(config: FederatedConfig) -> bool:
    """Whether the consortium trains the standardised head on frozen features (and so needs statistics)."""
    method = get_method(config.train.method)
    cfg = method.parse_config(config.train.method_params)
    return method.objective_for(cfg) == "frozen_features" and getattr(cfg, "head", "") == "standardised"
