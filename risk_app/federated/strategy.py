"""The server's side of a round: which lenders train, what is refused, how updates are combined.

Aggregation is Flower's: `FedAvg` or `FedProx` (`flwr.server.strategy`), wrapped for central
differential privacy by Flower's `DifferentialPrivacyClientSideFixedClipping` when asked.
Around them sits `ConsortiumGuard`, the consortium's rules, applied before anything is averaged:

* every update is checked against the tensor template (`TensorTemplate.check_update`: count,
  shapes, dtype, finiteness); a malformed one is refused, its lender and reason reported, and
  it counts as a failure, never averaged in;
* a round with fewer usable updates than `min_lenders` (dropouts, refusals) is skipped and the
  report says why; the global weights stay those of the last completed round;
* per-lender numbers of the round (train loss, validation AUC, bytes received) go into the
  round's `RoundLog`.

`ConsortiumClientManager` samples only admitted lenders (those that passed the join), seeded per
round, and never blocks: too few lenders connected means an empty sample, and a skipped round.

    strategy = build_strategy(config, template, initial_arrays)
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from logging import INFO, WARNING
from typing import Any

from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.criterion import Criterion
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedProx, Strategy

from risk_app.federated.config import FederatedConfig
from risk_app.federated.lender import KEY_ROUND, KEY_SPLIT
from risk_app.federated.tensors import WIRE_DTYPE, MalformedUpdateError, TensorTemplate


@dataclass
class RoundLog:
    """What happened in one round, as the server saw it (the round report is built from it)."""

    server_round: int
    asked: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    train_loss: dict[str, float] = field(default_factory=dict)
    val_auc_local: dict[str, float] = field(default_factory=dict)
    val_auc_global: dict[str, float] = field(default_factory=dict)
    bytes_up: dict[str, int] = field(default_factory=dict)
    record_epsilon: dict[str, float] = field(default_factory=dict)
    bytes_down_each: int = 0
    aggregated: bool = False
    skipped_reason: str = ""


class ConsortiumClientManager(SimpleClientManager):
    """Flower's client manager restricted to admitted lenders; seeded, non-blocking sampling."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self.admitted: dict[str, str] = {}  # node id (cid) -> lender name
        self.refused: dict[str, str] = {}  # node id -> the sentence why
        self.server_round = 0
        self._lock = threading.Lock()

    def admit(self, cid: str, lender: str) -> None:
        with self._lock:
            self.admitted[cid] = lender

    def refuse(self, cid: str, reason: str) -> None:
        with self._lock:
            self.refused[cid] = reason

    def pending(self) -> list[ClientProxy]:
        """Connected nodes that have not joined yet (neither admitted nor refused)."""
        return [p for cid, p in self.clients.items() if cid not in self.admitted and cid not in self.refused]

    def name(self, cid: str) -> str:
        return self.admitted.get(cid, f"node {cid}")

    def num_available(self) -> int:
        return len([cid for cid in self.clients if cid in self.admitted])

    def sample(
        self, num_clients: int, min_num_clients: int | None = None, criterion: Criterion | None = None
    ) -> list[ClientProxy]:
        available = sorted(cid for cid in self.clients if cid in self.admitted)
        if criterion is not None:
            available = [cid for cid in available if criterion.select(self.clients[cid])]
        if num_clients > len(available) or len(available) < (min_num_clients or 0):
            return []
        picked = random.Random(self.seed * 100_003 + self.server_round).sample(available, num_clients)
        return [self.clients[cid] for cid in sorted(picked)]


def fit_config(config: FederatedConfig, extra: dict[str, Scalar] | None = None):  # noqa: ANN201 - Flower's type
    """Each round's fit instruction; `extra` (the standardised head's statistics) goes in every one."""

    def make(server_round: int) -> dict[str, Scalar]:
        return {KEY_ROUND: server_round, "local_epochs": config.local_epochs, **(extra or {})}

    return make


def evaluate_config(extra: dict[str, Scalar] | None = None):  # noqa: ANN201 - Flower's on_evaluate_config_fn
    def make(server_round: int) -> dict[str, Scalar]:
        return {KEY_ROUND: server_round, KEY_SPLIT: "validation", **(extra or {})}

    return make


class ConsortiumGuard(Strategy):
    """The consortium's rules around a Flower strategy: check updates, enforce the minimum, log."""

    def __init__(
        self,
        inner: Strategy,
        template: TensorTemplate,
        min_lenders: int,
        clients: ConsortiumClientManager,
        secure: bool = False,
    ) -> None:
        super().__init__()
        self.inner = inner
        # Under SecAgg+ each result carries the unmasked *sum* (dequantized, float64), never a
        # lender's own update: it is checked for shape and finiteness, and no bytes are counted.
        self.secure = secure
        self.template = template
        self.min_lenders = min_lenders
        self.clients = clients
        self.log = RoundLog(0)

    def __repr__(self) -> str:
        return f"ConsortiumGuard({self.inner!r}, min_lenders={self.min_lenders})"

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: Any
    ) -> list[tuple[ClientProxy, FitIns]]:
        self.log = RoundLog(server_round)
        self.clients.server_round = server_round
        instructions = self.inner.configure_fit(server_round, parameters, client_manager)
        self.log.asked = sorted(self.clients.name(proxy.cid) for proxy, _ in instructions)
        self.log.bytes_down_each = sum(len(t) for t in parameters.tensors)
        if not instructions:
            self.log.skipped_reason = (
                f"round {server_round} skipped: {self.clients.num_available()} admitted lender(s) connected, "
                f"the consortium needs at least {self.min_lenders}"
            )
            log(WARNING, self.log.skipped_reason)
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        usable: list[tuple[ClientProxy, FitRes]] = []
        failures = list(failures)
        for proxy, res in results:
            name = self.clients.name(proxy.cid)
            try:
                arrays = parameters_to_ndarrays(res.parameters)
                self.template.check_update(arrays, name, exact_dtype=not self.secure)
            except MalformedUpdateError as exc:
                self.log.rejected[name] = str(exc)
                log(WARNING, "update refused, not averaged in: %s", exc)
                failures.append((proxy, res))
                continue
            usable.append((proxy, res))
            self.log.returned.append(name)
            if not self.secure:  # under SecAgg+ the lenders' masked vectors are counted by the bench
                self.log.bytes_up[name] = sum(len(t) for t in res.parameters.tensors)
            self.log.train_loss[name] = float(res.metrics.get("train_loss", math.nan))
            self.log.val_auc_local[name] = float(res.metrics.get("val_auc", math.nan))
            if "epsilon" in res.metrics:  # record-level DP-SGD: the lender's own ε so far
                self.log.record_epsilon[name] = float(res.metrics["epsilon"])
        self.log.returned.sort()
        # A dropout reaches the server as an error without its node; those asked who neither
        # returned an update nor were refused dropped out.
        self.log.failed = sorted(set(self.log.asked) - set(self.log.returned) - set(self.log.rejected))
        if len(usable) < self.min_lenders:
            self.log.skipped_reason = (
                f"round {server_round} skipped: {len(usable)} lender(s) returned a usable update, "
                f"the consortium needs at least {self.min_lenders}"
                + (
                    f" ({len(failures) - len(self.log.rejected)} dropped out, "
                    f"{len(self.log.rejected)} refused)"
                    if failures
                    else ""
                )
            )
            log(WARNING, self.log.skipped_reason)
            return None, {}
        aggregated, metrics = self.inner.aggregate_fit(server_round, usable, failures)
        if aggregated is None:
            self.log.skipped_reason = (
                f"round {server_round} skipped: the differential-privacy wrapper refuses a round in which a "
                f"sampled lender failed ({len(failures)} failed), because its noise is calibrated for every "
                "sampled lender"
            )
            log(WARNING, self.log.skipped_reason)
            return None, {}
        # The aggregate travels back as float32, like every update (DP noise makes it float64).
        arrays = [a.astype(WIRE_DTYPE) for a in parameters_to_ndarrays(aggregated)]
        self.log.aggregated = True
        return ndarrays_to_parameters(arrays), metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: Any
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        for proxy, res in results:
            self.log.val_auc_global[self.clients.name(proxy.cid)] = float(res.metrics.get("auc", math.nan))
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return self.inner.evaluate(server_round, parameters)


def lenders_per_round(config: FederatedConfig, n_admitted: int) -> int:
    """How many lenders FedAvg samples each round from `n_admitted` (its own rule)."""
    return max(int(n_admitted * config.fraction_fit), config.min_lenders)


def build_strategy(
    config: FederatedConfig,
    template: TensorTemplate,
    initial_arrays: list[Any],
    clients: ConsortiumClientManager,
    n_lenders: int,
    extra: dict[str, Scalar] | None = None,
) -> ConsortiumGuard:
    """Flower's FedAvg / FedProx (+ DP wrapper) inside the consortium's guard; `extra` goes into every
    fit and evaluate instruction (the standardised head's consortium statistics)."""
    common: dict[str, Any] = {
        "fraction_fit": config.fraction_fit,
        "fraction_evaluate": config.fraction_fit,
        "min_fit_clients": config.min_lenders,
        "min_evaluate_clients": config.min_lenders,
        "min_available_clients": config.min_lenders,
        "on_fit_config_fn": fit_config(config, extra),
        "on_evaluate_config_fn": evaluate_config(extra),
        "accept_failures": True,
        "initial_parameters": ndarrays_to_parameters(initial_arrays),
        "fit_metrics_aggregation_fn": _mean_metrics,
        "evaluate_metrics_aggregation_fn": _mean_metrics,
    }
    inner: Strategy
    if config.strategy == "fedprox":
        inner = FedProx(proximal_mu=config.proximal_mu, **common)
    else:
        inner = FedAvg(**common)
    if config.privacy.enabled:
        inner = DifferentialPrivacyClientSideFixedClipping(
            inner,
            noise_multiplier=config.privacy.noise_multiplier,
            clipping_norm=config.privacy.clipping_norm,
            num_sampled_clients=lenders_per_round(config, n_lenders),
        )
    log(INFO, "consortium strategy: %s", inner)
    return ConsortiumGuard(inner, template, config.min_lenders, clients, config.secure_aggregation.enabled)


def _mean_metrics(pairs: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
    """Example-weighted mean of each numeric metric the lenders returned."""
    total = sum(n for n, _ in pairs) or 1
    keys = {k for _, metrics in pairs for k, v in metrics.items() if isinstance(v, int | float)}
    return {k: sum(n * float(m.get(k, 0.0)) for n, m in pairs) / total for k in sorted(keys)}
