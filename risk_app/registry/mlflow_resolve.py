"""Resolve a model reference (alias, version number or local folder) to a local artifact; list versions.

The read side of the registry: batch scoring, the CLI and the Dagster assets turn "champion",
"3" or "var/models/artifacts/x" into a folder holding risk_model.json (`resolve_model`), or
straight into a loaded `RiskModel` (`load_by_alias`). Registry downloads go through
`risk_app.registry.cache`, which checks the weights and fetches again when they fail.
Re-exported by `mlflow_registry`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from risk_app.errors import ModelNotFoundError
from risk_app.registry.artifact import load_risk_model
from risk_app.registry.cache import ARTIFACT_FILE, WEIGHTS_PIN_TAG, download_version, find_artifact_folder
from risk_app.registry.mlflow_store import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_NAME,
    METRIC_TAG_PREFIX,
    TEST_METRIC_PREFIX,
    describe_versions,
    existing_versions,
    get_version,
    read_artifact_metadata,
    registry_client,
)


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference turned into a local artifact folder (the one holding risk_model.json)."""

    version: str
    local_artifact_dir: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


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
        metadata = read_artifact_metadata(folder)
        return ResolvedModel(
            version=str(metadata.get("version", "local")),
            local_artifact_dir=folder.resolve(),
            metadata=metadata,
        )

    client = registry_client()
    versions, aliases = existing_versions(client, name)
    if text.isdigit():
        version = str(get_version(client, name, text).version)
    elif text in aliases:
        version = aliases[text]
    elif text == CHAMPION and versions:
        # Versions exist, none was promoted (the promotion rule or the benchmark gate held it back).
        held = aliases.get(CHALLENGER)
        latest = str(versions[-1].version)
        advice = no_champion_advice(name, held) if held else no_champion_advice(name, latest, ref=latest)
        raise ModelNotFoundError(
            f"model {name!r} has no champion yet ({describe_versions(versions, aliases)}); {advice}"
        )
    else:
        known = describe_versions(versions, aliases)
        raise ModelNotFoundError(f"model {name!r} has no alias {text!r} ({known})")
    pinned = (get_version(client, name, version).tags or {}).get(WEIGHTS_PIN_TAG)
    folder = download_version(name, version, pinned=pinned)
    return ResolvedModel(
        version=version, local_artifact_dir=folder, metadata=read_artifact_metadata(folder), name=name
    )


def no_champion_advice(name: str, version: str | int, ref: str = CHALLENGER) -> str:
    """What to do when no version of `name` is champion: promote `version` with a reason, or
    score with it as it is, by `ref` (its alias or number); both doors, CLI and Dagster, named."""
    return (
        f"promote version {version} with a reason (`risk-app models promote {version} --name {name} "
        f'--reason "..."` or Dagster\'s promote_version_job), or score with it as it is '
        f"(`--model {ref}`, or `model: {ref}` in the scoring launchpad)"
    )


def load_by_alias(alias: str = CHAMPION, name: str = DEFAULT_MODEL_NAME) -> Any:
    """The `RiskModel` behind an alias (or version / folder), ready to `predict_proba`."""
    return load_risk_model(resolve_model(alias, name=name).local_artifact_dir)


def list_versions(name: str = DEFAULT_MODEL_NAME) -> list[dict[str, Any]]:
    """One dict per version, oldest first: version, aliases, method, roc_auc, created, decision."""
    client = registry_client()
    try:
        versions, aliases = existing_versions(client, name)
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
