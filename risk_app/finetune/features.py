"""Pooled features of a frozen base model: one forward pass per application, cached on disk.

`freeze` with no decoder layer trained is a classification head on frozen features, so the
expensive part — the base model's forward pass — does not depend on the head, the epoch, the
seed or the split. `pooled_features(base, texts)` runs it once per distinct text and keeps the
result under `<home>/features/`, keyed by

* the base model's content hash (catalogue SHA-256, or a hash of the folder's/GGUF's files),
* the serialization template id, the token limit, the precision and the layer,
* the SHA-256 of each text,

so later calls (other seeds, other heads, other splits of the same data) only read the file.
Two poolings are stored from the same pass: `last` — the hidden state of the last real token,
which is what `*ForSequenceClassification` feeds its `score` head — and `mean` over the real
tokens. Fit any head on the result (`risk_app/finetune/frozen_head.py`).

    python -c "from risk_app.finetune.features import pooled_features; \
print(pooled_features('tiny-qwen2', ['Duration: 6 months.']).shape)"
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from filelock import FileLock
from tqdm import tqdm

from risk_app import paths
from risk_app.atomic import atomic_write_bytes, atomic_write_json
from risk_app.finetune.predict import encode_texts, model_device, pad_batch
from risk_app.models.catalogue import get_base, is_catalogue_name
from risk_app.models.loader import load_classifier, resolve_source

Pooling = Literal["last", "mean"]
Precision = Literal["fp32", "bf16"]
POOLINGS: tuple[Pooling, ...] = ("last", "mean")
SAVE_EVERY = 256  # texts per cache write while computing
# Bump when the way features are computed changes, so stale caches are not reused.
FEATURE_VERSION = 1
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".gguf", ".model", ".txt")


@dataclass(frozen=True)
class FeatureSettings:
    """What, besides the base and the text, changes a feature vector (all part of the cache key)."""

    max_length: int = 256
    precision: Precision = "fp32"
    layer: int = -1  # decoder layer whose output (after the final norm) is read: -1 = the last
    template: str = "default"  # id of the serialization template that produced the texts

    def key(self) -> str:
        return f"v{FEATURE_VERSION}-t{self.template}-len{self.max_length}-{self.precision}-L{self.layer}"


def features_dir() -> Path:
    path = paths.home() / "features"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def base_fingerprint(base_model: str) -> str:
    """A content hash of the base model (memoised by path, size and mtime under features_dir)."""
    if is_catalogue_name(base_model):
        return get_base(base_model).sha256
    source, gguf_file = resolve_source(base_model)
    root = Path(source)
    if not root.exists():  # a hub id: only its name identifies it
        return hashlib.sha256(f"hub:{source}".encode()).hexdigest()
    files = [root / gguf_file] if gguf_file else sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES
    )  # fmt: skip
    memo_path = features_dir() / "base_hashes.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        memo_key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if memo_key not in memo:
            memo[memo_key] = _sha256_file(file)
        digest.update(f"{file.name}:{memo[memo_key]}\n".encode())
    atomic_write_json(memo_path, memo)
    return digest.hexdigest()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> dict[Pooling, torch.Tensor]:
    """Last real token (either padding side) and mean over real tokens, in float32."""
    hidden = hidden.float()
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last_index = (positions * mask).argmax(dim=1)
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_index]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    return {"last": last, "mean": mean}


def _layer_output(backbone: Any, out: Any, layer: int) -> torch.Tensor:
    """The output of decoder layer `layer` (-1 = the last) after the final norm.

    The last entry of `hidden_states` is already normed; earlier ones are the raw residual
    stream, so the final norm is applied to them: a layer's features then do not depend on
    whether the layers above it were dropped (`_load_frozen` drops them).
    """
    n_layers = len(out.hidden_states) - 1 if out.hidden_states is not None else None
    if layer == -1 or layer == n_layers:
        return out.last_hidden_state
    norm = getattr(backbone, "norm", None)
    hidden = out.hidden_states[layer]
    return norm(hidden) if norm is not None else hidden


def extract_features(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    layers: Sequence[int] = (-1,),
    *,
    max_length: int = 256,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[tuple[int, Pooling], np.ndarray]:
    """{(layer, pooling): (n, hidden) float32} from one forward pass of the backbone per batch.

    `model` is a `*ForSequenceClassification` (its backbone is used, its head is not) or a
    bare decoder. Texts are sorted by length so batches pad little; results are in input order.
    """
    backbone = getattr(model, getattr(model, "base_model_prefix", "model"), model)
    sequences = encode_texts(tokenizer, list(texts), max_length)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    device = model_device(model)
    chunks: dict[tuple[int, Pooling], list[np.ndarray]] = {(lay, p): [] for lay in layers for p in POOLINGS}
    model.eval()
    bar = tqdm(total=len(order), desc="features", unit="text", disable=not progress)
    with torch.inference_mode(), bar:
        for start in range(0, len(order), batch_size):
            batch_idx = order[start : start + batch_size]
            padded = pad_batch(tokenizer, [sequences[i] for i in batch_idx])
            batch = {k: v.to(device) for k, v in padded.items()}
            out = backbone(**batch, output_hidden_states=any(layer != -1 for layer in layers))
            for layer in layers:
                hidden = _layer_output(backbone, out, layer)
                for pooling, pooled in _pool(hidden, batch["attention_mask"]).items():
                    chunks[(layer, pooling)].append(pooled.cpu().numpy())
            bar.update(len(batch_idx))
    inverse = np.argsort(np.asarray(order))
    return {k: np.concatenate(v, axis=0)[inverse] for k, v in chunks.items()}


class FeatureStore:
    """The cached vectors of one (base, settings): `<features>/<base hash>/<settings key>.npz`."""

    def __init__(self, base_hash: str, settings: FeatureSettings, root: Path | None = None) -> None:
        self.path = (root or features_dir()) / base_hash[:24] / f"{settings.key()}.npz"
        self.lock = FileLock(str(self.path.with_suffix(".lock")))

    def load(self) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def merge(self, keys: Sequence[str], vectors: dict[Pooling, np.ndarray]) -> dict[str, np.ndarray]:
        """Add rows (under the lock, reloading first so a concurrent writer's rows are kept)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            stored = self.load()
            known = set(stored.get("keys", np.array([], dtype="U64")).tolist())
            fresh = [i for i, k in enumerate(keys) if k not in known]
            if fresh:
                new_keys = np.asarray([keys[i] for i in fresh], dtype="U64")
                old_keys = stored.get("keys", np.array([], dtype="U64"))
                merged = {"keys": np.concatenate([old_keys, new_keys])}
                for pooling in POOLINGS:
                    new = vectors[pooling][fresh].astype(np.float32)
                    old = stored.get(pooling)
                    merged[pooling] = new if old is None else np.concatenate([old, new], axis=0)
                buffer = _npz_bytes(merged)
                atomic_write_bytes(self.path, buffer)
                stored = merged
            return stored


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    handle = io.BytesIO()
    np.savez(handle, **arrays)  # type: ignore[arg-type]
    return handle.getvalue()


def pooled_features(
    base_model: str,
    texts: Sequence[str],
    *,
    settings: FeatureSettings | None = None,
    pooling: Pooling = "last",
    batch_size: int = 8,
    progress: bool = False,
    cache_root: Path | None = None,
    loader: Callable[[str, FeatureSettings], tuple[Any, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """(len(texts), hidden) float32 features of `texts`, computed only for texts not cached yet."""
    settings = settings or FeatureSettings()
    result = cached_features(base_model, texts, settings=settings, batch_size=batch_size,
                             progress=progress, cache_root=cache_root, loader=loader, log=log)  # fmt: skip
    return result[pooling]


def cached_features(
    base_model: str,
    texts: Sequence[str],
    *,
    settings: FeatureSettings,
    batch_size: int = 8,
    progress: bool = False,
    cache_root: Path | None = None,
    loader: Callable[[str, FeatureSettings], tuple[Any, Any]] | None = None,
    log: Callable[[str], None] | None = None,
    device: str | None = None,
) -> dict[Pooling, np.ndarray]:
    """Both poolings of `texts` ({pooling: (n, hidden)}), running the base only on missing texts."""
    store = FeatureStore(base_fingerprint(base_model), settings, cache_root)
    keys = [text_key(t) for t in texts]
    stored = store.load()
    index = {k: i for i, k in enumerate(stored.get("keys", np.array([])).tolist())}
    missing = list(dict.fromkeys(k for k in keys if k not in index))
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        started = time.perf_counter()
        model, tokenizer = (
            loader(base_model, settings) if loader else _load_frozen(base_model, settings, device)
        )
        # Saved chunk by chunk, so an interrupted run keeps what it computed.
        for start in range(0, len(missing), SAVE_EVERY):
            chunk = missing[start : start + SAVE_EVERY]
            vectors = extract_features(
                model,
                tokenizer,
                [by_key[k] for k in chunk],
                [settings.layer],
                max_length=settings.max_length,
                batch_size=batch_size,
                progress=progress,
            )
            stored = store.merge(chunk, {p: vectors[(settings.layer, p)] for p in POOLINGS})
        del model
        index = {k: i for i, k in enumerate(stored["keys"].tolist())}
        if log:
            rate = len(missing) / max(time.perf_counter() - started, 1e-9)
            log(f"features: {len(missing)} new text(s) of {base_model} in {len(missing) / rate:.0f}s "
                f"({rate:.2f}/s, {settings.precision}, max_length {settings.max_length})")  # fmt: skip
    rows = np.asarray([index[k] for k in keys], dtype=np.int64)
    return {p: stored[p][rows] for p in POOLINGS}


def _load_frozen(base_model: str, settings: FeatureSettings, device: str | None = None) -> tuple[Any, Any]:
    """The base in the settings' precision on `device` (default: CUDA when present)."""
    dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float32
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_classifier(base_model, num_labels=2, dtype=dtype, device=device)
    model.requires_grad_(False)
    if settings.layer > 0:
        # Layers above the one we read cannot change it: drop them (half the cost for "middle").
        layers = getattr(model, model.base_model_prefix).layers
        del layers[settings.layer :]
        model.config.num_hidden_layers = len(layers)
    return model, tokenizer


def describe(settings: FeatureSettings) -> dict[str, Any]:
    """Settings as plain data (for reports), with the torch thread count that produced timings."""
    return asdict(settings) | {"feature_version": FEATURE_VERSION, "torch_threads": torch.get_num_threads()}
