"""Where risk_app's MLflow registry lives, its lock, and the lookups every registry module shares.

`configure_mlflow()` points MLflow at risk_app's store (a local sqlite database under
`paths.home()/mlflow` unless `MLFLOW_TRACKING_URI` says otherwise) and creates the experiment;
`registry_lock(name)` is the file lock that every read-decide-move of an alias runs under.
The lookups (`existing_versions`, `get_version`, `alias_version`, `version_metrics`) turn
MLflow's "not found" into a `ModelNotFoundError` that lists what does exist. A version carries a
few tags (`VERSION_TAG_KEYS`); the rest of what registration knew is a JSON artifact of its run
(`facts_path`, `read_version_facts`), which promotion reads. The value helpers
(`flatten`, `param_text`, `numeric_metrics`, `lineage`) fit params, metrics and tags to
MLflow's documented limits.

Registration and alias moves live in `mlflow_registry`, resolving and listing in
`mlflow_resolve`; `mlflow_registry` re-exports these names (with their former leading
underscore where they were private there), so `mlflow_registry.X` keeps working.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from risk_app import paths
from risk_app.errors import ModelNotFoundError
from risk_app.registry.cache import ARTIFACT_FILE
from risk_app.storage.locks import file_lock

EXPERIMENT_NAME = "risk_app"
DEFAULT_MODEL_NAME = "credit_risk_model"
CHAMPION, CHALLENGER = "champion", "challenger"
METRIC_TAG_PREFIX = "metric."
# Callers may log split-prefixed metrics (test_roc_auc, val_roc_auc ...); promotion reads test_*.
TEST_METRIC_PREFIX = "test_"
# Artifact metadata copied onto the run and the version as tags (searchable in the MLflow UI).
LINEAGE_TAGS: tuple[str, ...] = ("method", "data_hash", "contract_version", "code_version")
# Tag on a version whose champion move completed; its value is the move's audit timestamp.
MOVE_TAG = "champion_move"
# What a registered version holds (`reconcile.register_and_decide`): the training run that made
# its weights, and the artifact made from them (its version names any stacker and the credit
# policy). One version per pair; a version whose run an earlier version shares names that one
# in RECHOSEN_TAG: same weights, the policy chosen again.
RUN_KEY_TAG = "risk_app.run_key"
ARTIFACT_KEY_TAG = "risk_app.artifact_key"
RECHOSEN_TAG = "policy_rechosen_from"

# The few tags a version carries (with `metric.roc_auc`, the weights pin and the promotion tags
# that alias moves add: at most about 15); everything else registration knew is in the JSON
# artifact `registration/<logged model id>.json` of the version's run (`read_version_facts`).
VERSION_TAG_KEYS: tuple[str, ...] = (
    "method", "dataset", "contract_version", "code_version", "policy",
    RUN_KEY_TAG, ARTIFACT_KEY_TAG, RECHOSEN_TAG,
)  # fmt: skip
VERSION_METRIC_TAGS: tuple[str, ...] = ("roc_auc",)
FACTS_DIR = "registration"

# MLflow's documented limits (param value 6000 chars, key 250; tags 5000 for portability).
MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE = 250, 6000, 5000


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
    """The lock file of model `name`, one per tracking store (two stores never share a lock)."""
    store = hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]
    return paths.home() / "mlflow" / f"registry-{store}-{name}.lock"


@contextmanager
def registry_lock(name: str, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the alias lock of registered model `name` (per tracking store, per host)."""
    configure_mlflow()
    with file_lock(registry_lock_path(name), timeout_s=timeout_s):
        yield


def registry_client() -> MlflowClient:
    """An MlflowClient on risk_app's store (configured first, so it never talks to ./mlruns)."""
    configure_mlflow()
    return MlflowClient()


# ----------------------------------------------------------------------------- values for MLflow


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys (`a.b`): MLflow params and metrics are flat."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def param_text(value: Any) -> str:
    """A param value as MLflow stores it: text (JSON for non-strings), cut to its length limit."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_VALUE]


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among (flattened) metrics; MLflow metrics are scalars only."""
    out: dict[str, float] = {}
    for key, value in flatten(metrics).items():
        # bools are ints in Python but not metrics; lists (confusion matrix) are not scalars.
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[key[:MAX_KEY]] = float(value)
    return out


def lineage(metadata: Mapping[str, Any]) -> dict[str, str]:
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


# -------------------------------------------------------------------------------------- lookups


def read_artifact_metadata(artifact_dir: Path) -> dict[str, Any]:
    """The risk_model.json of an artifact folder; ModelNotFoundError when absent or unreadable."""
    meta_path = artifact_dir / ARTIFACT_FILE
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{artifact_dir}: not a risk model folder (no {ARTIFACT_FILE})") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{meta_path}: unreadable model description ({exc})") from exc


def existing_versions(client: MlflowClient, name: str) -> tuple[list[ModelVersion], dict[str, str]]:
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


def describe_versions(versions: list[ModelVersion], aliases: Mapping[str, str]) -> str:
    """What exists, e.g. "versions: 1, 2; aliases: champion->v2", for "not found" messages."""
    listed = ", ".join(str(v.version) for v in versions) or "none"
    named = ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items())) or "none"
    return f"versions: {listed}; aliases: {named}"


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    versions, aliases = existing_versions(client, name)
    for mv in versions:
        if str(mv.version) == str(version):
            return mv
    raise ModelNotFoundError(
        f"model {name!r} has no version {str(version)!r} ({describe_versions(versions, aliases)})"
    )


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when no version does."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def same_training_run(a: ModelVersion, b: ModelVersion) -> bool:
    """Whether two versions hold the weights of the same training run (`RUN_KEY_TAG`)."""
    key = (a.tags or {}).get(RUN_KEY_TAG)
    return bool(key) and key == (b.tags or {}).get(RUN_KEY_TAG)


def facts_path(model_uri: str) -> str:
    """Where in its run a version's JSON facts lie: `registration/<logged model id>.json`
    (one file per version, also when two versions share a run: a policy chosen again)."""
    model_id = model_uri.removeprefix("models:/").strip("/").replace("/", "_")
    return f"{FACTS_DIR}/{model_id}.json"


def read_version_facts(mv: ModelVersion) -> dict[str, Any]:
    """The JSON facts registration logged for `mv` (params, metrics at full precision, tags);
    {} for a version registered before they existed, or whose run is gone."""
    if not mv.run_id or not str(mv.source or "").startswith("models:/"):
        return {}
    try:
        facts = mlflow.artifacts.load_text(f"runs:/{mv.run_id}/{facts_path(str(mv.source))}")
    except (MlflowException, OSError):
        return {}
    loaded = json.loads(facts)
    return loaded if isinstance(loaded, dict) else {}


def version_metrics(client: MlflowClient, mv: ModelVersion) -> dict[str, float]:
    """The version's metrics: from its JSON facts (full precision); for a version registered
    before those existed, its `metric.*` tags, else its run's logged metrics."""
    facts = read_version_facts(mv).get("metrics")
    if isinstance(facts, dict) and facts:
        return with_test_fallback({str(k): float(v) for k, v in facts.items()})
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
    return with_test_fallback(metrics)


def with_test_fallback(metrics: Mapping[str, float]) -> dict[str, float]:
    """Promotion compares test-set metrics: `roc_auc` also answers to a logged `test_roc_auc`."""
    out = dict(metrics)
    for key, value in metrics.items():
        if key.startswith(TEST_METRIC_PREFIX):
            out.setdefault(key[len(TEST_METRIC_PREFIX) :], value)
    return out


def tag_version(client: MlflowClient, name: str, version: str, key: str, value: Any) -> None:
    """Set a version tag, its value cut to the tag length limit."""
    client.set_model_version_tag(name, version, key, str(value)[:MAX_TAG_VALUE])
