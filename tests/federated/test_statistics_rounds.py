"""The standardised head's statistics rounds: Flower's FedAvg gives the consortium's pooled mean and
scale, lenders train and evaluate with them, DP releases are noised and counted, and through the
Simulation Engine with SecAgg+ the packaged model carries them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy
from opacus.accountants import RDPAccountant

from data_contracts.spec import load_spec
from risk_app.errors import ConfigError
from risk_app.federated.config import RecordPrivacyConfig
from risk_app.federated.dpsgd import head_features, lender_epsilon
from risk_app.federated.lender import Lender, check_federable, prepared_model
from risk_app.federated.moments import PHASE_MEAN, PHASE_SPREAD, ConsortiumStandardisation, lender_moment
from risk_app.federated.product import federated_model
from risk_app.federated.simulation import run_sites
from risk_app.federated.statistics_rounds import consortium_standardisation
from risk_app.federated.strategy import ConsortiumClientManager, ConsortiumGuard
from risk_app.finetune.run_setup import subsample_train
from risk_app.finetune.standardised_head import standardised_head
from tests.federated.conftest import quick_config

STD_TRAIN = {"method": "freeze", "method_params": {"n_trainable_layers": 0, "head": "standardised"},
             "max_length": 48, "batch_size": 16, "max_train_rows": 32, "learning_rate": 0.05,
             "device": "cpu"}  # fmt: skip


class _Node(ClientProxy):
    """A lender as an in-process client manager holds it: only its id."""

    def get_properties(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    get_parameters = fit = evaluate = reconnect = get_properties


def _pooled_features(lenders: list[Lender]) -> np.ndarray:
    rows = []
    for lender in lenders:
        train = lender.config.train
        data = subsample_train(lender._data().train, train.max_train_rows, train.seed)
        rows.append(head_features(prepared_model(train), train, data.train_texts))
    return np.concatenate(rows)


def test_statistics_rounds_give_the_pooled_mean_and_scale(tiny_qwen2, make_sites) -> None:
    config = quick_config(train=STD_TRAIN, min_lenders=3)
    lenders = {str(k): Lender(site, config) for k, site in enumerate(make_sites(3, 60))}
    clients = ConsortiumClientManager(seed=0)
    for cid, lender in lenders.items():
        clients.register(_Node(cid))
        clients.admit(cid, lender.site.name)

    def run_round(guard: ConsortiumGuard, server_round: int) -> list[np.ndarray] | None:
        initial = guard.initialize_parameters(clients)
        assert initial is not None
        results = []
        for proxy, ins in guard.configure_fit(server_round, initial, clients):
            out, n, metrics = lenders[proxy.cid].fit(parameters_to_ndarrays(ins.parameters), ins.config)
            results.append((proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(out), n, metrics)))
        params, _ = guard.aggregate_fit(server_round, results, [])
        return None if params is None else parameters_to_ndarrays(params)

    prepared = prepared_model(config.train)
    head = standardised_head(prepared.model)
    assert head is not None
    standardisation = consortium_standardisation(run_round, config, int(head.mean.shape[0]), clients)
    pooled = _pooled_features(list(lenders.values()))
    np.testing.assert_allclose(standardisation.mean, pooled.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(standardisation.scale, pooled.std(0), rtol=1e-4)

    # A training round with the statistics in the instruction: the head uses them, not its own rows'.
    start = prepared.template.arrays(prepared.model)
    instruction = {"server_round": 1, **standardisation.instructions()}
    arrays, _, metrics = lenders["0"].fit(start, instruction)
    np.testing.assert_allclose(head.mean.detach().numpy(), standardisation.mean, rtol=1e-6)
    assert head.fixed and metrics["train_loss"] > 0
    assert any(not np.array_equal(a, b) for a, b in zip(arrays, start, strict=True))
    with pytest.raises(ConfigError, match="needs the consortium's feature statistics"):
        lenders["0"].fit(start, {"server_round": 1})

    # Too few lenders: the statistics round is skipped and the consortium cannot start.
    strict = config.model_copy(update={"min_lenders": 4})
    with pytest.raises(Exception, match="feature statistics round .feature_mean. did not complete"):
        consortium_standardisation(run_round, strict, int(head.mean.shape[0]), clients)


def test_private_statistics_are_noised_clipped_and_counted() -> None:
    rng = np.random.default_rng(0)
    x = 3.0 + rng.normal(0.0, 0.1, (200, 8))
    privacy = RecordPrivacyConfig(enabled=True, statistics_noise_multiplier=4.0, statistics_clip_mean=8.0,
                                  statistics_clip_spread=1.0)  # fmt: skip
    means = np.stack([lender_moment(x, PHASE_MEAN, None, privacy) for _ in range(200)])
    # Rows are clipped to norm 8 (here ~8.5), then noise 4 * 8 / 200 = 0.16 on each mean.
    clipped = x * np.minimum(1.0, 8.0 / np.linalg.norm(x, axis=1, keepdims=True))
    np.testing.assert_allclose(means.mean(0), clipped.mean(0), atol=0.05)
    assert means.std(0).mean() == pytest.approx(0.16, rel=0.15)
    spread = lender_moment(x, PHASE_SPREAD, x.mean(0), privacy)
    assert np.unique(spread).size == 1  # one scalar for every feature under DP
    assert spread[0] == pytest.approx(0.01, rel=0.5)
    plain = lender_moment(x, PHASE_SPREAD, x.mean(0))
    np.testing.assert_allclose(plain, x.var(0), rtol=1e-5)

    accountant = RDPAccountant()
    dp = RecordPrivacyConfig(enabled=True, noise_multiplier=2.0)
    accountant.history = [(dp.statistics_noise_multiplier, 1.0, 2), (2.0, 16 / 160, 3 * 10)]
    assert lender_epsilon(dp, 160, 16, 3, statistics_releases=2) == pytest.approx(
        accountant.get_epsilon(1e-5), rel=1e-6
    )
    assert lender_epsilon(dp, 160, 16, 3, statistics_releases=2) > lender_epsilon(dp, 160, 16, 3)


def test_lender_level_dp_is_refused_for_the_standardised_head() -> None:
    with pytest.raises(ConfigError, match="statistics rounds are not covered by lender-level DP"):
        check_federable(quick_config(train=STD_TRAIN, privacy={"enabled": True}))
    check_federable(quick_config(train=STD_TRAIN, record_privacy={"enabled": True}))


@pytest.mark.slow
def test_secure_aggregation_statistics_reach_the_packaged_model(tiny_qwen2, make_sites, tmp_path) -> None:
    """Through Flower's Simulation Engine with SecAgg+: the server sees only sums, and the federated
    model carries the consortium's standardisation and scores as the lenders evaluated it."""
    sites = make_sites(3, 60)
    config = quick_config(
        train=STD_TRAIN, rounds=1, min_lenders=3,
        secure_aggregation={"enabled": True, "num_shares": 3, "reconstruction_threshold": 2},
    )  # fmt: skip
    outcome = run_sites(sites, load_spec("german_credit"), config, tmp_path / "std", cpus=1)
    assert outcome.completed_rounds == 1 and outcome.standardisation is not None
    lenders = [Lender(site, config) for site in sites]
    pooled = _pooled_features(lenders)
    # SecAgg+ quantizes each weighted value (rows / max_weight 1000 times the value, in [-8, 8]) to
    # 2^22 levels: about 1e-4 on a mean, a percent on a variance of ~0.006.
    np.testing.assert_allclose(outcome.standardisation["mean"], pooled.mean(0), atol=3e-4)
    np.testing.assert_allclose(outcome.standardisation["scale"], pooled.std(0), rtol=0.03)
    model, _, _ = federated_model(outcome)
    head = standardised_head(model)
    assert head is not None
    np.testing.assert_allclose(head.mean.detach().numpy(), outcome.standardisation["mean"], rtol=1e-6)
    # The lenders' own final test AUCs equal the packaged model's on their test splits.
    for lender in lenders:
        data = lender._data()
        _, _, metrics = lender.evaluate(
            [p.detach().numpy() for n, p in model.named_parameters() if p.requires_grad],
            {"split": "test", **_instructions(outcome)},
        )
        assert metrics["auc"] == pytest.approx(outcome.test_auc[lender.site.name], abs=1e-6)
        assert len(data.test_texts) == outcome.test_rows[lender.site.name]


def _instructions(outcome: Any) -> dict[str, Any]:
    standardisation = ConsortiumStandardisation.from_json(outcome.standardisation)
    assert standardisation is not None
    return standardisation.instructions()
