"""Scoring outputs: batch names that never collide, no clobbering, CSV cells that cannot run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.scoring.output import (
    OutputExistsError,
    batch_output_path,
    neutralize_csv_cells,
    write_output,
)
from risk_app.scoring.staged import score_and_record
from risk_app.storage.scores import file_batch_id


def test_batch_names_differ_by_input_suffix_and_content(tmp_path: Path) -> None:
    names = {
        batch_output_path("landing/batch_A.csv", "a" * 64, model_version="m/1", folder=tmp_path),
        batch_output_path("landing/batch_A.parquet", "a" * 64, model_version="m/1", folder=tmp_path),
        batch_output_path("landing/batch_A.csv", "b" * 64, model_version="m/1", folder=tmp_path),
        batch_output_path("landing/batch_A.csv", "a" * 64, model_version="m/2", folder=tmp_path),
    }
    assert len(names) == 4
    odd = batch_output_path(
        "landing/../x y;rm.csv", "c" * 64, model_version="../v 1", folder=tmp_path, fmt="csv"
    )
    assert odd.parent == tmp_path and odd.name == "x_y_rm.csv.cccccccccccc.v_1.scores.csv"


def test_write_output_refuses_an_existing_file_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "scores.parquet"
    write_output(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_output(pd.DataFrame({"a": [2]}), target)
    assert pd.read_parquet(target)["a"].tolist() == [1]
    write_output(pd.DataFrame({"a": [3]}), target, overwrite=True)
    assert pd.read_parquet(target)["a"].tolist() == [3]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no temp files left


def test_only_text_cells_are_neutralized() -> None:
    frame = pd.DataFrame(
        {"text": ["=1+1", "-x", "plain", None], "number": [-1.5, 2.0, -3.0, 4.0], "ints": [-1, 2, 3, 4]}
    )
    safe = neutralize_csv_cells(frame)
    assert safe["text"].tolist()[:3] == ["'=1+1", "'-x", "plain"] and safe["text"].isna().iloc[3]
    pd.testing.assert_series_equal(safe["number"], frame["number"])
    pd.testing.assert_series_equal(safe["ints"], frame["ints"])


def test_score_and_record_refuses_to_overwrite_before_scoring(tmp_path: Path) -> None:
    source = tmp_path / "batch.csv"
    source.write_text("x\n1\n")
    output = tmp_path / "out.parquet"
    output.write_bytes(b"someone else's file")

    class Untouchable:
        version, threshold = "never", 0.5

        def predict_proba(self, df: pd.DataFrame) -> None:
            raise AssertionError("scored although the output exists")

    with pytest.raises(OutputExistsError):
        score_and_record(source, output, risk_model=Untouchable())
    assert output.read_bytes() == b"someone else's file"
    assert len(file_batch_id(source)) == 64
