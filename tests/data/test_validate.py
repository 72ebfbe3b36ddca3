"""Quarantine accounting: every row is either valid or quarantined, every failure is reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from risk_app.data.load import load_applications
from risk_app.data.validate import QUARANTINE_COLUMNS, validate_applications
from tests.data.german import NUMERIC_COLUMNS

from .conftest import write_csv


def test_whole_file_in_one_pass_with_several_failures_a_row(
    tmp_path: Path, raw_default: pd.DataFrame
) -> None:
    frame = raw_default.drop(columns=["application_id", "source_row"])
    # Row 5 (index 4) has three bad fields, two of them in columns where another row holds text,
    # which must not hide range failures (see validate.py on the two pandera passes).
    frame.loc[4, ["age_in_years", "duration_in_month", "purpose"]] = ["17", "0", "spaceship"]
    frame.loc[9, "age_in_years"] = "forty"
    frame.loc[99, "duration_in_month"] = "12.5"
    frame.loc[500, "credit_amount"] = "0"
    frame.loc[999, "creditability"] = None
    path = write_csv(frame, tmp_path / "mixed.csv")

    result = validate_applications(load_applications(path), str(path))
    assert result.n_in == 1000
    assert result.n_quarantined == 5
    assert result.n_valid == 995
    assert result.n_in == result.n_valid + result.n_quarantined
    q = result.quarantine
    assert list(q.columns) == list(QUARANTINE_COLUMNS)
    assert len(q) == 7  # one line per failure
    assert set(q["source_file"]) == {str(path)}
    got = set(zip(q["row_number"], q["column"], q["failure_value"], strict=True))
    assert got == {
        (5, "age_in_years", "17"),
        (5, "duration_in_month", "0"),
        (5, "purpose", "spaceship"),
        (10, "age_in_years", "forty"),
        (100, "duration_in_month", "12.5"),
        (501, "credit_amount", "0"),
        (1000, "creditability", ""),
    }
    assert (q[q["row_number"] == 5]["application_id"].nunique()) == 1
    assert not set(q["application_id"]) & set(result.valid["application_id"])
    assert not {5, 10, 100, 501, 1000} & set(result.valid["source_row"])
    for column in NUMERIC_COLUMNS:
        assert result.valid[column].dtype == "int64"

    summary = result.summary()
    assert summary["n_failures"] == 7
    assert summary["failures_by_column"]["age_in_years"] == 2
    assert summary["quarantine_rate"] == 0.005


def test_everything_bad(small_raw: pd.DataFrame) -> None:
    small_raw["age_in_years"] = "old"
    result = validate_applications(small_raw, "all_bad.csv")
    assert (result.n_valid, result.n_quarantined, len(result.quarantine)) == (0, 30, 30)
    assert result.valid.empty


def test_frame_without_ids_or_source_rows(raw_default: pd.DataFrame) -> None:
    frame = raw_default.drop(columns=["application_id", "source_row"]).head(10)
    result = validate_applications(frame, "memory")
    assert result.valid["application_id"].tolist() == raw_default["application_id"].head(10).tolist()
    assert result.valid["source_row"].tolist() == list(range(1, 11))


def test_numeric_ids_with_a_gap(small_raw: pd.DataFrame) -> None:
    frame = small_raw.head(5).copy()
    frame["application_id"] = [1, 2, None, 4, 5]  # pandas stores this as floats
    result = validate_applications(frame, "ids.parquet")
    assert result.valid["application_id"].tolist() == ["1", "2", "4", "5"]
    assert result.quarantine[["row_number", "column", "check"]].values.tolist() == [
        [3, "application_id", "not_nullable"]
    ]
