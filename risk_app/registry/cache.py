"""Local copies of registered versions: downloaded once, verified on every use, evicted when bad.

`download_version(name, version)` returns the folder holding a version's `risk_model.json`
under `<home>/mlflow/cache/<store>/<name>/<version>`. Versions are immutable, so a download is
reused, but only after its weights match the sha256 recorded in `risk_model.json` and the one
pinned on the version's record at registration (`WEIGHTS_PIN_TAG`): a copy that fails is deleted
and fetched again, and a fresh copy that fails is deleted too (so once the store
is repaired the next call succeeds) and reported in one line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import mlflow

from risk_app import paths
from risk_app.atomic import atomic_dir
from risk_app.errors import ModelNotFoundError, RiskAppError
from risk_app.storage.hashing import sha256_file

ARTIFACT_FILE = "risk_model.json"
# The weights' sha256, written on the registry's version record when the version is registered:
# out of band, so rewriting an artifact's weights and its own manifest together is caught.
WEIGHTS_PIN_TAG = "weights_sha256_pinned"


def _cache_dir(name: str, version: str) -> Path:
    # Versions are immutable, so a download is reusable; keyed by store so two servers never mix.
    store = hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]
    return paths.home() / "mlflow" / "cache" / store / name / version


def find_artifact_folder(root: Path) -> Path | None:
    if (root / ARTIFACT_FILE).is_file():
        return root
    # A downloaded pyfunc model keeps the artifact under artifacts/<folder name>/.
    found = sorted(root.glob(f"artifacts/*/{ARTIFACT_FILE}"))
    return found[0].parent if found else None


def _weights_problem(folder: Path, pinned: str | None = None) -> str | None:
    """Why the folder's weights do not match their recorded sha256 (or, given `pinned`, the
    sha256 pinned on the registry's version record), or None when they do."""
    try:
        weights = json.loads((folder / ARTIFACT_FILE).read_text(encoding="utf-8")).get("weights")
    except (OSError, ValueError) as exc:
        return f"{folder / ARTIFACT_FILE}: unreadable ({exc})"
    if not isinstance(weights, Mapping) or not weights.get("sha256"):
        if pinned:
            return f"{folder / ARTIFACT_FILE} records no weights, but weights were pinned at registration"
        return None  # an artifact without recorded weights (not a fine-tuned model) has nothing to check
    path = folder / str(weights.get("file", "weights.safetensors"))
    if not path.is_file():
        return f"{path}: weights file is missing"
    actual = sha256_file(path)
    if actual != weights["sha256"]:
        actual, expected = actual[:16], str(weights["sha256"])[:16]
        return f"{path}: checksum mismatch (sha256 {actual}..., expected {expected}...)"
    if pinned and actual != pinned:
        # The manifest agrees with the file: both were rewritten. Only the pin tells.
        pinned_at = "pinned when the version was registered"
        return f"{path}: sha256 {actual[:16]}... is not the {pinned[:16]}... {pinned_at}"
    return None


def weights_pin(folder: Path) -> str | None:
    """The sha256 to pin on a new version's record: the weights file's, after checking it against
    the manifest (a folder whose weights fail their own manifest is refused); None without weights."""
    problem = _weights_problem(folder)
    if problem is not None:
        raise RiskAppError(f"{problem}; not registering it")
    weights = json.loads((folder / ARTIFACT_FILE).read_text(encoding="utf-8")).get("weights")
    if not isinstance(weights, Mapping) or not weights.get("sha256"):
        return None
    return sha256_file(folder / str(weights.get("file", "weights.safetensors")))


def evict_cached_version(name: str, version: str) -> bool:
    """Delete the local download of a version (the next use fetches it again). True if one existed."""
    target = _cache_dir(name, version)
    existed = target.exists()
    shutil.rmtree(target, ignore_errors=True)
    return existed


def _fetch_version(name: str, version: str) -> Path:
    target = _cache_dir(name, version)
    with atomic_dir(target) as tmp:
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(tmp))
        if find_artifact_folder(tmp) is None:
            raise ModelNotFoundError(
                f"model {name!r} v{version} holds no {ARTIFACT_FILE}; not a risk_app model"
            )
    folder = find_artifact_folder(target)
    assert folder is not None  # checked inside the atomic block
    return folder


def download_version(name: str, version: str, pinned: str | None = None) -> Path:
    """The verified local copy of a version; a copy failing its checksum is evicted and refetched.

    `pinned`: the weights' sha256 on the version's record (`WEIGHTS_PIN_TAG`, written at
    registration), checked beside the manifest's: weights rewritten with a manifest to match
    (in the cache or in the registry's store) are refused."""
    target = _cache_dir(name, version)
    folder = find_artifact_folder(target) if target.exists() else None
    if folder is not None and _weights_problem(folder, pinned) is None:
        return folder
    if folder is not None:
        evict_cached_version(name, version)  # corrupted on disk since it was fetched
    folder = _fetch_version(name, version)
    problem = _weights_problem(folder, pinned)
    if problem is not None:
        # Never keep a bad copy: once the store is repaired, the next call fetches a good one.
        evict_cached_version(name, version)
        raise RiskAppError(
            f"model {name!r} v{version}: {problem}; the registry's copy is corrupt or tampered with"
        )
    return folder
