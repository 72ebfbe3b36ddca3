"""Sentence embeddings from the pinned offline encoder, cached per text.

`SentenceEncoder` loads the verified folder of `encoder.py` with transformers' `AutoModel`
(local files only) and embeds a text as sentence-transformers does for all-MiniLM-L6-v2:
the token vectors of the last layer averaged over the attention mask (mean pooling), then
scaled to unit length. Texts are cut at the encoder's own token limit (256).

Each vector is kept in a SQLite file beside the model, keyed by the SHA-256 of the text (and
the encoder's fingerprint and token limit in the file name), so a benchmark over twenty
splits, or a second evaluation of the same rows, embeds each distinct text once. Vectors are
stored as raw float32 bytes (no pickle); all SQL is parameterized.

    from risk_app.models.embed import load_sentence_encoder
    vectors = load_sentence_encoder().embed(["Debt consolidation", "Pay off my car"])  # (2, 384)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from risk_app.models.encoder import DEFAULT_ENCODER, EncoderSpec, fetch_encoder, get_encoder

SQL_CHUNK = 500  # keys per SELECT ... IN (?, ...), well under SQLite's parameter limit


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by text hash in one SQLite file; safe for several processes (SQLite locks)."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path, self.dimension = path, dimension
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), SQL_CHUNK):
                chunk = list(keys[start : start + SQL_CHUNK])
                # The keys as one JSON parameter: no SQL text is built from the chunk's length.
                sql = "SELECT key, vec FROM vectors WHERE key IN (SELECT value FROM json_each(?))"
                for key, blob in db.execute(sql, [json.dumps(chunk)]):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dimension,):  # a truncated row is simply recomputed
                        found[key] = vector
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in vectors.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)", rows)


class SentenceEncoder:
    """Mean-pooled, unit-length sentence vectors from a verified encoder folder."""

    def __init__(self, folder: Path, spec: EncoderSpec, *, batch_size: int = 64, cache: bool = True) -> None:
        # torch and transformers (seconds to import) only once the encoder is used.
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.spec, self.batch_size = spec, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
        name = f"embeddings-{spec.fingerprint[:12]}-{spec.max_tokens}.sqlite"
        self.cache = EmbeddingCache(folder / name, spec.dimension) if cache else None

    @property
    def name(self) -> str:
        return self.spec.name

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        # torch (seconds to import) only once the encoder is used.
        import torch

        out = np.empty((len(texts), self.spec.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad less
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=self.spec.max_tokens, return_tensors="pt",
                )  # fmt: skip
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32 vectors; each distinct text is embedded at most once."""
        texts = [str(t) for t in texts]
        keys = [text_key(t) for t in texts]
        known = self.cache.get(sorted(set(keys))) if self.cache is not None else {}
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if todo:
            fresh = dict(zip(todo, self._encode(list(todo.values())), strict=True))
            if self.cache is not None:
                self.cache.put(fresh)
            known = {**known, **fresh}
        if not texts:
            return np.empty((0, self.spec.dimension), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)


def load_sentence_encoder(
    name: str = DEFAULT_ENCODER, *, log: Callable[[str], None] | None = None, cache: bool = True
) -> SentenceEncoder:
    """The encoder `name`, fetched and verified on first use (`EncoderFetchError` if it cannot be)."""
    spec = get_encoder(name)
    return SentenceEncoder(fetch_encoder(name, log=log), spec, cache=cache)
