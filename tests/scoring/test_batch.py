"""Batch scoring: decisions at the threshold, quarantine accounting, output formats.

The risk model is a test double (tests/scoring/doubles.py): a real sklearn pipeline behind the
RiskModel interface, or a fixed-output model where exact PDs are needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.scored_application import ScoredApplication
from risk_app.errors import ConfigError, DataFileError, RiskAppError
from risk_app.paths import DEFAULT_DATASET
from risk_app.scoring.batch import OUTPUT_COLUMNS, score_applications
from risk_app.scoring.staged import score_and_record
from tests.scoring.doubles import (
    german_credit,
    install_double_loader,
    load_double_artifact,
    save_double_artifact,
)


class FixedModel:
    """Returns preset PDs (to test decisions exactly), remembering the batch size it was given."""

    def __init__(self, p: list[float], threshold: float = 0.3, version: str = "fixed-1") -> None:
        self.p, self.threshold, self.version = np.asarray(p), threshold, version
        self.batch_sizes: list[int] = []

    def predict_proba(self, df: pd.DataFrame, batch_size: int = 8) -> np.ndarray:
        self.batch_sizes.append(batch_size)
        return self.p[: len(df)]


def _frame(n: int) -> pd.DataFrame:
    return german_credit().head(n).reset_index(drop=True)


def test_decisions_at_threshold_and_columns() -> None:
    p = [0.01, 0.05, 0.2999, 0.30, 0.34, 0.36, 0.9]
    model = FixedModel(p, threshold=0.30)
    out = score_applications(_frame(7), model, batch_size=16)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["decision"].tolist() == [
        "approve",
        "approve",
        "approve",
        "decline",
        "decline",
        "decline",
        "decline",
    ]
    assert out["risk_grade"].tolist() == ["A", "B", "D", "D", "D", "E", "E"]
    assert out["application_id"].tolist() == _frame(7)["application_id"].tolist()
    assert (out["model_version"] == "fixed-1").all()
    assert str(out["scored_at"].dt.tz) == "UTC"
    assert model.batch_sizes == [16]
    ScoredApplication.validate(out.drop(columns=["scored_at"]))


def test_scores_from_real_model_double(tmp_path: Path) -> None:
    model = load_double_artifact(save_double_artifact(tmp_path / "m", version="dbl", threshold=0.4))
    df = _frame(50)
    out = score_applications(df, model)
    np.testing.assert_allclose(out["probability_of_default"], model.predict_proba(df))
    assert ((out["probability_of_default"] >= 0.4) == (out["decision"] == "decline")).all()


def test_bad_model_output_and_input_rejected() -> None:
    with pytest.raises(RiskAppError, match="returned 2 probabilities for 3"):
        score_applications(_frame(3), FixedModel([0.1, 0.2]))
    with pytest.raises(RiskAppError, match="outside"):
        score_applications(_frame(2), FixedModel([0.1, 1.7]))
    with pytest.raises(ConfigError, match="application_id"):
        score_applications(_frame(2).drop(columns=["application_id"]), FixedModel([0.1, 0.2]))
    with pytest.raises(ConfigError, match="threshold"):
        score_applications(_frame(2), FixedModel([0.1, 0.2], threshold=2.0))
    empty = score_applications(_frame(0), FixedModel([]))
    assert empty.empty and tuple(empty.columns) == OUTPUT_COLUMNS


@pytest.fixture
def file_with_bad_rows(tmp_path: Path) -> Path:
    raw = pd.read_csv(DEFAULT_DATASET, dtype=str).head(30).drop(columns=["creditability"])
    raw.loc[2, "age_in_years"] = "abc"  # uncoercible
    raw.loc[4, "purpose"] = "spaceship"  # unknown category
    raw.loc[6, "age_in_years"] = "17"  # below contract range
    raw.loc[6, "credit_amount"] = "-5"  # second failure on the same row: still one quarantined row
    path = tmp_path / "incoming" / "batch.csv"
    path.parent.mkdir()
    raw.to_csv(path, index=False)
    return path


def test_scoring_a_file_quarantines_bad_rows(file_with_bad_rows: Path, tmp_path: Path) -> None:
    model = load_double_artifact(save_double_artifact(tmp_path / "m", version="dbl-7", threshold=0.5))
    out_path = tmp_path / "out" / "batch.scored.parquet"
    report = score_and_record(file_with_bad_rows, out_path, risk_model=model, reasons=0)

    assert (report.n_in, report.n_scored, report.n_quarantined) == (30, 27, 3)
    assert report.model_version == "dbl-7"

    scored = pd.read_parquet(out_path)
    assert len(scored) == 27 and tuple(scored.columns) == OUTPUT_COLUMNS
    assert report.n_declined == int((scored["decision"] == "decline").sum())
    assert set(scored["risk_grade"]) <= set("ABCDE")

    q_path = out_path.with_name("batch.scored.quarantine.parquet")
    assert report.quarantine_path == str(q_path)
    quarantine = pd.read_parquet(q_path)
    assert sorted(set(quarantine["row_number"].astype(int))) == [3, 5, 7]
    assert {"age_in_years", "purpose", "credit_amount"} <= set(quarantine["column"])
    assert not set(quarantine["application_id"]) & set(scored["application_id"])
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in out_path.parent.iterdir()) == [out_path.name, q_path.name]


def test_scoring_csv_with_a_model_folder(
    file_with_bad_rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_double_loader(monkeypatch)
    folder = save_double_artifact(tmp_path / "model_dir", version="folder-1", threshold=0.35)
    out_path = tmp_path / "scored.csv"
    report = score_and_record(file_with_bad_rows, out_path, model_ref=str(folder), reasons=0)
    assert report.model_version == "folder-1"
    scored = pd.read_csv(out_path)
    assert len(scored) == report.n_scored == 27
    assert (scored["model_version"] == "folder-1").all()
    assert pd.read_parquet(report.quarantine_path)["row_number"].nunique() == 3


def test_clean_file_writes_no_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    pd.read_csv(DEFAULT_DATASET, dtype=str).head(12).to_parquet(path)
    model = FixedModel([0.5] * 12, threshold=0.5)
    report = score_and_record(path, tmp_path / "clean.scored.csv", risk_model=model, reasons=0)
    assert (report.n_in, report.n_scored, report.n_quarantined) == (12, 12, 0)
    assert report.quarantine_path is None and report.n_declined == 12
    assert not (tmp_path / "clean.scored.quarantine.parquet").exists()


def test_unknown_output_suffix_rejected(file_with_bad_rows: Path, tmp_path: Path) -> None:
    model = FixedModel([0.1] * 30)
    with pytest.raises(ConfigError, match=r"unsupported output format '\.xlsx'"):
        score_and_record(file_with_bad_rows, tmp_path / "scored.xlsx", risk_model=model)
    assert not list(tmp_path.glob("scored*"))
    with pytest.raises(DataFileError, match="file not found"):
        score_and_record(tmp_path / "missing.csv", tmp_path / "scored.csv", risk_model=model)
