"""Registration and its promotion verdict as one idempotent step, and recovery after a kill.

`register_and_decide(artifact_dir, run_key=..., artifact_key=...)` registers a training run's
artifact and records the verdict against the champion of that moment, under the registry lock.
It is keyed by `run_key` (the training run id: the weights) and `artifact_key` (the artifact's
version, which names any stacker and the credit policy): called again for the same pair, e.g. a
Dagster retry or a CLI re-run after a crash, it registers nothing new and returns the version
and verdict it has. The same run with another artifact key (the policy chosen again on the same
weights) is a new version, tagged with the version whose policy it re-chose
(`policy_rechosen_from`) and judged by `promotion.decide_rechosen_policy` when that run holds
the champion.

`reconcile_registry(name)` finishes what a killed process left behind (it runs at the start of
`register_and_decide` and can be called by any entry point on start-up):

* an MLflow run still `RUNNING` whose registering process is dead ends `KILLED`;
* a version with no promotion verdict (killed between registration and decision) gets one,
  decided against the current champion and marked `reconciled` in the audit line;
* an alias move whose audit line was written but which a kill stopped before the alias moved
  (the audit line is the write-ahead intent) is completed, with a `reconcile` audit line.

    from risk_app.registry.reconcile import register_and_decide
    outcome = register_and_decide(artifact, run_key=run_id, metrics=metrics, rule=rule)
    print(outcome.version, outcome.decision.reason, outcome.reused)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from risk_app.registry import mlflow_registry as reg
from risk_app.registry.audit import append_audit_record, read_audit_log
from risk_app.registry.mlflow_store import ARTIFACT_KEY_TAG, RECHOSEN_TAG, RUN_KEY_TAG
from risk_app.registry.processes import process_is_gone
from risk_app.registry.promotion import PromotionDecision, PromotionRule, SameRowsEvidence

# Verdict tags that count as "decided" (see mlflow_registry._record_verdict and set_champion).
DECIDED = {"promoted", "recommended", "rejected", "set_champion", "rolled_back"}


@dataclass(frozen=True)
class Registration:
    """A registered version and its verdict; `reused` when an earlier attempt had registered it;
    `rechosen_from`: the earlier version of the same run whose policy this one re-chose."""

    name: str
    version: str
    run_id: str
    decision: PromotionDecision
    reused: bool
    rechosen_from: str | None = None


@dataclass
class ReconcileReport:
    """What `reconcile_registry` repaired."""

    killed_runs: list[str] = field(default_factory=list)
    decided_versions: list[str] = field(default_factory=list)
    completed_moves: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.killed_runs or self.decided_versions or self.completed_moves)

    def sentence(self, name: str) -> str | None:
        """What was repaired in `name`, in one sentence (None when nothing was)."""
        done = []
        if self.killed_runs:
            done.append(f"ended {len(self.killed_runs)} MLflow run(s) a killed process left RUNNING")
        if self.decided_versions:
            done.append(f"decided version(s) {', '.join(self.decided_versions)} left undecided by a kill")
        if self.completed_moves:
            moves = ", ".join(self.completed_moves)
            done.append(f"completed the interrupted champion move to version(s) {moves}")
        return f"reconciled {name}: " + "; ".join(done) if done else None


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    try:
        return reg._existing(client, name)[0]
    except reg.ModelNotFoundError:
        return []


def _run_tags(client: MlflowClient, run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.tags)
    except MlflowException:
        return {}


def _end_dead_runs(client: MlflowClient, name: str, report: ReconcileReport) -> None:
    experiment_id = reg.configure_mlflow()
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'")
    for run in runs:
        if process_is_gone(run.data.tags):
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
            report.killed_runs.append(run.info.run_id)
            append_audit_record(
                "reconcile",
                name,
                from_version=None,
                to_version=None,
                reason=f"MLflow run {run.info.run_id} was left RUNNING by a dead process; ended KILLED",
                extra={"run_id": run.info.run_id},
            )


ALIAS_MOVES = {"promote", "set_champion", "rollback"}


def _finish_alias_move(client: MlflowClient, name: str, report: ReconcileReport) -> None:
    """Roll forward the last champion move the audit log announced but the registry lacks."""
    moves = [r for r in read_audit_log() if r.get("model_name") == name and r.get("action") in ALIAS_MOVES]
    if not moves:
        return
    last = moves[-1]
    target = last.get("to_version")
    if target is None:
        return
    try:
        done = (reg._get_version(client, name, target).tags or {}).get(reg.MOVE_TAG)
    except reg.ModelNotFoundError:
        return  # the audit log outlives stores: a line about another store's version is not ours
    champion = reg._alias_version(client, name, reg.CHAMPION)
    current = str(champion.version) if champion is not None else None
    # Only a move that never completed (no done-mark, champion still the one it replaced) is
    # rolled forward; an alias moved by hand in the MLflow UI since then is left as it is.
    if done == last.get("timestamp") or current == target or current != last.get("from_version"):
        return
    if last["action"] == "rollback":
        client.set_registered_model_alias(name, reg.CHAMPION, target)
        reg._tag(client, name, target, reg.MOVE_TAG, last["timestamp"])
    else:
        word = "promoted" if last["action"] == "promote" else "set_champion"
        reg._tag(client, name, target, "promotion_decision", word)
        reg._tag(client, name, target, "promotion_reason", last.get("reason", ""))
        reg._make_champion(client, name, target, current, last)
    append_audit_record(
        "reconcile",
        name,
        from_version=current,
        to_version=target,
        reason=f"completed the interrupted {last['action']} recorded at {last.get('timestamp')}",
        extra={"reconciled": True},
    )
    report.completed_moves.append(target)


def _reconcile_locked(
    client: MlflowClient, name: str, rule: PromotionRule | None, report: ReconcileReport
) -> None:
    _end_dead_runs(client, name, report)
    _finish_alias_move(client, name, report)
    for mv in _versions(client, name):
        if (mv.tags or {}).get("promotion_decision") in DECIDED:
            continue
        # A version whose registering process still runs is being decided right now: leave it.
        if not process_is_gone(_run_tags(client, mv.run_id)):
            continue
        reg.decide_and_record(client, name, str(mv.version), rule, "reconcile", extra={"reconciled": True})
        report.decided_versions.append(str(mv.version))


def reconcile_registry(
    name: str = reg.DEFAULT_MODEL_NAME, rule: PromotionRule | None = None
) -> ReconcileReport:
    """End runs and decide versions that a killed registration left behind (see module doc)."""
    report = ReconcileReport()
    client = reg._client()
    with reg.registry_lock(name):
        _reconcile_locked(client, name, rule, report)
    return report


def _recorded_decision(mv: ModelVersion) -> PromotionDecision:
    tags = mv.tags or {}
    return PromotionDecision(
        promote=tags.get("promotion_decision") in {"promoted", "recommended", "set_champion"},
        reason=tags.get("promotion_reason", ""),
        details={"recorded": True},
    )


def register_and_decide(
    artifact_dir: str | os.PathLike[str],
    *,
    run_key: str,
    artifact_key: str = "",
    metrics: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_name: str = reg.DEFAULT_MODEL_NAME,
    run_name: str | None = None,
    extra_artifacts: Sequence[str | os.PathLike[str]] = (),
    rule: PromotionRule | None = None,
    actor: str | None = None,
    mlflow_run_id: str = "",
    same_rows: SameRowsEvidence | None = None,
    gate: PromotionDecision | None = None,
) -> Registration:
    """Register `artifact_dir` once per (`run_key`, `artifact_key`) and record its verdict; idempotent.

    The verdict is a recommendation (alias `challenger`); `mlflow_registry.promote_if_better`
    carries it out, deciding again under the lock against the champion of that moment.
    `mlflow_run_id`: the MLflow run that logged training, which then holds the model too.
    `same_rows`: the champion re-scored on this version's test rows; the verdict is made on
    those rows when it is the champion of now (`promotion.decide_against`). `gate`: a refusal
    that does not depend on the champion (the benchmark gate), which a winning verdict yields to
    (`promotion.gated`); a retry whose version was only recommended (decided by a kill's
    reconciliation, which has no gate) is decided again through it.
    """
    if not run_key.strip():
        raise reg.ConfigError("register_and_decide: run_key (the training run id) is required")
    client = reg._client()
    with reg.registry_lock(model_name):
        _reconcile_locked(client, model_name, rule, ReconcileReport())
        same_run = [mv for mv in _versions(client, model_name) if (mv.tags or {}).get(RUN_KEY_TAG) == run_key]
        existing = [mv for mv in same_run if (mv.tags or {}).get(ARTIFACT_KEY_TAG, "") == artifact_key]
        if existing:
            mv = existing[0]
            recorded = (mv.tags or {}).get("promotion_decision")
            gate_refuses = gate is not None and not gate.promote
            if recorded in DECIDED and not (recorded == "recommended" and gate_refuses):
                decision = _recorded_decision(mv)
            else:
                decision = reg.decide_and_record(
                    client, model_name, str(mv.version), rule, actor, same_rows=same_rows, gate=gate
                )
            earlier = (mv.tags or {}).get(RECHOSEN_TAG)
            return Registration(
                model_name, str(mv.version), mv.run_id or "", decision, reused=True, rechosen_from=earlier
            )
        # The same weights registered before with another policy: this version re-chooses it.
        rechosen_from = str(same_run[-1].version) if same_run else None
        keys = {RUN_KEY_TAG: run_key, ARTIFACT_KEY_TAG: artifact_key, RECHOSEN_TAG: rechosen_from}
        info = reg.register_model_version(
            artifact_dir,
            metrics=metrics,
            params=params,
            tags={**dict(tags or {}), **{k: v for k, v in keys.items() if v}},
            model_name=model_name,
            run_name=run_name or run_key,
            extra_artifacts=extra_artifacts,
            mlflow_run_id=mlflow_run_id,
        )
        if rechosen_from is not None:
            client.update_model_version(
                model_name, info.version,
                description=f"policy re-chosen from version {rechosen_from}, same weights",
            )  # fmt: skip
        decision = reg.decide_and_record(
            client, model_name, info.version, rule, actor, same_rows=same_rows, gate=gate
        )
    return Registration(
        model_name, info.version, info.run_id, decision, reused=False, rechosen_from=rechosen_from
    )


__all__ = ["RUN_KEY_TAG", "ReconcileReport", "Registration", "reconcile_registry", "register_and_decide"]
