"""The consortium's rules without a network: update checks, the round guard, join sentences, ε."""

from __future__ import annotations

import re

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy

from data_contracts.spec import load_spec
from risk_app.errors import ConfigError
from risk_app.federated.join import canonical_spec, spec_difference
from risk_app.federated.privacy import check_privacy_budget, epsilon_spent
from risk_app.federated.strategy import ConsortiumClientManager, build_strategy
from risk_app.federated.tensors import MalformedUpdateError, TensorTemplate
from tests.federated.conftest import quick_config

TEMPLATE = TensorTemplate(names=("a.lora_A", "a.lora_B", "score.weight"), shapes=((4, 8), (8, 4), (2, 8)))


class _Node(ClientProxy):
    """A lender as the guard sees it: only its id (Flower's proxy interface, no network)."""

    def get_properties(self, *a, **k):  # pragma: no cover - not called by aggregation
        raise NotImplementedError

    get_parameters = fit = evaluate = reconnect = get_properties


def _arrays(value: float) -> list[np.ndarray]:
    return [np.full(shape, value, dtype=np.float32) for shape in TEMPLATE.shapes]


def _fit_res(arrays: list[np.ndarray], n: int = 10) -> FitRes:
    return FitRes(
        Status(Code.OK, "ok"), ndarrays_to_parameters(arrays), n, {"train_loss": 0.5, "val_auc": 0.6}
    )


def test_check_update_refuses_each_kind_of_malformed_update() -> None:
    TEMPLATE.check_update(_arrays(0.1), "lender-1")
    bad = _arrays(0.1)
    cases = {
        "has 2 tensors": bad[:2],
        "has shape (4, 9)": [np.zeros((4, 9), np.float32), *bad[1:]],
        "is float64": [bad[0].astype(np.float64), *bad[1:]],
        "NaN or infinite": [np.full((4, 8), np.nan, np.float32), *bad[1:]],
    }
    for needle, arrays in cases.items():
        with pytest.raises(MalformedUpdateError, match=f"lender-9: .*{re.escape(needle)}"):
            TEMPLATE.check_update(arrays, "lender-9")


def _guard(min_lenders: int):
    clients = ConsortiumClientManager(seed=0)
    for cid, name in (("1", "lender-1"), ("2", "lender-2"), ("3", "lender-3")):
        clients.admit(cid, name)
    config = quick_config(min_lenders=min_lenders)
    return build_strategy(config, TEMPLATE, _arrays(0.0), clients, 3), clients


def test_guard_averages_good_updates_and_leaves_out_a_malformed_one() -> None:
    guard, _ = _guard(min_lenders=2)
    results = [
        (_Node("1"), _fit_res(_arrays(1.0), n=10)),
        (_Node("2"), _fit_res(_arrays(3.0), n=30)),
        (_Node("3"), _fit_res([np.full((3, 3), 1e6, np.float32)] * 3, n=1000)),  # out of shape, huge weight
    ]
    params, _ = guard.aggregate_fit(1, results, [])
    averaged = parameters_to_ndarrays(params)
    np.testing.assert_allclose(averaged[0], 2.5)  # (10*1 + 30*3) / 40: lender-3 not averaged in
    assert set(guard.log.rejected) == {"lender-3"} and "shape (3, 3)" in guard.log.rejected["lender-3"]
    assert guard.log.returned == ["lender-1", "lender-2"] and guard.log.aggregated


def test_guard_skips_a_round_below_the_minimum_and_says_so() -> None:
    guard, _ = _guard(min_lenders=3)
    results = [(_Node("1"), _fit_res(_arrays(1.0))), (_Node("2"), _fit_res(_arrays(3.0)))]
    params, _ = guard.aggregate_fit(4, results, [RuntimeError("lender-3 dropped out")])
    assert params is None and not guard.log.aggregated
    assert guard.log.skipped_reason == (
        "round 4 skipped: 2 lender(s) returned a usable update, the consortium needs at least 3 "
        "(1 dropped out, 0 refused)"
    )


def test_client_manager_samples_only_admitted_lenders_and_never_blocks() -> None:
    clients = ConsortiumClientManager(seed=3)
    for cid in "1234":
        clients.register(_Node(cid))
    clients.admit("1", "lender-1")
    clients.admit("2", "lender-2")
    clients.refuse("3", "lender-3: its spec differs")
    assert clients.num_available() == 2
    assert {p.cid for p in clients.sample(2)} == {"1", "2"}
    assert clients.sample(3, min_num_clients=3) == []  # Flower's own manager would wait for a day


def test_spec_difference_names_the_first_difference() -> None:
    spec = load_spec("german_credit")
    assert spec_difference(canonical_spec(spec), spec) is None
    column = spec.categorical_columns[0]
    first = next(iter(spec.columns[column].categories))
    changed = spec.model_copy(deep=True)
    changed.columns[column].categories = {**changed.columns[column].categories, "brand new": "brand new"}
    assert spec_difference(canonical_spec(spec), changed) == (
        "the lender's data set spec differs from the consortium's: column "
        f"{column!r} has category 'brand new', which the consortium's lacks"
    )
    renamed = spec.model_copy(deep=True)
    renamed.columns[column].categories = {**renamed.columns[column].categories, first: "something else"}
    assert f"reads category {first!r} as 'something else'" in spec_difference(canonical_spec(spec), renamed)


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    eps = [epsilon_spent(2.0, 1.0, rounds, 1e-5) for rounds in (1, 3, 10)]
    assert eps[0] < eps[1] < eps[2]
    assert epsilon_spent(4.0, 1.0, 3, 1e-5) < eps[1]
    assert epsilon_spent(2.0, 0.2, 3, 1e-5) < eps[1]  # sampling a fifth of the lenders amplifies
    assert epsilon_spent(0.0, 1.0, 1, 1e-5) == float("inf")
    config = quick_config(rounds=10, privacy={"enabled": True, "noise_multiplier": 1.0, "max_epsilon": 8})
    with pytest.raises(
        ConfigError, match=r"10 rounds at noise multiplier 1.0 spend ε = 19.\d+ .* above max_epsilon 8"
    ):
        check_privacy_budget(config, 1.0)
