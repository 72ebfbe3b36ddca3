"""bench/federated.py's privacy plan: the DP consortium's own rounds, local epochs and learning rate,
and a noise multiplier that keeps every lender within the ε asked for, and no noisier than needed."""

import argparse

from bench.federated import build_configs, record_noise_for_epsilon
from risk_app.federated.config import RecordPrivacyConfig
from risk_app.federated.dpsgd import lender_epsilon

ROWS = [196, 163, 126, 104, 109]  # the five lenders' train rows of one seed


def _worst(sigma: float, batch: int, epochs: int) -> float:
    privacy = RecordPrivacyConfig(enabled=True, noise_multiplier=sigma, delta=1e-5)
    return max(lender_epsilon(privacy, n, batch, epochs) for n in ROWS)


def test_record_noise_is_the_smallest_within_the_budget() -> None:
    sigma = record_noise_for_epsilon(8.0, ROWS, 32, 40)
    assert _worst(sigma, 32, 40) <= 8.0
    assert _worst(round(sigma - 0.01, 2), 32, 40) > 8.0  # 0.01 less noise would overspend


def test_dp_consortium_takes_its_own_rounds_epochs_and_learning_rate() -> None:
    args = argparse.Namespace(
        method="head", base_model="tiny-qwen2", max_length=256, rounds=40, local_epochs=10, lr=0.3,
        batch_size=16, no_class_weighting=True, lenders=5, round_schedule="cosine", dp="record", epsilon=8.0,
        clip=0.5, dp_batch_size=32, dp_lr=0.1, dp_rounds=20, dp_local_epochs=1,
    )  # fmt: skip
    plain, private, sigma = build_configs(args, 0, ROWS)
    assert (plain.rounds, plain.local_epochs, plain.train.learning_rate) == (40, 10, 0.3)
    assert private is not None and sigma is not None
    assert (private.rounds, private.local_epochs, private.train.learning_rate) == (20, 1, 0.1)
    assert private.train.batch_size == 32 and private.record_privacy.noise_multiplier == sigma
    # The noise is planned for the DP consortium's 20 epochs, not the plain one's 400.
    assert _worst(sigma, 32, 20) <= 8.0 < _worst(sigma, 32, 40)
