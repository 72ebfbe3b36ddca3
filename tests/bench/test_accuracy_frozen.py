"""bench/accuracy.py with frozen-feature heads (tiny model), and the paired-difference statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.accuracy import main
from bench.frozen_heads import paired_difference


def test_paired_difference_intervals() -> None:
    d = paired_difference([0.81, 0.80, 0.83, 0.79], [0.80, 0.80, 0.80, 0.80])
    assert d["mean"] == pytest.approx(0.0075) and d["wins"] == 2 and d["n"] == 4
    assert d["ci_low"] < d["mean"] < d["ci_high"]
    # The corrected interval is wider: splits overlap, so they are not independent.
    assert d["nb_low"] < d["ci_low"] and d["nb_high"] > d["ci_high"]
    half = 3.182446 * np.std([0.01, 0.0, 0.03, -0.01], ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert d["ci_high"] - d["mean"] == pytest.approx(half, rel=1e-4)


def test_frozen_heads_rows_beside_lightgbm(tiny_qwen2: Path, tmp_path: Path, risk_app_home: Path) -> None:
    out = tmp_path / "accuracy.md"
    args = ["--seeds", "2", "--skip-llm", "--frozen-bases", "tiny-qwen2", "--frozen-layers", "last",
            "--frozen-heads", "logistic", "--frozen-precision", "fp32", "--frozen-max-length", "64",
            "--frozen-batch-size", "32", "--threads", "1", "--out", str(out)]  # fmt: skip
    results = main(args)
    summary = results["summary"]
    assert {"frozen:tiny-qwen2", "hybrid:tiny-qwen2"} <= set(summary)
    frozen = results["per_seed"][0]["models"]["frozen:tiny-qwen2"]["frozen"]
    assert frozen["head"] == "logistic" and frozen["features"] in ("L-1/last", "L-1/mean")
    assert "C" in frozen["params"]
    assert summary["frozen:tiny-qwen2"]["vs_lightgbm"]["n"] == 2
    text = out.read_text()
    assert "frozen heads on tiny-qwen2" in text and "Paired difference" in text
    assert "Frozen-feature heads chosen on validation" in text
    # Features are cached: a second run reads them and does not rewrite the cache file.
    cached = {p: p.stat().st_mtime_ns for p in (risk_app_home / "features").rglob("*.npz")}
    assert len(cached) == 1
    again = main(args)
    assert {p: p.stat().st_mtime_ns for p in (risk_app_home / "features").rglob("*.npz")} == cached
    assert again["summary"]["frozen:tiny-qwen2"]["roc_auc"] == summary["frozen:tiny-qwen2"]["roc_auc"]
