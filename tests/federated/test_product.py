"""The consortium's model takes the product's path: packaged, evaluated, registered, loaded, scored.

Two lenders train one round in process; Flower's FedAvg (inside the consortium's guard)
averages their updates; the checkpoint is what a server writes. No Ray here: the Simulation
Engine is tested in test_simulation.py.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from safetensors.numpy import load_file

from data_contracts.spec import load_spec
from risk_app.federated.lender import Lender, prepared_model
from risk_app.federated.product import package_federated, pooled_examples
from risk_app.federated.server import CHECKPOINT, ConsortiumOutcome, RoundReport, save_checkpoint
from risk_app.federated.server import WEIGHTS_FILE as GLOBAL_WEIGHTS
from risk_app.federated.strategy import ConsortiumClientManager, build_strategy
from risk_app.registry.artifact import WEIGHTS_FILE, load_risk_model, read_metadata
from risk_app.run.benchmark_gate import DEFAULT_BENCHMARK_MARGIN
from risk_app.run.register import register_run
from risk_app.scoring.service import load_model, score_with_reasons
from tests.federated.conftest import quick_config
from tests.federated.test_rules import _Node


def test_federated_model_is_packaged_registered_and_scores(tiny_qwen2, make_sites, tmp_path) -> None:
    config = quick_config(rounds=1, min_lenders=2)
    sites = make_sites(2, 150)
    prepared = prepared_model(config.train)
    template, start = prepared.template, prepared.template.arrays(prepared.model)
    results = []
    for k, site in enumerate(sites, start=1):
        arrays, n, metrics = Lender(site, config).fit(start, {"server_round": 1})
        results.append(
            (_Node(str(k)), FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, metrics))
        )
    clients = ConsortiumClientManager(seed=0)
    for k, site in enumerate(sites, start=1):
        clients.admit(str(k), site.name)
    guard = build_strategy(config, template, start, clients, 2)
    params, _ = guard.aggregate_fit(1, results, [])
    global_arrays = parameters_to_ndarrays(params)
    spec = load_spec("german_credit")
    report = RoundReport(server_round=1, status="aggregated", returned=guard.log.returned,
                         train_loss=guard.log.train_loss, val_auc_global={s.name: 0.6 for s in sites},
                         bytes_up=guard.log.bytes_up)  # fmt: skip
    save_checkpoint(tmp_path / "server", template, global_arrays, "test", [report])
    outcome = ConsortiumOutcome(
        config=config, spec_name=spec.name, spec_hash=spec.hash, template=template.signature,
        lenders=[s.name for s in sites], refused={}, rounds=[report], completed_rounds=1, epsilon=None,
        delta=None, test_auc={"lender-1": 0.61, "lender-2": 0.58}, test_rows={"lender-1": 23, "lender-2": 23},
        weights_file=str(tmp_path / "server" / CHECKPOINT / GLOBAL_WEIGHTS),
    )  # fmt: skip

    valid, examples = pooled_examples(sites)
    assert len(valid) == 300 and set(examples["split"]) == {"train", "validation", "test"}
    record = package_federated(outcome, valid, examples, spec=spec, baselines=("logistic",))
    # The deployment's default benchmark margin (the test suite turns the gate off by default).
    record = register_run(record, model_name="consortium", benchmark_margin=DEFAULT_BENCHMARK_MARGIN)

    assert record.model_label == "federated:lora"
    fed = record.federation
    assert fed.lenders == ["lender-1", "lender-2"] and fed.rounds_completed == 1 and fed.epsilon is None
    assert fed.bytes_per_round_per_lender == template.wire_bytes + 128 * len(template.names)  # .npy headers
    artifact = Path(record.need("artifact").path)
    card = (artifact / "MODEL_CARD.md").read_text()
    assert "# Model card: credit-risk model (federated:lora)" in card and "## A consortium model" in card
    assert "Trained by** 2 lenders (lender-1, lender-2)" in card
    meta = read_metadata(artifact)
    assert meta["extra"]["run_record"]["federation"]["lenders"] == ["lender-1", "lender-2"]
    run = mlflow.get_run(record.need("registration").mlflow_run_id)
    assert run.data.tags["federated_lenders"] == "lender-1,lender-2"
    assert run.data.tags["federated_strategy"] == "fedavg"
    assert run.data.metrics["lender_test_auc_lender-1"] == 0.61

    # The artifact holds exactly the consortium's trained tensors, and scores applications.
    artifact_weights = load_file(str(artifact / WEIGHTS_FILE))
    for name, array in zip(template.names, global_arrays, strict=True):
        np.testing.assert_allclose(artifact_weights[name], array, rtol=0, atol=1e-7)
    model = load_risk_model(record.need("artifact").path)
    pd_ = model.predict_proba(valid.head(5))
    assert pd_.shape == (5,) and np.isfinite(pd_).all()

    # The same benchmark gate as any challenger: one round of the tiny model trails the logistic
    # benchmark on the pooled test rows by more than the default margin, so it is held back, saying so.
    decision = record.need("registration").decision
    assert not decision.promote and decision.details["benchmark"] == "logistic"
    assert "trails the classical benchmark logistic" in decision.reason
    # Scored through the registry like any version, declines explained with reason codes.
    served = load_model(str(record.need("registration").version), model_name="consortium")
    scored = score_with_reasons(valid.head(12), served, top_k=2)
    declined = scored["decision"] == "decline"  # the tiny model's policy declines these rows
    # Only fields that raised the row's risk are reasons (a row may have none); each names a field
    # the model read, with a positive strength, and approved rows carry none.
    explained = scored.loc[declined & scored["reason_1_field"].notna()]
    assert len(explained) >= 3
    assert set(explained["reason_1_field"]) <= set(served.field_order or valid.columns)
    assert (explained["reason_1_strength"] > 0).all()
    assert scored.loc[~declined, "reason_1"].isna().all()
    np.testing.assert_allclose(scored["probability_of_default"].head(5), pd_, rtol=1e-5)
