"""The privacy a consortium spends, and the Flower client mods that enforce it on the lender's side.

Differential privacy here is central and at the lender level: a neighbouring data set is the
consortium with one lender's entire contribution changed, so ε bounds what anyone holding the
final model (or every global model of every round) can learn about whether a given lender, and
hence any of its applicants, took part. Each round is one Gaussian release of the average of
updates clipped to `clipping_norm`, with noise multiplier σ, on a sample of lenders; opacus' RDP
accountant composes the rounds (`epsilon_spent`). With all lenders sampled (fraction 1.0) the
sampling rate is 1 and there is no amplification.

The lender-side mods, in the order they wrap the client (`client_mods`): SecAgg+ outermost
(`secaggplus_mod`: masks what leaves), then clipping (`fixedclipping_mod`: clips the update
before it is masked).

    epsilon_spent(noise_multiplier=2.0, sample_rate=1.0, rounds=5, delta=1e-5)   # about 5.4
"""

from __future__ import annotations

import warnings

from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp.typing import Mod

from risk_app.errors import ConfigError
from risk_app.federated.config import FederatedConfig


def epsilon_spent(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """ε at `delta` after `rounds` sampled Gaussian releases (opacus' RDP accountant); inf without noise."""
    if rounds == 0:
        return 0.0
    if noise_multiplier <= 0:
        return float("inf")
    from opacus.accountants import RDPAccountant  # heavy optional import: only when DP is on

    accountant = RDPAccountant()
    for _ in range(rounds):
        accountant.step(noise_multiplier=noise_multiplier, sample_rate=min(1.0, sample_rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus warns about the optimal order near the grid edge
        return float(accountant.get_epsilon(delta))


def check_privacy_budget(config: FederatedConfig, sample_rate: float) -> float | None:
    """The ε the planned rounds would spend (None without DP); refused above `max_epsilon`."""
    privacy = config.privacy
    if not privacy.enabled:
        return None
    planned = epsilon_spent(privacy.noise_multiplier, sample_rate, config.rounds, privacy.delta)
    if privacy.max_epsilon is not None and planned > privacy.max_epsilon:
        raise ConfigError(
            f"differential privacy: {config.rounds} rounds at noise multiplier {privacy.noise_multiplier} "
            "spend "
            f"ε = {planned:.2f} at δ = {privacy.delta:g}, above max_epsilon {privacy.max_epsilon:g}; "
            "raise the noise multiplier or run fewer rounds"
        )
    return planned


def client_mods(config: FederatedConfig) -> list[Mod]:
    """Flower client mods for the consortium's privacy settings, outermost first."""
    mods: list[Mod] = []
    if config.secure_aggregation.enabled:
        mods.append(secaggplus_mod)
    if config.privacy.enabled:
        mods.append(fixedclipping_mod)
    return mods
