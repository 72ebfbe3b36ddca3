"""Record-level DP-SGD inside each lender (Opacus): the accounting, the join budget, the lender's fit.

No Ray: a lender's Flower client is driven in process, as in test_lender.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant
from sklearn.metrics import roc_auc_score

from data_contracts.spec import load_spec
from risk_app.errors import ConfigError
from risk_app.federated.config import FederatedConfig, RecordPrivacyConfig
from risk_app.federated.dpsgd import dp_train_head, lender_epsilon, steps_per_epoch
from risk_app.federated.join import KEY_REFUSAL, ConsortiumTerms
from risk_app.federated.lender import Lender, check_federable, prepared_model
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.features import base_fingerprint
from tests.federated.conftest import quick_config

HEAD_TRAIN = {"method": "freeze", "method_params": {"n_trainable_layers": 0}, "max_length": 48,
              "batch_size": 16, "learning_rate": 0.05, "device": "cpu"}  # fmt: skip


def _separable(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, 0] += 2.0 * (2 * y - 1)
    return x, y


def test_dp_sgd_learns_and_spends_what_opacus_counts() -> None:
    """Per-example clipping and noise still learn a clear signal (a DP head that stopped learning
    fails here), and the ε the lender reports equals Opacus' own accountant after those steps."""
    x, y = _separable(2000, 16, seed=0)
    privacy = RecordPrivacyConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=1.0)
    train = TrainConfig(epochs=3, batch_size=64, learning_rate=0.05, device="cpu")
    head = torch.nn.Linear(16, 2, bias=False)
    before = head.weight.detach().clone()
    dp_train_head(head, x, y, train=train, privacy=privacy)
    assert not torch.equal(before, head.weight.detach())
    assert not head._forward_hooks  # Opacus hooked a copy, not the lender's own layer
    x_test, y_test = _separable(500, 16, seed=1)
    with torch.no_grad():
        logits = head(torch.from_numpy(x_test))
    assert roc_auc_score(y_test, (logits[:, 1] - logits[:, 0]).numpy()) > 0.9

    steps = steps_per_epoch(2000, 64)
    accountant = RDPAccountant()
    accountant.history = [(1.0, 1 / steps, 3 * steps)]
    assert lender_epsilon(privacy, 2000, 64, 3) == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-6)
    # Composition over rounds: more epochs spend more; a lender with fewer rows (a higher
    # sampling rate) spends more for the same epochs.
    assert lender_epsilon(privacy, 2000, 64, 6) > lender_epsilon(privacy, 2000, 64, 3)
    assert lender_epsilon(privacy, 200, 64, 3) > lender_epsilon(privacy, 2000, 64, 3)


def test_record_privacy_is_refused_where_it_does_not_apply() -> None:
    with pytest.raises(ConfigError, match="enable one"):
        FederatedConfig.from_dict({"privacy": {"enabled": True}, "record_privacy": {"enabled": True}})
    with pytest.raises(ConfigError, match="trains the linear head on frozen features only"):
        check_federable(quick_config(record_privacy={"enabled": True}))  # LoRA
    check_federable(quick_config(train=HEAD_TRAIN, record_privacy={"enabled": True}))


def test_a_private_lender_reports_its_epsilon_and_refuses_an_over_budget_plan(tiny_qwen2, make_sites) -> None:
    site = make_sites(1, 120)[0]
    config = quick_config(train=HEAD_TRAIN, rounds=3, local_epochs=2,
                          record_privacy={"enabled": True, "noise_multiplier": 1.0})  # fmt: skip
    prepared = prepared_model(config.train)
    start = prepared.template.arrays(prepared.model)
    lender = Lender(site, config)
    arrays, n, first = lender.fit(start, {"server_round": 1})
    _, _, second = lender.fit(arrays, {"server_round": 2})
    privacy = config.record_privacy
    assert first["epsilon"] == pytest.approx(lender_epsilon(privacy, n, 16, 2))
    assert second["epsilon"] == pytest.approx(lender_epsilon(privacy, n, 16, 4))
    assert second["epsilon"] > first["epsilon"]
    assert any(not np.array_equal(a, b) for a, b in zip(arrays, start, strict=True))

    terms = ConsortiumTerms.build(load_spec("german_credit"), config.train, prepared.template,
                                  base_fingerprint("tiny-qwen2"))  # fmt: skip
    assert lender.get_properties(terms.as_config())[KEY_REFUSAL] == ""
    planned = lender_epsilon(privacy, n, 16, 6)
    strict = config.model_copy(
        update={"record_privacy": privacy.model_copy(update={"max_epsilon": planned / 2})}
    )
    assert Lender(site, strict).get_properties(terms.as_config())[KEY_REFUSAL] == (
        f"its {n} training rows would spend ε = {planned:.2f} at δ = 1e-05 over 3 rounds of DP-SGD, "
        f"above the consortium's max_epsilon {planned / 2:g}"
    )
