"""MLflow model registry: versioned risk models, champion/challenger aliases, an audit trail.

Each trained artifact folder (see `risk_app.registry.artifact`) is logged as an MLflow pyfunc
model and registered as a version of `credit_risk_model`. The alias `champion` marks the model
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
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from risk_app import paths
from risk_app.errors import ConfigError, ModelNotFoundError, RiskAppError
from risk_app.registry.audit import append_audit_record
from risk_app.registry.cache import (
    ARTIFACT_FILE,
    download_version,
    find_artifact_folder,
)
from risk_app.registry.processes import process_tags
from risk_app.registry.promotion import PromotionDecision, PromotionRule, decide
from risk_app.registry.pyfunc_model import RiskModelPyfunc, log_run_contents
from risk_app.storage.locks import file_lock

# RiskModelPyfunc is re-exported: code written against earlier versions imports it from here.
__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "DEFAULT_MODEL_NAME",
    "ModelVersionInfo",
    "ResolvedModel",
    "RiskModelPyfunc",
    "decide_and_record",
    "evaluate_promotion",
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

EXPERIMENT_NAME = "risk_app"
DEFAULT_MODEL_NAME = "credit_risk_model"
CHAMPION, CHALLENGER = "champion", "challenger"
METRIC_TAG_PREFIX = "metric."
# Callers may log split-prefixed metrics (test_roc_auc, val_roc_auc ...); promotion reads test_*.
TEST_METRIC_PREFIX = "test_"
# Artifact metadata copied onto the run and the version as tags (searchable in the MLflow UI).
LINEAGE_TAGS: tuple[str, ...] = ("method", "data_hash", "contract_version", "code_version")


# MLflow's documented limits (param value 6000 chars, key 250; tags 5000 for portability).
_MAX_KEY, _MAX_PARAM_VALUE, _MAX_TAG_VALUE, _PARAM_BATCH = 250, 6000, 5000, 100


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version and where it came from."""

    name: str
    version: str
    run_id: str
    source: str


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference turned into a local artifact folder (the one holding risk_model.json)."""

    version: str
    local_artifact_dir: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


# ---------------------------------------------------------------------------------------- setup


def configure_mlflow() -> str:
    """Point MLflow (tracking + registry) at risk_app's store; create the experiment. Returns its id."""
    uri = paths.mlflow_tracking_uri()
    _telemetry_off_unless_asked()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # Progress bars on every artifact download are noise in logs and Dagster output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    # A tracking server decides where artifacts go; a local store (sqlite/file) would otherwise
    # default to ./mlruns in whatever folder the process happens to run from.
    is_local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    location = paths.mlflow_artifact_root() if is_local else None
    try:
        return mlflow.create_experiment(EXPERIMENT_NAME, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and create.
        experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is None:
            raise
        return experiment.experiment_id


def _telemetry_off_unless_asked() -> None:
    # risk_app.registry sets MLFLOW_DISABLE_TELEMETRY before mlflow is imported; if something
    # imported mlflow earlier, its telemetry client was created then: drop it now.
    from mlflow.telemetry import get_telemetry_client, set_telemetry_client

    if os.environ.get("MLFLOW_DISABLE_TELEMETRY", "").lower() == "true" and get_telemetry_client():
        set_telemetry_client()


def registry_lock_path(name: str) -> Path:
    store = hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]
    return paths.home() / "mlflow" / f"registry-{store}-{name}.lock"


@contextmanager
def registry_lock(name: str, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the alias lock of registered model `name` (per tracking store, per host)."""
    configure_mlflow()
    with file_lock(registry_lock_path(name), timeout_s=timeout_s):
        yield


def _client() -> MlflowClient:
    configure_mlflow()
    return MlflowClient()


# -------------------------------------------------------------------------------------- helpers


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM_VALUE]


def _numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in _flatten(metrics).items():
        # bools are ints in Python but not metrics; lists (confusion matrix) are not scalars.
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[key[:_MAX_KEY]] = float(value)
    return out


def _read_artifact_metadata(artifact_dir: Path) -> dict[str, Any]:
    meta_path = artifact_dir / ARTIFACT_FILE
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{artifact_dir}: not a risk model folder (no {ARTIFACT_FILE})") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{meta_path}: unreadable model description ({exc})") from exc


def _lineage(metadata: Mapping[str, Any]) -> dict[str, str]:
    """method/data_hash/contract_version/code_version from the top level or one nested dict."""
    found: dict[str, str] = {}
    for key in LINEAGE_TAGS:
        if metadata.get(key) is not None:
            found[key] = str(metadata[key])
            continue
        for nested in metadata.values():
            if isinstance(nested, Mapping) and nested.get(key) is not None:
                found[key] = str(nested[key])
                break
    return found


def _existing(client: MlflowClient, name: str) -> tuple[list[ModelVersion], dict[str, str]]:
    """All versions and the alias->version map of a registered model; clear error if absent."""
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no registered model named {name!r} at {mlflow.get_tracking_uri()}; "
            "register a trained model first"
        ) from exc
    versions = client.search_model_versions(f"name='{name}'")
    aliases = {alias: str(version) for alias, version in (registered.aliases or {}).items()}
    return sorted(versions, key=lambda v: int(v.version)), aliases


def _describe(versions: list[ModelVersion], aliases: Mapping[str, str]) -> str:
    listed = ", ".join(str(v.version) for v in versions) or "none"
    named = ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items())) or "none"
    return f"versions: {listed}; aliases: {named}"


def _get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    versions, aliases = _existing(client, name)
    for mv in versions:
        if str(mv.version) == str(version):
            return mv
    raise ModelNotFoundError(
        f"model {name!r} has no version {str(version)!r} ({_describe(versions, aliases)})"
    )


def _alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _version_metrics(client: MlflowClient, mv: ModelVersion) -> dict[str, float]:
    """Metrics stored as `metric.*` version tags, else the run's logged metrics."""
    tags = mv.tags or {}
    metrics: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue  # a hand-edited tag that is not a number is not a metric
    if not metrics and mv.run_id:
        try:
            metrics = dict(client.get_run(mv.run_id).data.metrics)
        except MlflowException:
            metrics = {}
    return _with_test_fallback(metrics)


def _with_test_fallback(metrics: Mapping[str, float]) -> dict[str, float]:
    """Promotion compares test-set metrics: `roc_auc` also answers to a logged `test_roc_auc`."""
    out = dict(metrics)
    for key, value in metrics.items():
        if key.startswith(TEST_METRIC_PREFIX):
            out.setdefault(key[len(TEST_METRIC_PREFIX) :], value)
    return out


def _tag(client: MlflowClient, name: str, version: str, key: str, value: Any) -> None:
    client.set_model_version_tag(name, version, key, str(value)[:_MAX_TAG_VALUE])


MOVE_TAG = "champion_move"


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


# -------------------------------------------------------------------------------------- public


def register_model_version(
    artifact_dir: str | os.PathLike[str],
    *,
    metrics: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    run_name: str | None = None,
    extra_artifacts: Sequence[str | os.PathLike[str]] = (),
) -> ModelVersionInfo:
    """Log `artifact_dir` as a pyfunc model in a new run and register it as a new version.

    Params are flattened (`a.b`) and truncated to MLflow's limits; only numeric metrics are
    logged; lineage tags (method, data_hash, contract_version, code_version) come from the
    artifact's risk_model.json unless `tags` overrides them. Metrics are also stored as
    `metric.<name>` version tags so promotion can compare versions without reading runs.
    `extra_artifacts` (report plots, model card ...) are logged on the run under `report/`.
    """
    folder = Path(artifact_dir).expanduser().resolve()
    metadata = _read_artifact_metadata(folder)
    experiment_id = configure_mlflow()
    all_tags = {**_lineage(metadata), **{str(k): str(v) for k, v in (tags or {}).items()}}
    all_tags = {k[:_MAX_KEY]: v[:_MAX_TAG_VALUE] for k, v in all_tags.items()}
    extras = [Path(p) for p in extra_artifacts]
    missing = [str(p) for p in extras if not p.exists()]
    if missing:
        raise ConfigError(f"register_model_version: extra artifact(s) not found: {missing}")
    flat_params = {k[:_MAX_KEY]: _param_text(v) for k, v in _flatten(params or {}).items()}
    numeric = _numeric_metrics(metrics)

    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=process_tags())
    try:
        model_uri = log_run_contents(folder, flat_params, numeric, all_tags, extras)
    except BaseException as exc:
        # Ctrl-C / SystemExit end the run KILLED, errors FAILED; a kill -9 leaves it RUNNING
        # until `reconcile.reconcile_registry` sees the pid is gone and ends it KILLED.
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        mlflow.end_run("KILLED" if interrupted else "FAILED")
        raise
    mlflow.end_run()
    run_id = run.info.run_id

    version_tags = {**all_tags, **{f"{METRIC_TAG_PREFIX}{k}"[:_MAX_KEY]: repr(v) for k, v in numeric.items()}}
    try:
        mv = mlflow.register_model(model_uri, model_name, tags=version_tags)
    except MlflowException as exc:
        raise RiskAppError(f"registering {folder} as {model_name!r} failed: {exc.message}") from exc
    return ModelVersionInfo(name=model_name, version=str(mv.version), run_id=run_id, source=str(mv.source))


def _decide_against_champion(
    client: MlflowClient, name: str, version: str | int, rule: PromotionRule
) -> tuple[str, str | None, PromotionDecision]:
    """(version, champion version, verdict); the verdict's details name the champion it compared."""
    candidate = _get_version(client, name, version)
    target = str(candidate.version)
    champion = _alias_version(client, name, CHAMPION)
    champion_version = str(champion.version) if champion is not None else None
    if champion_version == target:
        decision = PromotionDecision(
            promote=False, reason=f"version {target} is already the champion", details={}
        )
    else:
        champion_metrics = _version_metrics(client, champion) if champion is not None else None
        decision = decide(_version_metrics(client, candidate), champion_metrics, rule)
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


def evaluate_promotion(name: str, version: str | int, rule: PromotionRule | None = None) -> PromotionDecision:
    """The verdict of `rule` for `version` against the current champion; changes nothing.

    `details["champion_version"]` names the champion it was made against, so `record_decision`
    can tell when the champion moved in between.
    """
    client = _client()
    return _decide_against_champion(client, name, version, rule or PromotionRule())[2]


def decide_and_record(
    client: MlflowClient,
    name: str,
    version: str | int,
    rule: PromotionRule | None,
    actor: str | None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> PromotionDecision:
    """Decide against the champion and record it as a recommendation; caller holds the lock."""
    target, champion_version, decision = _decide_against_champion(
        client, name, version, rule or PromotionRule()
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
) -> PromotionDecision:
    """Record a verdict without acting on it: tags, audit line, and alias `challenger`.

    For two-step promotion (a blocking check between verdict and `set_champion`, as in the
    Dagster training job): the version waits as challenger until someone or something promotes it.
    Under the registry lock: when the champion moved since `decision` was made (its
    `details["champion_version"]`), the verdict is made again against the champion of now, and
    that is the one recorded and returned.
    """
    client = _client()
    with registry_lock(name):
        target = str(_get_version(client, name, version).version)
        champion = _alias_version(client, name, CHAMPION)
        champion_version = str(champion.version) if champion is not None else None
        made_against = decision.details.get("champion_version", champion_version)
        if made_against != champion_version:
            return decide_and_record(
                client, name, target, rule, actor, extra={"stale_decision_against": made_against}
            )
        if champion_version != target:
            client.set_registered_model_alias(name, CHALLENGER, target)
        _record_verdict(
            client, name, target, champion_version, decision, rule, actor, promoted_word="recommended"
        )
        return decision


def promote_if_better(
    name: str, version: str | int, rule: PromotionRule | None = None, *, actor: str | None = None
) -> PromotionDecision:
    """Compare `version` with the current champion; set `champion` if it wins, else `challenger`.

    Read, decision and alias move happen under one registry lock, so the champion compared is
    the champion replaced. The decision and its reason go onto the version's tags
    (`promotion_decision`, `promotion_reason`) and into the audit log.
    """
    rule = rule or PromotionRule()
    client = _client()
    with registry_lock(name):
        target, champion_version, decision = _decide_against_champion(client, name, version, rule)
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
        intent = append_audit_record(
            "set_champion", name, from_version=previous, to_version=target, reason=reason, actor=actor
        )
        _tag(client, name, target, "promotion_decision", "set_champion")
        _tag(client, name, target, "promotion_reason", reason)
        _tag(client, name, target, "promoted_by", actor or getpass.getuser())
        _make_champion(client, name, target, previous, intent)
    return previous or ""


def rollback_champion(name: str, reason: str, actor: str | None = None) -> str:
    """Give the champion alias back to the model the current champion replaced. Returns that version."""
    if not reason or not reason.strip():
        raise ConfigError("rollback_champion: a reason is required for the audit log")
    client = _client()
    with registry_lock(name):
        versions, aliases = _existing(client, name)
        current = _alias_version(client, name, CHAMPION)
        if current is None:
            raise ModelNotFoundError(
                f"model {name!r} has no champion to roll back ({_describe(versions, aliases)})"
            )
        previous = (current.tags or {}).get("previous_champion")
        if not previous:
            raise ModelNotFoundError(
                f"champion v{current.version} of {name!r} replaced no earlier champion; "
                "nothing to roll back to"
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


def resolve_model(ref: str | int | os.PathLike[str], name: str = DEFAULT_MODEL_NAME) -> ResolvedModel:
    """Turn "champion"/"challenger" (any alias), a version number or a local folder into a local folder."""
    text = str(ref).strip()
    if not text:
        raise ModelNotFoundError(
            "empty model reference; use an alias (champion), a version number or a folder"
        )
    local = Path(text).expanduser()
    looks_like_path = isinstance(ref, os.PathLike) or os.sep in text or text.startswith(".")
    if looks_like_path or (local.is_dir() and find_artifact_folder(local) is not None):
        folder = find_artifact_folder(local) if local.is_dir() else None
        if folder is None:
            raise ModelNotFoundError(f"{local}: no risk model folder there (expected {ARTIFACT_FILE})")
        metadata = _read_artifact_metadata(folder)
        return ResolvedModel(
            version=str(metadata.get("version", "local")),
            local_artifact_dir=folder.resolve(),
            metadata=metadata,
        )

    client = _client()
    versions, aliases = _existing(client, name)
    if text.isdigit():
        version = str(_get_version(client, name, text).version)
    elif text in aliases:
        version = aliases[text]
    else:
        raise ModelNotFoundError(f"model {name!r} has no alias {text!r} ({_describe(versions, aliases)})")
    folder = download_version(name, version)
    return ResolvedModel(
        version=version, local_artifact_dir=folder, metadata=_read_artifact_metadata(folder), name=name
    )


def load_by_alias(alias: str = CHAMPION, name: str = DEFAULT_MODEL_NAME) -> Any:
    """The `RiskModel` behind an alias (or version / folder), ready to `predict_proba`."""
    from risk_app.registry.artifact import load_risk_model

    return load_risk_model(resolve_model(alias, name=name).local_artifact_dir)


def list_versions(name: str = DEFAULT_MODEL_NAME) -> list[dict[str, Any]]:
    """One dict per version, oldest first: version, aliases, method, roc_auc, created, decision."""
    client = _client()
    try:
        versions, aliases = _existing(client, name)
    except ModelNotFoundError:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    rows = []
    for mv in versions:
        tags = mv.tags or {}
        auc = tags.get(
            f"{METRIC_TAG_PREFIX}roc_auc", tags.get(f"{METRIC_TAG_PREFIX}{TEST_METRIC_PREFIX}roc_auc")
        )
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(by_version.get(str(mv.version), [])),
                "method": tags.get("method"),
                "roc_auc": float(auc) if auc is not None else None,
                "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(),
                "promotion_decision": tags.get("promotion_decision"),
                "promotion_reason": tags.get("promotion_reason"),
                "run_id": mv.run_id,
            }
        )
    return rows
