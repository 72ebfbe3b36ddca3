"""The consortium's server: join, rounds, checkpoints, the final evaluation (a Flower ServerApp body).

`run_consortium(grid, context, plan)` is what the ServerApp runs, in the Simulation Engine and
on a SuperLink alike. It drives Flower's own legacy workflows one round at a time
(`default_fit_workflow`, or `SecAggPlusWorkflow` for secure aggregation, then
`default_evaluate_workflow`) instead of `DefaultWorkflow`'s fixed loop, because the consortium
needs four things between rounds:

1. **join** — every lender that connects is sent the consortium's terms (spec, method, tensor
   signature) and admitted only if it shares them (`join.py`); a refused lender is named with the
   sentence why and never sampled;
2. **skip, not stop** — a round with fewer lenders than `min_lenders` is skipped and reported
   (`ConsortiumGuard`), the global weights stay those of the last completed round;
3. **checkpoint** — after every round the global trainable tensors, the round number and the
   reports so far are written atomically to `plan.state_dir`; a killed server started again with
   the same state folder and config resumes after the last completed round;
4. **report** — a `RoundReport` per round (lenders asked / returned / failed / refused, loss,
   AUC per lender, bytes, ε so far), handed to `plan.on_round` (the CLI prints it, Dagster attaches
   it) and kept in the outcome.

After the last round every admitted lender evaluates the final model on its own test split and
returns its AUC (a number, not scores).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.app.message_type import MessageType
from flwr.common import (
    Code,
    ConfigRecord,
    EvaluateIns,
    GetPropertiesIns,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.constant import MessageTypeLegacy
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig
from flwr.server.compat.app_utils import start_update_client_manager_thread
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.server.workflow.default_workflows import default_evaluate_workflow, default_fit_workflow
from flwr.serverapp import Grid
from pydantic import BaseModel, Field
from safetensors.numpy import load_file, save_file

from data_contracts.spec import DatasetSpec
from risk_app.atomic import atomic_dir, atomic_write_text
from risk_app.errors import ConfigError
from risk_app.federated.config import FederatedConfig
from risk_app.federated.join import KEY_LENDER, KEY_REFUSAL, KEY_SPEC_HASH, KEY_TEMPLATE, ConsortiumTerms
from risk_app.federated.lender import KEY_ROUND, KEY_SPLIT, check_federable, prepared_model
from risk_app.federated.moments import ConsortiumStandardisation, uses_standardised_head
from risk_app.federated.privacy import check_privacy_budget, epsilon_spent
from risk_app.federated.statistics_rounds import consortium_standardisation
from risk_app.federated.strategy import (
    ConsortiumClientManager,
    ConsortiumGuard,
    build_strategy,
    lenders_per_round,
)
from risk_app.federated.tensors import TensorTemplate
from risk_app.finetune.features import base_fingerprint
from risk_app.finetune.standardised_head import standardised_head

CHECKPOINT = "checkpoint"
WEIGHTS_FILE = "global.safetensors"
STATE_FILE = "state.json"


class RoundReport(BaseModel):
    """One round as the server saw it: who trained, what was refused, the numbers that came back."""

    server_round: int
    status: str = Field(description="aggregated or skipped")
    reason: str = ""
    asked: list[str] = Field(default_factory=list)
    returned: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    rejected: dict[str, str] = Field(default_factory=dict)
    train_loss: dict[str, float] = Field(default_factory=dict)
    val_auc_local: dict[str, float] = Field(default_factory=dict, description="after local training")
    val_auc_global: dict[str, float] = Field(default_factory=dict, description="of the new global model")
    bytes_up: dict[str, int] = Field(default_factory=dict, description="update bytes received per lender")
    bytes_down_each: int = 0
    epsilon: float | None = None
    record_epsilon: dict[str, float] = Field(
        default_factory=dict, description="record-level DP-SGD: each lender's ε so far, as it reported"
    )
    seconds: float = 0.0


class ConsortiumOutcome(BaseModel):
    """What a finished (or resumed and finished) consortium run produced."""

    config: FederatedConfig
    spec_name: str
    spec_hash: str
    template: str
    lenders: list[str]
    refused: dict[str, str]
    rounds: list[RoundReport]
    completed_rounds: int
    epsilon: float | None = Field(description="lender-level ε, or with record-level DP the largest lender's")
    delta: float | None
    record_epsilon: dict[str, float] = Field(
        default_factory=dict, description="record-level DP-SGD: each lender's ε over all its rounds"
    )
    test_auc: dict[str, float]
    test_rows: dict[str, int]
    weights_file: str
    standardisation: dict[str, list[float]] | None = Field(
        default=None, description="The standardised head's consortium mean and scale (statistics rounds)"
    )


@dataclass
class ServerPlan:
    """Everything the ServerApp needs besides Flower's grid and context."""

    config: FederatedConfig
    spec: DatasetSpec
    state_dir: Path
    expected_lenders: int
    join_timeout: float = 120.0
    on_round: Callable[[RoundReport], None] | None = None
    outcome_file: Path | None = None


def config_fingerprint(config: FederatedConfig, spec: DatasetSpec) -> str:
    payload = json.dumps([config.model_dump(mode="json"), spec.hash], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---- checkpoint ---------------------------------------------------------------------------
def save_checkpoint(
    state_dir: Path,
    template: TensorTemplate,
    arrays: list[np.ndarray],
    fingerprint: str,
    reports: list[RoundReport],
    standardisation: ConsortiumStandardisation | None = None,
) -> None:
    """Global weights + completed round + reports, written as one folder swap (whole or absent)."""
    with atomic_dir(state_dir / CHECKPOINT) as tmp:
        save_file({n: np.ascontiguousarray(a) for n, a in zip(template.names, arrays, strict=True)},
                  str(tmp / WEIGHTS_FILE))  # fmt: skip
        state = {"fingerprint": fingerprint, "completed_round": reports[-1].server_round if reports else 0,
                 "rounds": [r.model_dump(mode="json") for r in reports],
                 "standardisation": standardisation.to_json() if standardisation else None}  # fmt: skip
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))


def load_checkpoint(
    state_dir: Path, template: TensorTemplate, fingerprint: str
) -> tuple[list[np.ndarray], list[RoundReport], ConsortiumStandardisation | None] | None:
    """(weights, reports, the standardised head's statistics) of the last completed round, or None
    for a fresh start."""
    folder = state_dir / CHECKPOINT
    if not (folder / STATE_FILE).is_file():
        return None
    state = json.loads((folder / STATE_FILE).read_text())
    if state["fingerprint"] != fingerprint:
        raise ConfigError(
            f"{folder}: this state folder holds a consortium run with another config or spec; "
            "use a new state folder, or the same config to resume"
        )
    tensors = load_file(str(folder / WEIGHTS_FILE))
    arrays = [tensors[name] for name in template.names]
    template.check_update(arrays, f"{folder / WEIGHTS_FILE}")
    standardisation = ConsortiumStandardisation.from_json(state.get("standardisation"))
    return arrays, [RoundReport.model_validate(r) for r in state["rounds"]], standardisation


# ---- join ---------------------------------------------------------------------------------
def wait_for_lenders(clients: ConsortiumClientManager, expected: int, timeout: float) -> None:
    """Wait until `expected` nodes are connected, or `timeout` seconds (then go on with those there)."""
    deadline = time.monotonic() + timeout
    while len(clients.all()) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    if len(clients.all()) < expected:
        log(
            WARNING, "%s of %s expected lenders connected after %.0f s", len(clients.all()), expected, timeout
        )


def join_pending(
    grid: Grid, clients: ConsortiumClientManager, terms: ConsortiumTerms, timeout: float
) -> None:
    """Send the consortium's terms to every node that has not joined; admit or refuse each."""
    pending = clients.pending()
    if not pending:
        return
    content = compat.getpropertiesins_to_recorddict(GetPropertiesIns(terms.as_config()))
    messages = [
        Message(
            content=content,
            dst_node_id=proxy.node_id,
            message_type=MessageTypeLegacy.GET_PROPERTIES,
            group_id="join",
        )  # fmt: skip
        for proxy in pending
    ]
    for reply in grid.send_and_receive(messages, timeout=timeout):
        cid = str(reply.metadata.src_node_id)
        if reply.has_error():
            clients.refuse(cid, f"node {cid} could not answer the join: {reply.error.reason[:200]}")
            log(WARNING, "lender refused at join: %s", clients.refused[cid])
            continue
        res = compat.recorddict_to_getpropertiesres(reply.content)
        props = res.properties
        name = str(props.get(KEY_LENDER, f"node {cid}"))
        refusal = str(props.get(KEY_REFUSAL, ""))
        if res.status.code != Code.OK:
            refusal = refusal or f"the join failed: {res.status.message}"
        elif not refusal and props.get(KEY_SPEC_HASH) != terms.spec_hash:
            refusal = "the lender's data set spec differs from the consortium's (spec hash)"
        elif not refusal and props.get(KEY_TEMPLATE) != terms.template:
            refusal = "the lender's trainable tensors (names and shapes) differ from the consortium's"
        if refusal:
            clients.refuse(cid, f"{name}: {refusal}")
            log(WARNING, "lender refused at join: %s", clients.refused[cid])
        else:
            clients.admit(cid, name)
            log(INFO, "lender admitted: %s", name)


# ---- rounds -------------------------------------------------------------------------------
def _round_report(guard: ConsortiumGuard, started: float, epsilon: float | None, secure: bool) -> RoundReport:
    rl = guard.log
    status = "aggregated" if rl.aggregated else "skipped"
    reason = rl.skipped_reason
    if not rl.aggregated and not reason:
        reason = (
            f"round {rl.server_round} skipped: secure aggregation halted (too few lenders stayed to "
            "unmask the sum)"
            if secure
            else f"round {rl.server_round} skipped: no update could be aggregated"
        )
    return RoundReport(
        server_round=rl.server_round, status=status, reason=reason, asked=rl.asked, returned=rl.returned,
        failed=rl.failed, rejected=rl.rejected, train_loss=rl.train_loss, val_auc_local=rl.val_auc_local,
        val_auc_global=rl.val_auc_global, bytes_up=rl.bytes_up, bytes_down_each=rl.bytes_down_each,
        epsilon=epsilon, record_epsilon=rl.record_epsilon, seconds=time.perf_counter() - started,
    )  # fmt: skip


def final_evaluation(
    grid: Grid, clients: ConsortiumClientManager, arrays: list[np.ndarray], timeout: float | None,
    extra: dict[str, Scalar] | None = None,
) -> tuple[dict[str, float], dict[str, int]]:  # fmt: skip
    """Each admitted, connected lender's AUC of the final model on its own test split."""
    ins = EvaluateIns(ndarrays_to_parameters(arrays), {KEY_ROUND: 0, KEY_SPLIT: "test", **(extra or {})})
    content = compat.evaluateins_to_recorddict(ins, True)
    targets = [p for cid, p in clients.clients.items() if cid in clients.admitted]
    messages = [
        Message(content=content, dst_node_id=p.node_id, message_type=MessageType.EVALUATE, group_id="final")
        for p in targets
    ]
    auc: dict[str, float] = {}
    rows: dict[str, int] = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            continue
        res = compat.recorddict_to_evaluateres(reply.content)
        name = clients.name(str(reply.metadata.src_node_id))
        auc[name] = float(res.metrics.get("auc", float("nan")))
        rows[name] = int(res.num_examples)
    return dict(sorted(auc.items())), dict(sorted(rows.items()))


def run_consortium(grid: Grid, context: Context, plan: ServerPlan) -> ConsortiumOutcome:
    """Join, train `config.rounds` rounds (resuming from a checkpoint), evaluate; the outcome."""
    cfg = plan.config
    check_federable(cfg)
    prepared = prepared_model(cfg.train)  # the server holds the base model, never a row
    template = prepared.template
    terms = ConsortiumTerms.build(plan.spec, cfg.train, template, base_fingerprint(cfg.train.base_model))
    fingerprint = config_fingerprint(cfg, plan.spec)
    resumed = load_checkpoint(plan.state_dir, template, fingerprint)
    arrays, reports, standardisation = resumed if resumed else (template.arrays(prepared.model), [], None)

    clients = ConsortiumClientManager(cfg.seed)
    thread, stop, registered = start_update_client_manager_thread(grid, clients)
    registered.wait()
    try:
        wait_for_lenders(clients, plan.expected_lenders, plan.join_timeout)
        join_pending(grid, clients, terms, plan.join_timeout)
        n_admitted = len(clients.admitted)
        per_round = lenders_per_round(cfg, n_admitted)
        sample_rate = per_round / max(n_admitted, 1)
        check_privacy_budget(cfg, sample_rate)
        sa = cfg.secure_aggregation
        fit_workflow: Callable[[Grid, Any], None] = (
            SecAggPlusWorkflow(
                num_shares=_count(sa.num_shares),
                reconstruction_threshold=_count(sa.reconstruction_threshold),
                clipping_range=sa.clipping_range,
                timeout=sa.timeout_seconds,
            )  # fmt: skip
            if sa.enabled
            else default_fit_workflow
        )
        if standardisation is None and uses_standardised_head(cfg):
            head = standardised_head(prepared.model)
            assert head is not None  # freeze.prepare installs it for head 'standardised'
            standardisation = consortium_standardisation(
                _workflow_round(
                    grid,
                    context,
                    clients,
                    fit_workflow,
                    lambda: join_pending(grid, clients, terms, plan.join_timeout),
                ),
                cfg,
                int(head.mean.shape[0]),
                clients,
            )
        extra = standardisation.instructions() if standardisation else None
        guard = build_strategy(cfg, template, arrays, clients, n_admitted, extra)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=cfg.rounds), strategy=guard,
                               client_manager=clients)  # fmt: skip
        legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters(arrays), True
        )
        round_cfg = ConfigRecord({Key.START_TIME: time.perf_counter(), Key.CURRENT_ROUND: 0})
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = round_cfg
        releases = sum(1 for r in reports if r.status == "aggregated")
        start = reports[-1].server_round + 1 if reports else 1
        if resumed:
            log(INFO, "resuming the consortium after round %s (%s)", start - 1, plan.state_dir)
        for server_round in range(start, cfg.rounds + 1):
            started = time.perf_counter()
            round_cfg[Key.CURRENT_ROUND] = server_round
            join_pending(grid, clients, terms, plan.join_timeout)  # lenders that connected late
            fit_workflow(grid, legacy)
            if guard.log.aggregated:
                releases += 1
                default_evaluate_workflow(grid, legacy)
            epsilon = (
                epsilon_spent(cfg.privacy.noise_multiplier, sample_rate, releases, cfg.privacy.delta)
                if cfg.privacy.enabled
                else None
            )
            reports.append(_round_report(guard, started, epsilon, sa.enabled))
            arrays = parameters_to_ndarrays(
                compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], True)
            )
            arrays = [a.astype(np.float32) for a in arrays]
            save_checkpoint(plan.state_dir, template, arrays, fingerprint, reports, standardisation)
            if plan.on_round is not None:
                plan.on_round(reports[-1])
        test_auc, test_rows = final_evaluation(grid, clients, arrays, cfg.round_timeout_seconds, extra)
    finally:
        stop.set()
        thread.join(timeout=10)
    spent: dict[str, float] = {}  # each lender's latest ε (record-level DP-SGD)
    for report in reports:
        spent.update(report.record_epsilon)
    outcome = ConsortiumOutcome(
        config=cfg, spec_name=plan.spec.name, spec_hash=plan.spec.hash, template=template.signature,
        lenders=sorted(clients.admitted.values()), refused=dict(clients.refused), rounds=reports,
        completed_rounds=sum(1 for r in reports if r.status == "aggregated"),
        epsilon=max(spent.values(), default=None) if cfg.record_privacy.enabled else (
            reports[-1].epsilon if reports else None),
        delta=cfg.privacy.delta if cfg.privacy.enabled else (
            cfg.record_privacy.delta if cfg.record_privacy.enabled else None),
        record_epsilon=spent,
        test_auc=test_auc, test_rows=test_rows,
        weights_file=str(plan.state_dir / CHECKPOINT / WEIGHTS_FILE),
        standardisation=standardisation.to_json() if standardisation else None,
    )  # fmt: skip
    if plan.outcome_file is not None:
        atomic_write_text(plan.outcome_file, outcome.model_dump_json(indent=1))
    return outcome


def _workflow_round(
    grid: Grid,
    context: Context,
    clients: ConsortiumClientManager,
    fit_workflow: Callable[[Grid, Any], None],
    join_late: Callable[[], None],
) -> Callable[[ConsortiumGuard, int], list[np.ndarray] | None]:
    """A statistics round run by Flower's fit workflow (SecAgg+ when on) with its own strategy; the
    aggregate, or None if the round was skipped. Lenders that connected late join first, as before
    every training round. Runs before the training rounds set the context's parameters (the
    legacy contexts share the context's state)."""

    def run(guard: ConsortiumGuard, server_round: int) -> list[np.ndarray] | None:
        join_late()
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=guard,
                               client_manager=clients)  # fmt: skip
        initial = guard.initialize_parameters(clients)
        assert initial is not None
        legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(initial, True)
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {Key.START_TIME: time.perf_counter(), Key.CURRENT_ROUND: server_round}
        )
        fit_workflow(grid, legacy)
        if not guard.log.aggregated:
            return None
        return parameters_to_ndarrays(
            compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], True)
        )

    return run


def _count(value: float) -> int | float:
    """SecAgg+ takes a count (int) or a fraction (float <= 1)."""
    return int(value) if value > 1 else float(value)
