"""The analyst-feedback contract: the bundled sample passes, bad frames are named row by row,
and the sample is exactly what its generator script makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.analyst_feedback import (
    FEEDBACK_CONTRACT_VERSION,
    load_feedback,
    validate_feedback,
)
from risk_app.errors import DataFileError
from risk_app.paths import REPO_ROOT

SAMPLE = REPO_ROOT / "risk_app" / "datasets" / "analyst_feedback_sample.csv"


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "application_id": ["app-1", "app-2", "app-3"],
            "model_decision": ["approve", "decline", "approve"],
            "analyst_decision": ["approve", "approve", "decline"],
            "confidence": ["0.9", None, "0.55"],
            "comment": ["ok", None, "history of delays"],
        }
    )


def test_version_is_semver() -> None:
    assert FEEDBACK_CONTRACT_VERSION.count(".") == 2


def test_good_frame_passes_and_is_typed() -> None:
    out = validate_feedback(good_frame())
    assert len(out) == 3
    assert out["confidence"].dtype == float
    assert out["confidence"].isna().sum() == 1


def test_optional_columns_may_be_absent_and_extras_are_dropped() -> None:
    frame = good_frame().drop(columns=["confidence", "comment"]).assign(reviewer="x")
    out = validate_feedback(frame)
    assert list(out.columns) == ["application_id", "model_decision", "analyst_decision"]


def test_decisions_are_normalised_for_case_and_spaces() -> None:
    frame = good_frame()
    frame.loc[0, "analyst_decision"] = " Approve "
    assert validate_feedback(frame)["analyst_decision"].iloc[0] == "approve"


def test_bad_values_are_reported_with_rows_and_columns() -> None:
    frame = good_frame()
    frame.loc[1, "analyst_decision"] = "maybe"
    frame.loc[2, "confidence"] = "1.5"
    frame.loc[0, "application_id"] = ""
    with pytest.raises(DataFileError) as info:
        validate_feedback(frame, "feedback.csv")
    message = str(info.value)
    assert message.startswith("feedback.csv:")
    assert "row 2, column 'analyst_decision'" in message and "'maybe'" in message
    assert "row 3, column 'confidence'" in message
    assert "row 1, column 'application_id'" in message


def test_missing_required_column_and_empty_frame() -> None:
    with pytest.raises(DataFileError, match=r"lacks column\(s\) \['analyst_decision'\]"):
        validate_feedback(good_frame().drop(columns=["analyst_decision"]), "f.csv")
    with pytest.raises(DataFileError, match="no rows"):
        validate_feedback(good_frame().iloc[:0], "f.csv")


def test_load_feedback_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        load_feedback(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match="empty"):
        load_feedback(empty)
    bad = tmp_path / "bad.csv"
    good_frame().assign(model_decision=["approve", "refer", "approve"]).to_csv(bad, index=False)
    with pytest.raises(DataFileError, match=r"bad\.csv: .*row 2, column 'model_decision'"):
        load_feedback(bad)


def test_bundled_sample_passes_the_contract() -> None:
    sample = load_feedback(SAMPLE)
    assert 150 <= len(sample) <= 300
    assert set(sample["analyst_decision"]) == {"approve", "decline"}
    # Simulated analysts disagree with the model sometimes, but not most of the time.
    agreement = (sample["model_decision"] == sample["analyst_decision"]).mean()
    assert 0.5 < agreement < 0.95


def test_bundled_sample_is_what_the_generator_script_makes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_feedback_sample", REPO_ROOT / "bench" / "make_feedback_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.make_feedback_sample()
    shipped = load_feedback(SAMPLE)
    pd.testing.assert_frame_equal(
        made.reset_index(drop=True), shipped.reset_index(drop=True), check_dtype=False
    )
