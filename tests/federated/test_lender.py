"""A lender's Flower client, driven in process with real Flower messages.

The privacy test records every message the lender's ClientApp sends back (a Flower mod around
the whole app) through a join, two fits and an evaluation, and checks that the only arrays are
the method's trainable tensors, in their shapes, and that nothing else carries an application's
text, id or label.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.common import EvaluateIns, FitIns, GetPropertiesIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import MessageTypeLegacy
from flwr.compat.common import recorddict_compat as compat
from flwr.supercore.task_identity import TaskIdentity

from data_contracts.spec import load_spec
from risk_app.federated.join import KEY_REFUSAL, ConsortiumTerms
from risk_app.federated.lender import Lender, LenderData, prepared_model
from risk_app.federated.simulation import make_client_app
from risk_app.finetune.features import base_fingerprint
from risk_app.workflow import ingest_and_validate
from tests.federated.conftest import quick_config


@pytest.fixture
def server_identity() -> Iterator[None]:
    """Messages are created by a server task; Flower reads its identity from TaskIdentity."""
    before = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = before


def _message(content: RecordDict, message_type: str) -> Message:
    return Message(content=content, dst_node_id=7, message_type=message_type, group_id="1")


def test_a_lender_sends_only_its_trainable_tensors(tiny_qwen2, make_sites, server_identity) -> None:
    config = quick_config()
    site = make_sites(1, 120)[0]
    sent: list[Message] = []

    def record(msg: Message, ctx: Context, call_next):  # a Flower mod: sees every reply leave
        reply = call_next(msg, ctx)
        sent.append(reply)
        return reply

    app = make_client_app([site], config, extra_mods=[record])
    context = Context(run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
    prepared = prepared_model(config.train)
    template = prepared.template
    start = template.arrays(prepared.model)
    terms = ConsortiumTerms.build(load_spec("german_credit"), config.train, template,
                                  base_fingerprint(config.train.base_model))  # fmt: skip
    join = app(_message(compat.getpropertiesins_to_recorddict(GetPropertiesIns(terms.as_config())),
                        MessageTypeLegacy.GET_PROPERTIES), context)  # fmt: skip
    assert compat.recorddict_to_getpropertiesres(join.content).properties[KEY_REFUSAL] == ""
    weights = start
    for server_round in (1, 2):
        ins = FitIns(ndarrays_to_parameters(weights), {"server_round": server_round})
        reply = app(_message(compat.fitins_to_recorddict(ins, True), MessageType.TRAIN), context)
        weights = parameters_to_ndarrays(compat.recorddict_to_fitres(reply.content, False).parameters)
    assert any(not np.allclose(a, b) for a, b in zip(weights, start, strict=True))  # it did train
    ins = EvaluateIns(ndarrays_to_parameters(weights), {"server_round": 2, "split": "test"})
    app(_message(compat.evaluateins_to_recorddict(ins, True), MessageType.EVALUATE), context)

    # The trainable set is LoRA's adapters and peft's trained copy of the score head, nothing frozen.
    assert template.names and all("lora_" in n or "modules_to_save" in n for n in template.names)
    assert any("score" in n for n in template.names)
    data = LenderData.load(site)
    texts = data.train.train_texts + data.train.val_texts + data.test_texts
    ids = set(ingest_and_validate(site.data_file, spec="german_credit").valid["application_id"].astype(str))
    assert len(sent) == 4
    for reply in sent:
        arrays = [a for record in reply.content.array_records.values() for a in record.values()]
        shapes = [tuple(a.shape) for a in arrays]
        assert shapes in ([], list(template.shapes)), f"{reply.metadata.message_type} sent arrays {shapes}"
        assert all(a.dtype == "float32" for a in arrays)
        records = [*reply.content.config_records.values(), *reply.content.metric_records.values()]
        scalars = [v for record in records for v in record.values()]
        strings = [v for v in scalars if isinstance(v, str | bytes)]
        assert all(isinstance(v, int | float | str | bytes) for v in scalars)
        for value in strings:
            text = value.decode() if isinstance(value, bytes) else value
            assert not any(i in text for i in ids if len(i) > 3), f"an application id left in {text!r}"
            assert not any(t[:40] in text for t in texts), f"an application's text left in {text!r}"
        numbers = [v for v in scalars if isinstance(v, int | float)]
        assert len(numbers) <= 6  # loss, AUC, seconds, row count, status code: never one per row


def test_join_refuses_a_lender_whose_spec_differs(tiny_qwen2, make_sites) -> None:
    config = quick_config()
    site = make_sites(1, 60)[0]
    spec = load_spec("german_credit")
    consortium = spec.model_copy(deep=True)
    column = spec.numeric_columns[0]
    consortium.columns[column].max = 99
    prepared = prepared_model(config.train)
    terms = ConsortiumTerms.build(consortium, config.train, prepared.template, base_fingerprint("tiny-qwen2"))
    props = Lender(site, config).get_properties(terms.as_config())
    assert props[KEY_REFUSAL] == (
        f"the lender's data set spec differs from the consortium's: column {column!r} has max "
        f"{spec.columns[column].max!r}, the consortium's is 99.0"
    )


def test_fedprox_keeps_local_training_near_the_global_weights(tiny_qwen2, make_sites) -> None:
    """The proximal term must pull the lender's weights toward the round's global weights:
    with a large mu the update is much smaller than FedAvg's from the same start."""
    site = make_sites(1, 160)[0]
    train = {
        **quick_config().train.model_dump(),
        "learning_rate": 5e-3,
        "batch_size": 8,
        "max_train_rows": 64,
    }
    start = [a.copy() for a in prepared_model(quick_config(train=train).train).template.arrays(
        prepared_model(quick_config(train=train).train).model)]  # fmt: skip
    drift = {}
    for mu in (0.0, 500.0):
        config = quick_config(strategy="fedprox", proximal_mu=mu, local_epochs=2, train=train)
        trained, n, metrics = Lender(site, config).fit(start, {"server_round": 1, "proximal_mu": mu})
        drift[mu] = float(np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(trained, start, strict=True))))
        assert n == 64 and 0.0 <= metrics["val_auc"] <= 1.0
    assert drift[500.0] < 0.5 * drift[0.0], drift
