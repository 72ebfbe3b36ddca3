"""The registration stage: the packaged artifact becomes an MLflow model version, with a verdict.

`register_run` logs the artifact, into the MLflow run that logged training, with the params,
metrics and tags rendered from the run record (`render.mlflow_payload`) once per run id and
artifact version (idempotent: a retry after a kill reuses the version) and records the
promotion rule's verdict against the current champion of the same registered model;
`promote_run` carries out a positive verdict, deciding again under the registry lock. Both
decide on the same rows when the run's evaluation re-scored that champion on its test rows
(`run.same_rows`: a paired test of the rule's metric), and on each version's recorded test
metrics only when it did not (the verdict says so), and both pass every verdict that would
promote through the benchmark gate (`run.benchmark_gate`), including a verdict made again
because the champion moved (`promotion.gated`). The CLI (`risk-app run`) and the Dagster
assets `registered_model` / `champion_model` both call these two functions.

A credit policy chosen again on a trained run (the Dagster `credit_policy` asset re-materialized
with another objective) changes the artifact's version, which names the policy, so it becomes a
new registered version whose tag `policy_rechosen_from` names the version of the same weights it
follows; when that run holds the champion, the verdict is `promotion.decide_rechosen_policy`'s
(the analyst's policy replaces the champion's unless the model ranks or calibrates worse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from risk_app.registry import mlflow_registry
from risk_app.registry.promotion import PromotionDecision, PromotionRule
from risk_app.registry.reconcile import register_and_decide
from risk_app.run.benchmark_gate import benchmark_verdict, configured_margin
from risk_app.run.record import RegistrationFacts, RunRecord
from risk_app.run.render import mlflow_payload, mlflow_run_name
from risk_app.run.same_rows import same_rows_evidence


def _benchmark_gate(
    record: RunRecord, rule: PromotionRule, benchmark_margin: float | Literal["off"] | None
) -> PromotionDecision | None:
    """The benchmark gate's refusal of this run, or None (None: the configured margin, "off": no gate)."""
    if benchmark_margin is None:
        margin = configured_margin()
    else:
        margin = None if benchmark_margin == "off" else float(benchmark_margin)
    return benchmark_verdict(record, rule, margin)


def register_run(
    record: RunRecord,
    *,
    model_name: str = mlflow_registry.DEFAULT_MODEL_NAME,
    rule: PromotionRule | None = None,
    benchmark_margin: float | Literal["off"] | None = None,
) -> RunRecord:
    """Register the run's artifact as a new version (alias `challenger`) and decide promotion:
    it must beat the champion (the rule; on the same rows when the evaluation re-scored it) and
    not trail the classical benchmark by more than `benchmark_margin`
    (`risk_app.run.benchmark_gate`; None: the deployment's configured margin, "off": no gate)."""
    artifact, evaluation = record.need("artifact"), record.need("evaluation")
    rule_used = rule or PromotionRule()
    same_rows = same_rows_evidence(record, model_name, rule_used)
    gate = _benchmark_gate(record, rule_used, benchmark_margin)
    payload = mlflow_payload(record)
    reports = [Path(p) for p in evaluation.plots.values()]
    if evaluation.lift_table:
        reports.append(Path(evaluation.lift_table))
    # Keyed by the run id and the artifact version (weights, stacker, policy): a retry after a
    # kill finds the version it registered, not a twin; another policy is another version.
    info = register_and_decide(
        artifact.path,
        run_key=record.run_id,
        artifact_key=artifact.version,
        metrics=payload.metrics,
        params=payload.params,
        tags=payload.tags,
        model_name=model_name,
        run_name=mlflow_run_name(record.run_id),
        # One MLflow run per trained model: the model goes into the run that logged training.
        mlflow_run_id=record.need("training").mlflow_run_id,
        extra_artifacts=[p for p in reports if p.exists()] + [Path(artifact.path) / "MODEL_CARD.md"],
        rule=rule,
        same_rows=same_rows,
        # Decided and recorded under the registry lock with the champion comparison, so the
        # champion cannot move between the two (tags, audit line, alias `challenger`).
        gate=gate,
    )
    facts = RegistrationFacts(
        model_name=model_name, version=int(info.version), mlflow_run_id=info.run_id, decision=info.decision,
        rechosen_from=int(info.rechosen_from) if info.rechosen_from else None,
    )  # fmt: skip
    updated = record.model_copy(update={"registration": facts})
    updated.save()
    return updated


def promote_run(
    record: RunRecord,
    rule: PromotionRule | None = None,
    actor: str = "risk-app",
    *,
    benchmark_margin: float | Literal["off"] | None = None,
) -> RunRecord:
    """Carry out a positive verdict: decide again under the registry lock against the champion
    of this moment (another run may have been promoted since), on the same path as
    `register_run` (same rows, benchmark gate: pass the same `benchmark_margin`), and move the
    alias if it wins."""
    registration = record.need("registration")
    if not registration.decision.promote:
        return record
    rule_used = rule or PromotionRule()
    same_rows = same_rows_evidence(record, registration.model_name, rule_used)
    gate = _benchmark_gate(record, rule_used, benchmark_margin)
    decision = mlflow_registry.promote_if_better(
        registration.model_name, registration.version, rule, actor=actor, same_rows=same_rows, gate=gate
    )
    changes = {"decision": decision, "promoted": decision.promote}
    updated = record.model_copy(update={"registration": registration.model_copy(update=changes)})
    updated.save()
    return updated


def champion_version(model_name: str) -> int | None:
    """The version behind alias `champion` of `model_name`, or None when it has none."""
    for row in mlflow_registry.list_versions(model_name):
        if mlflow_registry.CHAMPION in row["aliases"]:
            return int(row["version"])
    return None
