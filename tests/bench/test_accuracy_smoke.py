"""bench/accuracy.py end to end, in-process, on one split: baselines only, then with a tiny LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.accuracy import main
from risk_app.errors import ConfigError, RiskAppError


def _table_rows(markdown: str) -> dict[str, list[str]]:
    """First summary table of the file: model name -> cells."""
    rows: dict[str, list[str]] = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| model"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells[1:])
    return rows


def test_baselines_only_writes_table_json_and_keeps_other_sections(tmp_path: Path) -> None:
    out, js = tmp_path / "accuracy.md", tmp_path / "accuracy.json"
    out.write_text(
        "# Accuracy\n\nHand-written discussion.\n\n<!-- BEGIN accuracy-bench: GPU X / m / lora -->\n"
        "## GPU X / m / lora\nold GPU numbers\n<!-- END accuracy-bench: GPU X / m / lora -->\n"
    )
    args = ["--seeds", "1", "--skip-llm", "--out", str(out), "--json", str(js)]
    results = main(args)
    main(args)  # a second run replaces its own section instead of adding another

    text = out.read_text()
    assert "Hand-written discussion." in text and "old GPU numbers" in text
    assert text.count(f"<!-- BEGIN accuracy-bench: {results['section']} -->") == 1
    rows = _table_rows(text.split(results["section"], 1)[1])
    assert set(rows) >= {"logistic", "lightgbm"} and "llm" not in rows
    for name in ("logistic", "lightgbm"):
        assert 0.0 < float(rows[name][0]) < 1.0  # test ROC AUC cell
    saved = json.loads(js.read_text())
    auc = saved["per_seed"][0]["models"]["lightgbm"]["roc_auc"]
    assert 0.6 < auc < 1.0  # LightGBM on German credit is far better than chance
    assert saved["summary"]["lightgbm"]["roc_auc"]["mean"] == pytest.approx(auc)
    assert saved["per_seed"][0]["sizes"] == {"train": 700, "validation": 150, "test": 150}


def test_tiny_llm_rows_including_augmentation_and_hybrid(tmp_path: Path, tiny_qwen2: Path) -> None:
    out, js = tmp_path / "accuracy.md", tmp_path / "accuracy.json"
    results = main(
        ["--seeds", "1", "--base-model", "tiny-qwen2", "--device", "cpu", "--threads", "1",
         "--max-train-rows", "64", "--epochs", "1", "--max-length", "64",
         "--out", str(out), "--json", str(js)]
    )  # fmt: skip
    rows = _table_rows(out.read_text())
    assert set(rows) == {"logistic", "lightgbm", "llm", "llm+aug", "hybrid"}
    models = results["per_seed"][0]["models"]
    for name, row in models.items():
        assert 0.0 < row["roc_auc"] < 1.0, name
        assert 0.0 <= row["brier"] <= 1.0, name
    assert models["llm"]["training"]["train_rows"] == 64
    assert models["llm"]["training"]["calibration"]["kind"] == "temperature"
    assert models["hybrid"]["llm_source"] in ("llm", "llm+aug")
    assert results["settings"]["train_config"]["max_length"] == 64


def test_bad_options_fail_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "accuracy.md"
    with pytest.raises(SystemExit):
        main(["--method-params", "{not json", "--out", str(out)])
    with pytest.raises(RiskAppError, match="nope"):
        main(["--method", "nope", "--seeds", "1", "--out", str(out)])
    with pytest.raises(ConfigError, match="does not exist"):
        main(["--base-model", str(tmp_path / "missing.gguf"), "--out", str(out)])
    with pytest.raises(ConfigError, match="epochs"):
        main(["--epochs", "0", "--out", str(out)])
    assert not out.exists()
