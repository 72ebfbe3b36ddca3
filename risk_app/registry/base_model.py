"""Pinned base models: the artifact records what it was trained on, scoring refuses anything else.

A risk model's artifact holds only what fine-tuning changed; the rest is the base model, loaded
again at scoring time from the same name. If those base files change (a re-download, an edited
folder, a hub revision moved on), the same artifact gives different probabilities. So:

* `pin_base_model(name, model)` resolves the folder the loader reads for `name` and records the
  sha256 of every file in it (and the hub revision for a hub id), stored as
  `risk_model.json["base_model_pins"]`;
* `verify_base_model(name, pins)` hashes the folder again and raises `BaseModelChangedError`
  naming the first file that is missing, changed or added;
* `check_base_model_files(folder)` refuses, in one line, a base that holds only pickled weights
  (`pytorch_model.bin`: unpickling can run code) or a truncated/corrupt safetensors file.

    pins = pin_base_model("tiny-qwen2")
    verify_base_model("tiny-qwen2", pins)     # raises if a file changed since
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from risk_app.errors import RiskAppError
from risk_app.models.loader import resolve_source
from risk_app.storage.hashing import sha256_file

PINS_KEY = "base_model_pins"
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Files that change what is loaded: an added one is a different base even if the others match.
WEIGHT_SUFFIXES = (".safetensors", ".gguf", *PICKLED_SUFFIXES)
SourceKind = Literal["folder", "gguf", "hub"]

# Hashing a 1 GB base takes seconds; a long-running process (Dagster, a sensor) reloads often.
_HASH_MEMO: dict[tuple[str, int, int], str] = {}


class BaseModelError(RiskAppError):
    """A base model that cannot be used safely: changed since training, pickled or corrupt."""


class BaseModelChangedError(BaseModelError):
    """A base model file differs from what the artifact was trained on."""


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256_file(path)
    return _HASH_MEMO[key]


def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    try:
        # huggingface_hub only for a hub id, to find its local snapshot.
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any hub failure means "not in the local cache"
        return None


def resolve_base_files(name: str, revision: str | None = None) -> tuple[SourceKind, Path, list[Path]]:
    """(kind, folder, files) the loader reads for base `name` (tiny, catalogue, folder, gguf, hub)."""
    source, gguf_file = resolve_source(name)
    if gguf_file:
        folder = Path(source)
        return "gguf", folder, [folder / gguf_file]
    folder = Path(source)
    kind: SourceKind = "folder"
    if not folder.is_dir():
        snapshot = _hub_snapshot(source, revision)
        if snapshot is None:
            raise BaseModelError(f"base model {name!r}: not a local folder and not in the hub cache")
        folder, kind = snapshot, "hub"
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return kind, folder, files


def _check_safetensors(path: Path) -> None:
    """Header and data extent of a safetensors file, without loading any tensor."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if 8 + header_len > size:
                raise ValueError("header runs past the end of the file")
            header = json.loads(handle.read(header_len))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        problem = f"{path}: corrupt safetensors file ({exc}); fetch the base model again"
        raise BaseModelError(problem) from None
    expected = 8 + header_len + max(ends, default=0)
    if expected != size:
        raise BaseModelError(
            f"{path}: truncated or corrupt safetensors file ({size} bytes, header says {expected}); "
            "fetch the base model again"
        )


def check_base_model_files(folder: Path, files: list[Path]) -> None:
    """Refuse pickled-only weights and corrupt safetensors with one clear line."""
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    pickled = [p for p in files if p.suffix in PICKLED_SUFFIXES]
    if pickled and not safetensors and not any(p.suffix == ".gguf" for p in files):
        raise BaseModelError(
            f"{folder}: the base model's weights are pickled ({pickled[0].name}), which can run code "
            "when loaded; risk_app loads only safetensors or GGUF. Convert it once with "
            "save_pretrained(..., safe_serialization=True) in a sandbox"
        )
    for path in safetensors:
        _check_safetensors(path)


def pin_base_model(name: str, model: Any | None = None) -> dict[str, Any]:
    """sha256 of every base file (relative path -> hex) and the hub revision when there is one."""
    revision = getattr(getattr(model, "config", None), "_commit_hash", None) if model is not None else None
    kind, folder, files = resolve_base_files(name, revision)
    check_base_model_files(folder, files)
    if kind == "hub" and revision is None:
        revision = folder.name  # the hub cache keeps each revision under snapshots/<commit sha>
    return {
        "name": name,
        "kind": kind,
        "revision": revision if kind == "hub" else None,
        "files": {p.relative_to(folder).as_posix(): _sha256(p) for p in files},
    }


def verify_base_model(name: str, pins: Mapping[str, Any] | None) -> Path:
    """The base folder, after checking it matches `pins`; `BaseModelChangedError` names the file."""
    # The files the loader will read now (for a hub id: the cached current revision), not the
    # recorded revision's snapshot: a hub revision that moved on shows up as changed files.
    kind, folder, files = resolve_base_files(name)
    check_base_model_files(folder, files)
    if not pins:
        return folder  # an artifact saved before pinning: nothing recorded to compare with
    recorded: Mapping[str, str] = pins.get("files", {})
    found = {p.relative_to(folder).as_posix(): p for p in files}
    for rel, expected in sorted(recorded.items()):
        if rel not in found:
            raise BaseModelChangedError(f"{folder / rel}: base model file is missing (recorded at training)")
        actual = _sha256(found[rel])
        if actual != expected:
            raise BaseModelChangedError(
                f"{folder / rel}: base model file changed since this model was trained "
                f"(sha256 {actual[:16]}..., recorded {expected[:16]}...); refusing to score with another base"
            )
    added = [rel for rel in found if rel not in recorded and rel.endswith(WEIGHT_SUFFIXES)]
    if added:
        raise BaseModelChangedError(
            f"{folder / added[0]}: weights file added to the base model since training"
        )
    return folder


__all__ = [
    "PINS_KEY",
    "BaseModelChangedError",
    "BaseModelError",
    "check_base_model_files",
    "pin_base_model",
    "resolve_base_files",
    "verify_base_model",
]
