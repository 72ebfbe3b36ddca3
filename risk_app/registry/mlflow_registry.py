"""MLflow model registry: versioned risk models, champion/challenger aliases, an audit trail.

Each trained artifact folder (see `risk_app.registry.artifact`) is logged as an MLflow pyfunc
model, into the MLflow run that logged its training (one run per trained model), and registered
as a version of `credit_risk_model`; the version carries a few rounded tags and its run a JSON
artifact with everything else (`register_model_version`). The alias `champion` marks the model
batch scoring uses; `challenger` marks the latest one that did not win. Every alias change —
automatic (`promote_if_better`), manual (`set_champion`) or `rollback_champion` — is written to
the version's tags and appended to `<home>/registry_audit.jsonl`, so "who put this model in
production, and why" always has an answer.

By default MLflow runs on a local sqlite database under `paths.home()/mlflow`; set
`MLFLOW_TRACKING_URI` to use a tracking server instead. MLflow's usage telemetry is off unless
the user turns it on (`MLFLOW_DISABLE_TELEMETRY=false`; see `risk_app.registry.__init__`).

Consistency under concurrency: every read-decide-move of an alias (`promote_if_better`,
`record_decision`, `set_champion`, `rollback_champion`) runs under `registry_lock(name)`, a file
lock next to the registry, so the audit line names the champion the decision was really made
against. The audit line is written before the alias moves (a write-ahead intent) and the
version is tagged `champion_move=<audit timestamp>` after it: `reconcile.reconcile_registry`
completes a move that a kill interrupted. A cached download whose weights fail their checksum
is evicted and fetched again.

Users outside risk_app can load a version with plain MLflow (risk_app must be importable there).
The version is a models-from-code pyfunc (`risk_app/registry/pyfunc_entry.py`): loading runs
that file and rebuilds the model from the safetensors artifact; nothing is unpickled.

    import mlflow
    model = mlflow.pyfunc.load_model("models:/credit_risk_model@champion")
    model.predict(applications_df)          # DataFrame with probability_of_default

The registry is three modules: this one registers versions and moves aliases; `mlflow_store`
holds the store's setup, lock and shared lookups; `mlflow_resolve` turns a reference into a
local folder and lists versions. Their names are re-exported here, so `mlflow_registry.X` still
works. Registration and the alias moves stay in this module on purpose: the fault-injection
tests kill a child process at `mlflow_registry.log_run_contents`, `mlflow_registry.decide_and_record`
and `mlflow_registry._make_champion`, which only works while the callers look those names up here.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run, RunInfo
from mlflow.exceptions import MlflowException

from risk_app.errors import ConfigError as ConfigError
from risk_app.errors import ModelNotFoundError as ModelNotFoundError
from risk_app.errors import NothingToRollBackError, RiskAppError
from risk_app.evaluate.metric_table import rounded_metric
from risk_app.registry.audit import append_audit_record
from risk_app.registry.cache import WEIGHTS_PIN_TAG, weights_pin
from risk_app.registry.mlflow_resolve import ResolvedModel as ResolvedModel
from risk_app.registry.mlflow_resolve import list_versions as list_versions
from risk_app.registry.mlflow_resolve import load_by_alias as load_by_alias
from risk_app.registry.mlflow_resolve import resolve_model as resolve_model
from risk_app.registry.mlflow_store import CHALLENGER as CHALLENGER
from risk_app.registry.mlflow_store import CHAMPION as CHAMPION
from risk_app.registry.mlflow_store import DEFAULT_MODEL_NAME as DEFAULT_MODEL_NAME
from risk_app.registry.mlflow_store import EXPERIMENT_NAME as EXPERIMENT_NAME
from risk_app.registry.mlflow_store import LINEAGE_TAGS as LINEAGE_TAGS
from risk_app.registry.mlflow_store import MAX_KEY as _MAX_KEY
from risk_app.registry.mlflow_store import MAX_TAG_VALUE as _MAX_TAG_VALUE
from risk_app.registry.mlflow_store import METRIC_TAG_PREFIX as METRIC_TAG_PREFIX
from risk_app.registry.mlflow_store import MOVE_TAG as MOVE_TAG
from risk_app.registry.mlflow_store import TEST_METRIC_PREFIX as TEST_METRIC_PREFIX
from risk_app.registry.mlflow_store import VERSION_METRIC_TAGS, VERSION_TAG_KEYS, same_training_run
from risk_app.registry.mlflow_store import alias_version as _alias_version
from risk_app.registry.mlflow_store import configure_mlflow as configure_mlflow
from risk_app.registry.mlflow_store import describe_versions as _describe
from risk_app.registry.mlflow_store import existing_versions as _existing
from risk_app.registry.mlflow_store import facts_path as _facts_path
from risk_app.registry.mlflow_store import flatten as _flatten
from risk_app.registry.mlflow_store import get_version as _get_version
from risk_app.registry.mlflow_store import lineage as _lineage
from risk_app.registry.mlflow_store import numeric_metrics as _numeric_metrics
from risk_app.registry.mlflow_store import param_text as _param_text
from risk_app.registry.mlflow_store import read_artifact_metadata as _read_artifact_metadata
from risk_app.registry.mlflow_store import registry_client as _client
from risk_app.registry.mlflow_store import registry_lock as registry_lock
from risk_app.registry.mlflow_store import registry_lock_path as registry_lock_path
from risk_app.registry.mlflow_store import tag_version as _tag
from risk_app.registry.mlflow_store import version_metrics as _version_metrics
from risk_app.registry.mlflow_store import with_test_fallback as _with_test_fallback
from risk_app.registry.processes import process_tags
from risk_app.registry.promotion import (
    PromotionDecision,
    PromotionRule,
    SameRowsEvidence,
    decide_against,
    decide_rechosen_policy,
    gated,
)
from risk_app.registry.pyfunc_model import RiskModelPyfunc as RiskModelPyfunc
from risk_app.registry.pyfunc_model import log_run_contents

# RiskModelPyfunc is re-exported: code written against earlier versions imports it from here.
__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "DEFAULT_MODEL_NAME",
    "ModelVersionInfo",
    "ResolvedModel",
    "RiskModelPyfunc",
    "decide_and_record",
    "list_versions",
    "load_by_alias",
    "promote_if_better",
    "record_decision",
    "register_model_version",
    "registry_lock",
    "resolve_model",
    "rollback_champion",
    "set_champion",
]


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version and where it came from."""

    name: str
    version: str
    run_id: str
    source: str


# ------------------------------------------------------------------------------- registration


def register_model_version(
    artifact_dir: str | os.PathLike[str],
    *,
    metrics: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    run_name: str | None = None,
    extra_artifacts: Sequence[str | os.PathLike[str]] = (),
    mlflow_run_id: str = "",
) -> ModelVersionInfo:
    """Log `artifact_dir` as a pyfunc model and register it as a new version.

    One MLflow run per trained model: with `mlflow_run_id` (the run that logged training) the
    model, metrics, params, tags and reports go into that run, and the version links to it; its
    status and end time stay training's. Without one (or when that run is gone) a new run named
    `run_name` holds them. Params are flattened (`a.b`) and cut to MLflow's limits (a key the run
    already has keeps its value); only numeric metrics are logged, rounded as the metric table
    rounds them (`rounded_metric`). The version carries a few tags (`VERSION_TAG_KEYS`, the test
    `metric.roc_auc` rounded, the weights pin); everything else, metrics at full precision
    included, is the JSON artifact `registration/<logged model id>.json` of the run, which
    promotion reads (`mlflow_store.version_metrics`). `extra_artifacts` (report plots, model
    card ...) are logged on the run under `report/`.
    """
    folder = Path(artifact_dir).expanduser().resolve()
    metadata = _read_artifact_metadata(folder)
    pin = weights_pin(folder)  # refuses weights that fail their own manifest
    experiment_id = configure_mlflow()
    all_tags = {**_lineage(metadata), **{str(k): str(v) for k, v in (tags or {}).items()}}
    all_tags = {k[:_MAX_KEY]: v[:_MAX_TAG_VALUE] for k, v in all_tags.items()}
    extras = [Path(p) for p in extra_artifacts]
    missing = [str(p) for p in extras if not p.exists()]
    if missing:
        raise ConfigError(f"register_model_version: extra artifact(s) not found: {missing}")
    flat_params = {k[:_MAX_KEY]: _param_text(v) for k, v in _flatten(params or {}).items()}
    numeric = _numeric_metrics(metrics)

    run, reopened = _open_model_run(experiment_id, mlflow_run_id, run_name)
    run_id = run.info.run_id
    try:
        known = set(run.data.params) if reopened is not None else set()
        new_params = {k: v for k, v in flat_params.items() if k not in known}
        shown = {k: rounded_metric(k, v) for k, v in numeric.items()}
        model_uri = log_run_contents(folder, new_params, shown, all_tags, extras)
        facts = {
            "model_name": model_name, "model_uri": model_uri, "params": flat_params,
            "metrics": numeric, "tags": all_tags, "artifact": metadata,
        }  # fmt: skip
        mlflow.log_text(json.dumps(facts, indent=2, default=str), _facts_path(model_uri))
    except BaseException as exc:
        # Ctrl-C / SystemExit end the run KILLED, errors FAILED; a kill -9 leaves it RUNNING
        # until `reconcile.reconcile_registry` sees the pid is gone and ends it KILLED.
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        mlflow.end_run("KILLED" if interrupted else "FAILED")
        raise
    mlflow.end_run()
    if reopened is not None:  # the run's status and duration stay those of training
        _client().set_terminated(run_id, reopened.status, end_time=reopened.end_time)

    version_tags = {k: all_tags[k] for k in VERSION_TAG_KEYS if all_tags.get(k)}
    headline = _with_test_fallback(numeric)
    for key in VERSION_METRIC_TAGS:
        if key in headline:
            version_tags[f"{METRIC_TAG_PREFIX}{key}"] = repr(rounded_metric(key, headline[key]))
    if pin is not None:
        version_tags[WEIGHTS_PIN_TAG] = pin  # checked by every scoring of this version (`cache`)
    try:
        mv = mlflow.register_model(model_uri, model_name, tags=version_tags)
    except MlflowException as exc:
        raise RiskAppError(f"registering {folder} as {model_name!r} failed: {exc.message}") from exc
    return ModelVersionInfo(name=model_name, version=str(mv.version), run_id=run_id, source=str(mv.source))


def _open_model_run(
    experiment_id: str, mlflow_run_id: str, run_name: str | None
) -> tuple[Run, RunInfo | None]:
    """The active run to log the model into, and the training run's info when it is reopened.

    A reopened run is tagged with this process (`process_tags`), so reconciliation knows the
    live writer and ends it KILLED only if this process dies inside it."""
    if mlflow_run_id:
        try:
            earlier = _client().get_run(mlflow_run_id)
        except MlflowException:
            earlier = None
        if earlier is not None and earlier.info.lifecycle_stage == "active":
            run = mlflow.start_run(run_id=mlflow_run_id)
            mlflow.set_tags(process_tags())
            return run, earlier.info
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=process_tags()), None


# ------------------------------------------------------------------------------ alias moves


def _make_champion(
    client: MlflowClient, name: str, version: str, previous: str | None, intent: Mapping[str, Any]
) -> None:
    """Move `champion` to `version`; `intent` is the audit record announcing the move."""
    if previous is not None and previous != version:
        # The rollback chain: each champion remembers whom it replaced.
        _tag(client, name, version, "previous_champion", previous)
    client.set_registered_model_alias(name, CHAMPION, version)
    # Marks the announced move as done, so reconciliation never repeats it.
    _tag(client, name, version, MOVE_TAG, intent["timestamp"])
    challenger = _alias_version(client, name, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        client.delete_registered_model_alias(name, CHALLENGER)


def _decide_against_champion(
    client: MlflowClient,
    name: str,
    version: str | int,
    rule: PromotionRule,
    same_rows: SameRowsEvidence | None = None,
    gate: PromotionDecision | None = None,
) -> tuple[str, str | None, PromotionDecision]:
    """(version, champion version, verdict); the verdict's details name the champion it compared.

    On the same rows when `same_rows` re-scored this very champion, else on the recorded test
    metrics of each version (`promotion.decide_against`; the verdict says which); a verdict
    that would promote yields to `gate`'s refusal (the benchmark gate, `promotion.gated`). Every
    verdict of this module, first or made again, is made here."""
    candidate = _get_version(client, name, version)
    target = str(candidate.version)
    champion = _alias_version(client, name, CHAMPION)
    champion_version = str(champion.version) if champion is not None else None
    if champion_version == target:
        decision = PromotionDecision(
            promote=False, reason=f"version {target} is already the champion", details={}
        )
    elif champion is not None and same_training_run(candidate, champion):
        # The champion's own weights with another policy: judged as a re-chosen policy.
        decision = decide_rechosen_policy(
            _version_metrics(client, candidate), _version_metrics(client, champion), rule,
            champion_version=str(champion_version),
        )  # fmt: skip
    else:
        champion_metrics = _version_metrics(client, champion) if champion is not None else None
        decision = decide_against(
            _version_metrics(client, candidate), champion_metrics, rule,
            champion_version=champion_version, same_rows=same_rows,
        )  # fmt: skip
    decision = gated(decision, gate)
    details = {**decision.details, "champion_version": champion_version}
    return target, champion_version, decision.model_copy(update={"details": details})


def _record_verdict(
    client: MlflowClient,
    name: str,
    target: str,
    champion_version: str | None,
    decision: PromotionDecision,
    rule: PromotionRule | None,
    actor: str | None,
    *,
    promoted_word: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Why a version was promoted (or recommended) or rejected: version tags plus an audit line.

    Called under `registry_lock`, with `champion_version` read under the same lock.
    """
    verdict = promoted_word if decision.promote else "rejected"
    # The audit line goes first: it is the intent log `reconcile` rolls forward after a kill.
    record = append_audit_record(
        {"promoted": "promote", "recommended": "recommend", "rejected": "reject"}[verdict],
        name,
        from_version=champion_version,
        to_version=target,
        reason=decision.reason,
        actor=actor,
        extra={"rule": rule.model_dump() if rule else None, "details": decision.details, **(extra or {})},
    )
    _tag(client, name, target, "promotion_decision", verdict)
    _tag(client, name, target, "promotion_reason", decision.reason)
    return record


def decide_and_record(
    client: MlflowClient,
    name: str,
    version: str | int,
    rule: PromotionRule | None,
    actor: str | None,
    *,
    extra: Mapping[str, Any] | None = None,
    same_rows: SameRowsEvidence | None = None,
    gate: PromotionDecision | None = None,
) -> PromotionDecision:
    """Decide against the champion (through `gate`) and record it as a recommendation; caller
    holds the lock."""
    target, champion_version, decision = _decide_against_champion(
        client, name, version, rule or PromotionRule(), same_rows, gate
    )
    if champion_version != target:
        client.set_registered_model_alias(name, CHALLENGER, target)
    _record_verdict(
        client, name, target, champion_version, decision, rule, actor,
        promoted_word="recommended", extra=extra,
    )
    return decision


def record_decision(
    name: str,
    version: str | int,
    decision: PromotionDecision,
    rule: PromotionRule | None = None,
    *,
    actor: str | None = None,
    same_rows: SameRowsEvidence | None = None,
    gate: PromotionDecision | None = None,
) -> PromotionDecision:
    """Record a verdict without acting on it: tags, audit line, and alias `challenger`.

    For two-step promotion (a blocking check between verdict and `set_champion`, as in the
    Dagster training job): the version waits as challenger until someone or something promotes it.
    Under the registry lock: when the champion moved since `decision` was made (its
    `details["champion_version"]`), the verdict is made again against the champion of now, on
    the same path as the first (`same_rows` when it scored that champion, else the recorded
    metrics) and through the same `gate`, and that is the one recorded and returned. A verdict
    that promotes is recorded through `gate` too.
    """
    client = _client()
    with registry_lock(name):
        target = str(_get_version(client, name, version).version)
        champion = _alias_version(client, name, CHAMPION)
        champion_version = str(champion.version) if champion is not None else None
        made_against = decision.details.get("champion_version", champion_version)
        if made_against != champion_version:
            return decide_and_record(
                client, name, target, rule, actor,
                extra={"stale_decision_against": made_against}, same_rows=same_rows, gate=gate,
            )  # fmt: skip
        decision = gated(decision, gate)
        if champion_version != target:
            client.set_registered_model_alias(name, CHALLENGER, target)
        _record_verdict(
            client, name, target, champion_version, decision, rule, actor, promoted_word="recommended"
        )
        return decision


def promote_if_better(
    name: str,
    version: str | int,
    rule: PromotionRule | None = None,
    *,
    actor: str | None = None,
    same_rows: SameRowsEvidence | None = None,
    gate: PromotionDecision | None = None,
) -> PromotionDecision:
    """Compare `version` with the current champion; set `champion` if it wins, else `challenger`.

    On the same rows when `same_rows` re-scored the current champion on the challenger's test
    rows, else on each version's recorded test metrics (the reason says which); a win yields to
    `gate`'s refusal (the benchmark gate: `promotion.gated`). Read, decision
    and alias move happen under one registry lock, so the champion compared is the champion
    replaced. The decision and its reason go onto the version's tags
    (`promotion_decision`, `promotion_reason`) and into the audit log.
    """
    rule = rule or PromotionRule()
    client = _client()
    with registry_lock(name):
        target, champion_version, decision = _decide_against_champion(
            client, name, version, rule, same_rows, gate
        )
        intent = _record_verdict(
            client, name, target, champion_version, decision, rule, actor, promoted_word="promoted"
        )
        if decision.promote:
            _make_champion(client, name, target, champion_version, intent)
        elif champion_version != target:
            client.set_registered_model_alias(name, CHALLENGER, target)
    return decision


def set_champion(name: str, version: str | int, reason: str, actor: str | None = None) -> str:
    """Make `version` the champion (a review, or carrying out a recorded verdict).

    Returns the previous champion's version, or '' when there was none. To carry out a verdict
    that may have gone stale (another model promoted meanwhile), prefer `promote_if_better`,
    which decides again under the lock.
    """
    if not reason or not reason.strip():
        raise ConfigError("set_champion: a reason is required for the audit log")
    client = _client()
    with registry_lock(name):
        target = str(_get_version(client, name, version).version)
        current = _alias_version(client, name, CHAMPION)
        previous = str(current.version) if current is not None else None
        if previous == target:
            # Nothing would move; an audit line saying otherwise would mislead a reviewer.
            raise ConfigError(f"version {target} of {name!r} is already the champion; nothing to do")
        intent = append_audit_record(
            "set_champion", name, from_version=previous, to_version=target, reason=reason, actor=actor
        )
        _tag(client, name, target, "promotion_decision", "set_champion")
        _tag(client, name, target, "promotion_reason", reason)
        _tag(client, name, target, "promoted_by", actor or getpass.getuser())
        _make_champion(client, name, target, previous, intent)
    return previous or ""


def rollback_champion(name: str, reason: str, actor: str | None = None) -> str:
    """Give the champion alias back to the model the current champion replaced. Returns that version.

    `NothingToRollBackError` (one sentence, nothing moved, no audit line) when there is no
    champion or the champion is the first one."""
    if not reason or not reason.strip():
        raise ConfigError("rollback_champion: a reason is required for the audit log")
    client = _client()
    with registry_lock(name):
        versions, aliases = _existing(client, name)
        current = _alias_version(client, name, CHAMPION)
        if current is None:
            raise NothingToRollBackError(
                f"nothing to roll back: {name!r} has no champion ({_describe(versions, aliases)})"
            )
        previous = (current.tags or {}).get("previous_champion")
        if not previous:
            raise NothingToRollBackError(
                f"nothing to roll back to: version {current.version} is the first champion of {name!r} "
                "and stays champion"
            )
        target = str(_get_version(client, name, previous).version)
        intent = append_audit_record(
            "rollback", name, from_version=str(current.version), to_version=target, reason=reason, actor=actor
        )
        _tag(client, name, str(current.version), "promotion_decision", "rolled_back")
        _tag(client, name, str(current.version), "promotion_reason", reason)
        # The restored version keeps its own `previous_champion`, so repeated rollbacks walk further back.
        client.set_registered_model_alias(name, CHAMPION, target)
        _tag(client, name, target, MOVE_TAG, intent["timestamp"])
        return target
