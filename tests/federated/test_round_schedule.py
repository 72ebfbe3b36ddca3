"""The learning rate across rounds: a cosine over the consortium's rounds shrinks the late steps."""

from __future__ import annotations

import numpy as np
import pytest

from risk_app.federated.lender import Lender, prepared_model
from tests.federated.conftest import quick_config

HEAD_TRAIN = {"method": "freeze", "method_params": {"n_trainable_layers": 0}, "max_length": 48,
              "batch_size": 16, "learning_rate": 0.1, "device": "cpu"}  # fmt: skip


def test_cosine_schedule_goes_from_the_peak_toward_zero() -> None:
    config = quick_config(rounds=4, round_schedule="cosine", train=HEAD_TRAIN)
    rates = [config.lender_train_config(r).learning_rate for r in (1, 2, 3, 4)]
    assert rates == pytest.approx(
        [0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05, 0.1 * (1 + np.cos(3 * np.pi / 4)) / 2]
    )
    assert quick_config(rounds=4, train=HEAD_TRAIN).lender_train_config(4).learning_rate == 0.1


def test_a_lender_steps_less_in_the_last_round_of_a_cosine_schedule(tiny_qwen2, make_sites) -> None:
    """From the same global weights, the last round's update is far smaller than the first's."""
    site = make_sites(1, 160)[0]
    config = quick_config(rounds=10, round_schedule="cosine", train=HEAD_TRAIN)
    prepared = prepared_model(config.train)
    start = [a.copy() for a in prepared.template.arrays(prepared.model)]
    moved = {}
    for server_round in (1, 10):
        trained, _, _ = Lender(site, config).fit(start, {"server_round": server_round})
        moved[server_round] = float(
            np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(trained, start, strict=True)))
        )
    assert 0 < moved[10] < 0.2 * moved[1], moved
