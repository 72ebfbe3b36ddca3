"""Training examples, data hashes and the DuckDB warehouse round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app import paths
from risk_app.data.examples import EXAMPLE_COLUMNS, build_training_examples, data_hash
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from risk_app.storage.warehouse import TableNotFoundError, list_tables, query, read_table, write_table
from tests.data.german import PROTECTED_COLUMNS


@pytest.fixture
def valid(raw_default: pd.DataFrame) -> pd.DataFrame:
    return validate_applications(raw_default, "germancredit.csv").valid


def test_training_examples(valid: pd.DataFrame) -> None:
    examples = build_training_examples(valid, seed=42)
    assert list(examples.columns) == list(EXAMPLE_COLUMNS)
    assert len(examples) == 1000
    assert (examples["application_id"] == examples["source_application_id"]).all()
    assert not examples["augmented"].any()
    assert examples["default"].tolist() == valid["default"].tolist()
    assert examples["text"].str.startswith("Checking account: ").all()
    assert examples["split"].value_counts()["train"] == pytest.approx(700, abs=5)
    assert data_hash(examples) == data_hash(build_training_examples(valid, seed=42))
    assert data_hash(examples) != data_hash(build_training_examples(valid, seed=1))
    fair = build_training_examples(valid, exclude_fields=PROTECTED_COLUMNS)
    assert not fair["text"].str.contains("Age:").any()
    with pytest.raises(ConfigError, match="default"):
        build_training_examples(valid.drop(columns=["default"]))


def test_data_hash_is_canonical() -> None:
    frame = pd.DataFrame({"b": [1, 2], "a": ["x", "y"]}, index=[5, 6])
    reordered = frame[["a", "b"]].reset_index(drop=True)
    assert data_hash(frame) == data_hash(reordered)
    assert len(data_hash(frame)) == 64
    assert data_hash(frame) != data_hash(frame.assign(b=[1, 3]))
    assert data_hash(frame) != data_hash(frame.assign(b=["1", "2"]))  # dtype matters
    assert data_hash(frame) != data_hash(frame.iloc[::-1])  # row order matters


def test_warehouse_round_trip(valid: pd.DataFrame) -> None:
    assert write_table("applications", valid) == 1000
    assert paths.warehouse_path().exists()  # default path under $RISK_APP_HOME
    back = read_table("applications")
    pd.testing.assert_frame_equal(back, valid, check_dtype=False)
    assert back["age_in_years"].dtype == "int64"
    # Replace, not append.
    write_table("applications", valid.head(10))
    assert len(read_table("applications")) == 10
    counts = query("SELECT creditability, count(*) AS n FROM applications GROUP BY 1 ORDER BY 1")
    assert counts["n"].sum() == 10
    assert query("SELECT count(*) AS n FROM applications WHERE age_in_years > ?", params=[60])["n"][0] >= 0
    assert list_tables() == ["applications"]


def test_warehouse_explicit_path_and_errors(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    write_table("t1", pd.DataFrame({"x": [1, 2, 3]}), path=db)
    assert read_table("t1", path=db)["x"].tolist() == [1, 2, 3]
    with pytest.raises(TableNotFoundError, match="no table 'missing'"):
        read_table("missing", path=db)
    for name in ("bad name", "x; DROP TABLE t1", "1abc", ""):
        with pytest.raises(ConfigError, match="invalid table name"):
            write_table(name, pd.DataFrame({"x": [1]}), path=db)
    with pytest.raises(RiskAppError, match="query failed"):
        query("SELECT * FROM nowhere", path=db)
    assert read_table("t1", path=db)["x"].tolist() == [1, 2, 3]
