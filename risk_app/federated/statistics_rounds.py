"""The server's side of the consortium's feature statistics: two Flower FedAvg rounds before round 1.

What is asked, aggregated and revealed is described in `moments.py`. Here: the Flower strategy of
one statistics round (Flower's `FedAvg` asking every admitted lender, inside the consortium's
`ConsortiumGuard`, so updates are checked and a round below `min_lenders` is skipped), and the
two rounds in order. Who runs a round is the caller's: the server's ServerApp through Flower's
fit workflow (SecAgg+ when the consortium uses it), the bench's in-process driver through the
same strategy's `configure_fit` / `aggregate_fit`.

    standardisation = consortium_standardisation(run_round, config, n_features, clients)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.common import Scalar, ndarrays_to_parameters
from flwr.server.strategy import FedAvg

from risk_app.errors import RiskAppError
from risk_app.federated.config import FederatedConfig
from risk_app.federated.lender import KEY_ROUND
from risk_app.federated.moments import (
    KEY_MEAN,
    KEY_PHASE,
    PHASE_MEAN,
    PHASE_SPREAD,
    STATISTICS_ROUNDS,
    ConsortiumStandardisation,
    encode_vector,
)
from risk_app.federated.strategy import ConsortiumClientManager, ConsortiumGuard
from risk_app.federated.tensors import WIRE_DTYPE, TensorTemplate
from risk_app.finetune.standardised_head import MIN_SCALE


def statistics_guard(
    config: FederatedConfig, n_features: int, clients: ConsortiumClientManager, phase: str,
    mean: np.ndarray | None = None,
) -> ConsortiumGuard:  # fmt: skip
    """Flower's FedAvg over every admitted lender, asking for `phase`, inside the consortium's guard."""
    template = TensorTemplate((phase,), ((n_features,),))
    extra: dict[str, Scalar] = {KEY_PHASE: phase}
    if mean is not None:
        extra[KEY_MEAN] = encode_vector(mean)
    inner = FedAvg(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=config.min_lenders,
        min_evaluate_clients=0, min_available_clients=config.min_lenders,
        on_fit_config_fn=lambda server_round: {KEY_ROUND: server_round, **extra},
        accept_failures=True,
        initial_parameters=ndarrays_to_parameters([np.zeros(n_features, dtype=WIRE_DTYPE)]),
    )  # fmt: skip
    return ConsortiumGuard(inner, template, config.min_lenders, clients, config.secure_aggregation.enabled)


RoundRunner = Callable[[ConsortiumGuard, int], "list[np.ndarray] | None"]


def consortium_standardisation(
    run_round: RoundRunner, config: FederatedConfig, n_features: int, clients: ConsortiumClientManager
) -> ConsortiumStandardisation:
    """The two statistics rounds; `run_round(guard, round_number)` runs one through Flower and returns
    the aggregate (None when the round was skipped: then the consortium cannot start)."""
    moments: dict[str, np.ndarray] = {}
    for phase in (PHASE_MEAN, PHASE_SPREAD):
        guard = statistics_guard(config, n_features, clients, phase, moments.get(PHASE_MEAN))
        arrays = run_round(guard, STATISTICS_ROUNDS[phase])
        if arrays is None:
            reason = guard.log.skipped_reason or "the aggregation failed"
            raise RiskAppError(
                f"the consortium's feature statistics round ({phase}) did not complete: {reason}"
            )
        moments[phase] = np.asarray(arrays[0], dtype=np.float64)
    scale = np.sqrt(np.maximum(moments[PHASE_SPREAD], MIN_SCALE**2))
    return ConsortiumStandardisation(moments[PHASE_MEAN], scale)
