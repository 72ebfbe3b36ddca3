"""Lift table, ECE, KS curve and the evaluation-report folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from risk_app.errors import RiskAppError
from risk_app.evaluate.curves import calibration_table, expected_calibration_error, ks_curve, lift_table
from risk_app.evaluate.report import build_evaluation_report


def informative_scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the scores themselves: a perfectly calibrated, informative model."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.5, n)))
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_ece_matches_hand_computation() -> None:
    y = [0, 0, 1, 1, 1, 0]
    p = [0.05, 0.15, 0.15, 0.85, 0.95, 0.92]
    # bins: {0.05}: |0-0.05|; {0.15,0.15}: |0.5-0.15|; {0.85}: |1-0.85|; {0.95,0.92}: |0.5-0.935|
    expected = (1 * 0.05 + 2 * 0.35 + 1 * 0.15 + 2 * 0.435) / 6
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected, abs=1e-12)


def test_ece_puts_probability_one_in_last_bin_and_is_zero_when_calibrated() -> None:
    table = calibration_table([1, 1], [1.0, 0.95], n_bins=10)
    assert table["bin"].tolist() == [9]
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)
    y, p = informative_scores(20000)
    assert expected_calibration_error(y, p) < 0.02


def test_lift_table_hand_example() -> None:
    y = [1, 1, 0, 1, 0, 0, 0, 0, 1, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    table = lift_table(y, p, n_bins=2)
    assert table["n"].tolist() == [5, 5]
    assert table["defaults"].tolist() == [3, 1]
    assert table["lift"].tolist() == pytest.approx([0.6 / 0.4, 0.2 / 0.4])
    assert table["cumulative_capture_pct"].tolist() == pytest.approx([75.0, 100.0])
    assert table["max_score"].tolist() == pytest.approx([0.9, 0.4])


def test_lift_table_sums_and_top_decile_lift() -> None:
    y, p = informative_scores(5000, seed=1)
    table = lift_table(y, p)
    assert len(table) == 10
    assert table["n"].sum() == len(y)
    assert table["defaults"].sum() == y.sum()
    assert table["cumulative_capture_pct"].iloc[-1] == pytest.approx(100.0)
    assert table["cumulative_lift"].iloc[-1] == pytest.approx(1.0)
    assert table["lift"].iloc[0] > 2.0
    assert table["default_rate"].is_monotonic_decreasing

    random_p = np.random.default_rng(2).random(len(y))
    random_lift = lift_table(y, random_p)["lift"].iloc[0]
    assert random_lift == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 1], [0.1, 0.2], "lengths must match"),
        ([0, 1], [0.1, 1.2], "row 1"),
        ([0, 2], [0.1, 0.2], "labels must be 0/1"),
        ([0, 1], [0.1, float("nan")], "row 1"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "no defaults"),
    ],
)
def test_lift_table_rejects_bad_input(y: list, p: list, message: str) -> None:
    with pytest.raises(RiskAppError, match=message):
        lift_table(y, p, n_bins=2)


def test_ks_curve_matches_scipy_and_metrics_module() -> None:
    from risk_app.evaluate.metrics import credit_metrics

    y, p = informative_scores(800, seed=3)
    curve = ks_curve(y, p)
    assert curve.ks == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic)
    assert curve.ks == pytest.approx(credit_metrics(y, p, 0.5)["ks"])
    assert curve.cdf_good[-1] == pytest.approx(1.0) and curve.cdf_bad[-1] == pytest.approx(1.0)


def test_build_evaluation_report_writes_consistent_files(tmp_path) -> None:
    y, p = informative_scores(600, seed=4)
    noisy = np.clip(p + np.random.default_rng(5).normal(0, 0.2, len(p)), 0, 1)
    out = tmp_path / "eval"
    report = build_evaluation_report(y, p, 0.4, out, baselines={"logistic": noisy}, model_name="llm-lora")

    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(
        [
            "confusion_matrix.png",
            "ks_curve.png",
            "lift_table.csv",
            "reliability.png",
            "report.json",
            "roc_curve.png",
            "score_distribution.png",
        ]
    )  # and no temp files left behind
    for key in ("roc", "ks", "reliability", "score_distribution", "confusion_matrix"):
        assert report.paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    lift = pd.read_csv(out / "lift_table.csv")
    assert report.top_decile_lift == pytest.approx(lift["lift"].iloc[0])
    assert report.ece == pytest.approx(expected_calibration_error(y, p))
    assert report.auc == pytest.approx(roc_auc_score(y, p))

    saved = json.loads((out / "report.json").read_text())
    assert saved["model_name"] == "llm-lora"
    assert saved["n"] == 600 and saved["n_defaults"] == int(y.sum())
    assert saved["metrics"]["roc_auc"] == pytest.approx(report.auc)
    assert saved["baselines"]["logistic"]["auc"] == pytest.approx(roc_auc_score(y, noisy))
    assert saved["baselines"]["logistic"]["auc"] < report.auc
    assert len(saved["lift_table"]) == 10


def test_build_evaluation_report_rejects_bad_input(tmp_path) -> None:
    y, p = informative_scores(100, seed=6)
    with pytest.raises(RiskAppError, match="baseline 'lr'.*lengths must match"):
        build_evaluation_report(y, p, 0.5, tmp_path / "a", baselines={"lr": p[:50]})
    with pytest.raises(RiskAppError, match="threshold"):
        build_evaluation_report(y, p, 1.5, tmp_path / "b")
    with pytest.raises(RiskAppError, match="both defaults and non-defaults"):
        build_evaluation_report(np.zeros(100, dtype=int), p, 0.5, tmp_path / "c")
    assert not (tmp_path / "a" / "report.json").exists()


def test_rerun_that_fails_leaves_no_stale_report_json(tmp_path, monkeypatch) -> None:
    y, p = informative_scores(200, seed=7)
    build_evaluation_report(y, p, 0.5, tmp_path)
    assert (tmp_path / "report.json").exists()

    from risk_app.evaluate import plots

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plots, "confusion_matrix_png", broken)
    with pytest.raises(OSError):
        build_evaluation_report(y, p, 0.5, tmp_path)
    assert not (tmp_path / "report.json").exists()
