"""The issue's "bad input and faults", each without Ray (test_simulation.py runs them through Flower's
Simulation Engine): a dropout mid-round, the join's other refusals, the checkpoint a resumed
server trusts.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from data_contracts.spec import load_spec
from risk_app.errors import ConfigError
from risk_app.federated.join import (
    KEY_BASE,
    KEY_BASE_HASH,
    KEY_METHOD,
    KEY_SPEC,
    KEY_TEMPLATE,
    canonical_spec,
    terms_difference,
)
from risk_app.federated.server import CHECKPOINT, WEIGHTS_FILE, RoundReport, load_checkpoint, save_checkpoint
from risk_app.federated.strategy import ConsortiumClientManager, build_strategy
from risk_app.federated.tensors import MalformedUpdateError, TensorTemplate
from risk_app.finetune.config import TrainConfig
from tests.federated.conftest import quick_config
from tests.federated.test_rules import _Node

TEMPLATE = TensorTemplate(names=("a.lora_A", "score.weight"), shapes=((4, 8), (2, 8)))


def _arrays(value: float) -> list[np.ndarray]:
    return [np.full(shape, value, dtype=np.float32) for shape in TEMPLATE.shapes]


def test_a_lender_dropping_out_mid_round_does_not_stop_the_round() -> None:
    clients = ConsortiumClientManager(seed=0)
    for cid in "123":
        clients.register(_Node(cid))
        clients.admit(cid, f"lender-{cid}")
    guard = build_strategy(quick_config(min_lenders=2), TEMPLATE, _arrays(0.0), clients, 3)
    asked = guard.configure_fit(1, ndarrays_to_parameters(_arrays(0.0)), clients)
    assert [proxy.cid for proxy, _ in asked] == ["1", "2", "3"]
    results = [
        (proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(_arrays(float(proxy.cid))), 10, {}))
        for proxy, _ in asked
        if proxy.cid != "2"
    ]
    params, _ = guard.aggregate_fit(1, results, [ConnectionError("lender-2 went offline mid-round")])
    assert guard.log.aggregated and guard.log.failed == ["lender-2"] and not guard.log.skipped_reason
    np.testing.assert_allclose(parameters_to_ndarrays(params)[0], 2.0)  # (1 + 3) / 2, lender-2 absent


def test_the_join_names_each_other_difference_in_one_sentence() -> None:
    spec = load_spec("german_credit")
    train = TrainConfig(method="lora", base_model="tiny-qwen2")
    terms = {KEY_SPEC: canonical_spec(spec), KEY_METHOD: "lora", "method_params": "{}",
             KEY_BASE: "tiny-qwen2", KEY_BASE_HASH: "a" * 64, KEY_TEMPLATE: "t1"}  # fmt: skip
    assert terms_difference(terms, spec, train, "t1", "a" * 64) is None
    assert terms_difference(
        terms, spec, train.model_copy(update={"method_params": {"r": 4}}), "t1", "a" * 64
    ) == ("the lender fine-tunes with method 'lora' {'r': 4}, the consortium with 'lora' {}")
    assert terms_difference(terms, spec, train, "t1", "b" * 64) == (
        "the lender's copy of base model 'tiny-qwen2' has other weights than the consortium's "
        "(content hash bbbbbbbbbbbb, the consortium's aaaaaaaaaaaa)"
    )
    assert terms_difference(terms, spec, train, "t2", "a" * 64) == (
        "the lender's trainable tensors (names and shapes) differ from the consortium's"
    )


def test_a_resumed_server_trusts_only_its_own_checkpoint(tmp_path) -> None:
    report = RoundReport(server_round=3, status="aggregated")
    save_checkpoint(tmp_path, TEMPLATE, _arrays(0.5), "config-a", [report])
    arrays, reports, _ = load_checkpoint(tmp_path, TEMPLATE, "config-a")
    assert [r.server_round for r in reports] == [3] and all((a == 0.5).all() for a in arrays)
    assert load_checkpoint(tmp_path / "empty", TEMPLATE, "config-a") is None  # a fresh start
    with pytest.raises(ConfigError, match="holds a consortium run with another config or spec"):
        load_checkpoint(tmp_path, TEMPLATE, "config-b")
    # A checkpoint whose tensors are not the consortium's shape is refused, not trained on.
    other = TensorTemplate(names=TEMPLATE.names, shapes=((4, 8), (2, 9)))
    save_checkpoint(tmp_path, other, [np.zeros(s, np.float32) for s in other.shapes], "config-a", [report])
    with pytest.raises(MalformedUpdateError, match=f"{CHECKPOINT}/{WEIGHTS_FILE}.*shape"):
        load_checkpoint(tmp_path, TEMPLATE, "config-a")
