"""The embedded tiny Qwen2: built once, cached, deterministic, tokenizer consistent."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from risk_app import paths
from risk_app.models import tiny


def test_concurrent_builds_build_once_and_match_another_build(
    monkeypatch: pytest.MonkeyPatch, _tiny_qwen2_build: Path
) -> None:
    builds: list[Path] = []
    real_build = tiny._build_into

    def counting_build(folder: Path) -> None:
        builds.append(folder)
        real_build(folder)

    monkeypatch.setattr(tiny, "_build_into", counting_build)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(tiny.ensure_tiny_qwen2())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    target = paths.models_dir() / "tiny-qwen2"
    assert results == [target, target]
    assert len(builds) == 1, "the file lock must stop the second thread from building again"
    # Cached: a third call does not build.
    assert tiny.ensure_tiny_qwen2() == target and len(builds) == 1
    assert (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()
    # No temporary folders left behind next to the model.
    assert [p.name for p in paths.models_dir().iterdir() if p.name.endswith(".tmp")] == []

    # Deterministic: identical to the session build made in another home.
    mine, other = load_file(target / "model.safetensors"), load_file(_tiny_qwen2_build / "model.safetensors")
    assert mine.keys() == other.keys()
    assert all(mine[k].equal(other[k]) for k in mine)
    assert (target / "tokenizer.json").read_text() == (_tiny_qwen2_build / "tokenizer.json").read_text()


def test_incomplete_folder_is_rebuilt(tiny_qwen2: Path, risk_app_home: Path) -> None:
    # A folder without the recipe marker (e.g. an older recipe) is not trusted.
    broken = paths.models_dir() / "tiny-qwen2"
    broken.unlink()  # the fixture's symlink
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    rebuilt = tiny.ensure_tiny_qwen2()
    assert (rebuilt / "model.safetensors").is_file()
    assert (rebuilt / tiny.MARKER_FILE).is_file()


def test_autotokenizer_matches_trained_tokenizer(tiny_qwen2: Path) -> None:
    loaded = AutoTokenizer.from_pretrained(tiny_qwen2)
    raw = Tokenizer.from_file(str(tiny_qwen2 / "tokenizer.json"))
    text = "Credit amount: 1169 DM. Age: 67 years.  Purpose: radio/television. Überweisung"
    assert loaded(text)["input_ids"] == raw.encode(text).ids
    assert loaded.decode(loaded(text)["input_ids"]) == text
    assert loaded.pad_token == tiny.PAD_TOKEN and loaded.eos_token == tiny.EOS_TOKEN
    assert loaded.pad_token_id != loaded.eos_token_id
    # The corpus taught it credit words: a field label is a handful of tokens, not bytes.
    assert len(loaded("Checking account")["input_ids"]) <= 3
