"""The `standardised` head on frozen features: a score layer with a bias, on standardised inputs.

A small base's pooled last-token features can be badly conditioned: for tiny-qwen2 about 8
units of norm are an offset every application shares, against a spread of about 0.085 between
applications, and the `score` layer of a `*ForSequenceClassification` model has no bias. A head
trained by gradient steps on such inputs spends most of its steps fighting the offset (the
federated head stopped at train loss 0.56-0.58 where the exact fit reaches 0.42-0.46).

`StandardisedScore` replaces the model's `score` layer by

    logits = linear((x - mean) / scale)        (linear has a bias)

with `mean` and `scale` stored in the model as parameters that never train (`requires_grad`
False): they are head parameters (`score.mean`, `score.scale`), so the method's saved state and
every packaged artifact carry them, and a loaded model scores exactly as it did when evaluated.
Who sets them: the `frozen_features` objective from the run's own training rows (pooled and
local-only models), or a consortium from statistics its lenders aggregated through Flower
(`risk_app.federated.moments`), which then marks them `fixed` so the objective keeps them.

    score = install_standardised_score(model)      # at prepare (and so at load)
    set_standardisation(score, *feature_standardisation(x_train))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from risk_app.finetune.methods.base import HEAD_MODULE

# A feature whose spread is below this is treated as constant (divided by 1, not by ~0).
MIN_SCALE = 1e-6
STANDARDISATION_PARAMETERS = ("mean", "scale")


class StandardisedScore(torch.nn.Module):
    """`linear((x - mean) / scale)`: a biased linear head on standardised features."""

    def __init__(self, in_features: int, out_features: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(in_features, dtype=dtype), requires_grad=False)
        self.scale = torch.nn.Parameter(torch.ones(in_features, dtype=dtype), requires_grad=False)
        self.linear = torch.nn.Linear(in_features, out_features, bias=True, dtype=dtype)
        # True when mean/scale came from outside (a consortium's statistics): not refitted on a run's rows.
        self.fixed = False

    @property
    def weight(self) -> torch.Tensor:
        """The linear map's weight (callers read the head's dtype and device from it)."""
        return self.linear.weight

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features.to(self.mean.dtype) - self.mean) / self.scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.standardise(features))


def install_standardised_score(model: Any) -> StandardisedScore:
    """Replace the model's `score` layer by a `StandardisedScore` (its weights kept, bias 0, identity
    standardisation); returns the new layer. Built at training and at loading alike."""
    old = getattr(model, HEAD_MODULE)
    if isinstance(old, StandardisedScore):
        return old
    new = StandardisedScore(old.in_features, old.out_features, dtype=torch.float32)
    with torch.no_grad():
        new.linear.weight.copy_(old.weight.float())
        new.linear.bias.zero_()
    new = new.to(old.weight.device)
    setattr(model, HEAD_MODULE, new)
    return new


def feature_standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature of `features` (rows), scale floored at MIN_SCALE."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.maximum(x.std(axis=0), MIN_SCALE)


def set_standardisation(
    score: StandardisedScore, mean: np.ndarray, scale: np.ndarray, *, fixed: bool = False
) -> None:
    """Write `mean` and `scale` into the head (`fixed`: the objective must not refit them)."""
    mean, scale = np.asarray(mean), np.asarray(scale)
    if mean.shape != tuple(score.mean.shape) or scale.shape != tuple(score.scale.shape):
        raise ValueError(
            f"standardisation of shape {mean.shape}/{scale.shape} does not fit a head on "
            f"{score.mean.shape[0]} features"
        )
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("standardisation holds a non-finite mean or a scale that is not positive")
    with torch.no_grad():
        score.mean.copy_(torch.as_tensor(mean, dtype=score.mean.dtype))
        score.scale.copy_(torch.as_tensor(scale, dtype=score.scale.dtype))
    score.fixed = fixed


def standardised_head(model: Any) -> StandardisedScore | None:
    """The model's `StandardisedScore`, or None when its head is a plain layer."""
    head = getattr(model, HEAD_MODULE, None)
    return head if isinstance(head, StandardisedScore) else None
