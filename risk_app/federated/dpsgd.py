"""Record-level differential privacy inside each lender: DP-SGD (Opacus) on the head on frozen features.

Central DP at the lender level (`privacy.py`) protects a whole lender, and with five lenders the
noise it needs drowns the model (docs/federated.md). Record-level DP protects each applicant
instead: a lender trains its part of the model with DP-SGD, so everything it sends in every
round is (ε, δ)-differentially private with respect to any one of its own applications,
whatever the server or the other lenders do with it.

What runs in a lender's `fit` (`dp_fit_head`):

* the pooled features of its train rows come from the frozen base (cached, like the
  `frozen_features` objective);
* a copy of the model's `score` layer is trained by Opacus (`PrivacyEngine.make_private`):
  Poisson sampling of each row with rate `batch_size / rows`, every example's gradient clipped
  to `max_grad_norm`, Gaussian noise of `noise_multiplier * max_grad_norm` added to each
  batch's sum, AdamW on the noisy gradient; the loss is unweighted cross-entropy (class weights
  from the lender's own label counts would be a data-dependent release the accountant does not
  count) and the last step's weights are kept (choosing an epoch on validation would be another);
* ε: Opacus' RDP accountant over every noisy step the lender has taken in the consortium,
  `rounds so far * local_epochs * steps per epoch` at its own sampling rate (an upper bound
  when fraction_fit < 1: it counts every round as one the lender trained in). Rounds compose
  because each round's starting weights are the previous releases post-processed. Each lender
  has its own ε (its rows and so its sampling rate differ); the consortium reports the largest.

Not covered by ε: the row count and the scalars a lender returns (train loss, validation and
test AUC), which the round report shows; a consortium that wants those private too withholds
them. Opacus' `secure_mode` (torchcsprng, which also guards the noise against floating-point
attacks) is not in the lock; the noise and the sampling come from torch's generator seeded from
the operating system's CSPRNG.

    arrays, n, metrics = dp_fit_head(prepared, data, train_config, config.record_privacy, server_round)
"""

from __future__ import annotations

import copy
import math
import secrets
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, TensorDataset

from risk_app.federated.config import RecordPrivacyConfig
from risk_app.federated.privacy import epsilon_spent
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.features import cached_features
from risk_app.finetune.methods.base import HEAD_MODULE
from risk_app.finetune.objectives.frozen_features import feature_settings
from risk_app.finetune.standardised_head import standardised_head
from risk_app.finetune.types import TrainData

# The standardised head's statistics rounds: the mean's and the spread's Gaussian releases (moments.py).
STATISTICS_RELEASES = 2


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Opacus' Poisson loader: as many steps an epoch as batches of the plain loader."""
    return max(1, math.ceil(rows / batch_size))


def lender_epsilon(
    privacy: RecordPrivacyConfig, rows: int, batch_size: int, epochs: int, statistics_releases: int = 0
) -> float:
    """ε at `privacy.delta` of `epochs` DP-SGD epochs over `rows` rows, composed with the lender's
    `statistics_releases` Gaussian statistics releases (`moments.lender_moment`; the standardised
    head's two), by Opacus' RDP accountant."""
    per_epoch = steps_per_epoch(rows, batch_size)
    if statistics_releases == 0:
        return epsilon_spent(privacy.noise_multiplier, 1.0 / per_epoch, epochs * per_epoch, privacy.delta)
    from opacus.accountants import RDPAccountant  # heavy optional import: only when DP is on

    accountant = RDPAccountant()
    accountant.history = [
        (privacy.statistics_noise_multiplier, 1.0, statistics_releases),
        (privacy.noise_multiplier, 1.0 / per_epoch, epochs * per_epoch),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus warns about the optimal order near the grid edge
        return float(accountant.get_epsilon(privacy.delta))


def head_features(prepared: Any, train: TrainConfig, texts: list[str]) -> np.ndarray:
    """The frozen base's last-token features of `texts` (cached in the lender's home)."""
    return cached_features(
        train.base_model, texts, settings=feature_settings(train), batch_size=train.eval_batch_size,
        loader=lambda _base, _settings: (prepared.model, prepared.tokenizer),
    )["last"]  # fmt: skip


def dp_train_head(
    score: torch.nn.Module, features: np.ndarray, labels: np.ndarray, *, train: TrainConfig,
    privacy: RecordPrivacyConfig,
) -> float:  # fmt: skip
    """Train `score` in place with DP-SGD for `train.epochs` epochs; the mean train loss of the last epoch.

    The batches' Poisson sampling and the noise draw from a generator seeded by the operating
    system's CSPRNG, never from the run's seed: that seed is in the consortium's config, and
    anyone who knew it could replay the sampling and subtract the noise.
    """
    from opacus import PrivacyEngine  # heavy optional import: only when record-level DP is on

    head = copy.deepcopy(score).float()  # Opacus hooks the copy, never the lender's model
    head.train()
    data = TensorDataset(torch.tensor(features, dtype=torch.float32), torch.tensor(labels, dtype=torch.long))
    last = float("nan")
    with torch.random.fork_rng(devices=[]):  # the lender's own RNG stream is left as it was
        torch.manual_seed(secrets.randbits(63))
        optimizer = torch.optim.AdamW(
            head.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay
        )
        module, optimizer, loader = PrivacyEngine(accountant="rdp").make_private(
            module=head, optimizer=optimizer, data_loader=DataLoader(data, batch_size=train.batch_size),
            noise_multiplier=privacy.noise_multiplier, max_grad_norm=privacy.max_grad_norm,
            poisson_sampling=True,
        )  # fmt: skip
        for _ in range(train.epochs):
            total, rows = 0.0, 0
            for xb, yb in loader:
                optimizer.zero_grad()
                # An empty Poisson batch still takes its (pure-noise) step, as the accountant counts it.
                logits = module(xb)
                loss = torch.nn.functional.cross_entropy(logits, yb) if len(xb) else logits.sum()
                loss.backward()
                optimizer.step()
                total, rows = total + float(loss.detach()) * len(xb), rows + len(xb)
            last = total / max(rows, 1)
    with torch.no_grad():
        for target, trained in zip(score.parameters(), head.parameters(), strict=True):
            target.copy_(trained.to(target.dtype))
    return last


def dp_fit_head(
    prepared: Any, data: TrainData, train: TrainConfig, privacy: RecordPrivacyConfig, server_round: int
) -> tuple[float, float, float]:
    """(train loss, validation AUC, ε so far) of one round of DP-SGD on the prepared model's head."""
    x_train = head_features(prepared, train, data.train_texts)
    score = getattr(prepared.model, HEAD_MODULE)
    standardised = standardised_head(prepared.model)
    if standardised is None:
        loss = dp_train_head(score, x_train, data.train_labels, train=train, privacy=privacy)
    else:  # the biased linear map trains on the consortium's standardised features
        with torch.no_grad():
            z_train = standardised.standardise(torch.tensor(x_train, dtype=torch.float32)).numpy()
        loss = dp_train_head(standardised.linear, z_train, data.train_labels, train=train, privacy=privacy)
    x_val = head_features(prepared, train, data.val_texts)
    param = next(score.parameters())
    with torch.no_grad():
        logits = score(torch.tensor(x_val, dtype=param.dtype)).float()
    margin = (logits[:, 1] - logits[:, 0]).numpy()
    two_labels = len(np.unique(data.val_labels)) == 2
    val_auc = float(roc_auc_score(data.val_labels, margin)) if two_labels else math.nan
    releases = 0 if standardised is None else STATISTICS_RELEASES
    epsilon = lender_epsilon(
        privacy, len(data.train_texts), train.batch_size, server_round * train.epochs, releases
    )
    return loss, val_auc, epsilon
