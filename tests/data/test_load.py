"""load_applications: formats, file-level errors with clear messages, row numbers and ids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.data.load import generate_application_ids, load_applications
from risk_app.data.validate import validate_applications
from risk_app.errors import DataFileError, RiskAppError
from risk_app.paths import DEFAULT_DATASET
from tests.data.german import FEATURE_COLUMNS, TARGET_COLUMN

from .conftest import write_csv


def test_default_csv_loads_as_text_with_ids_and_rows(raw_default: pd.DataFrame) -> None:
    assert len(raw_default) == 1000
    assert raw_default.columns[0] == "application_id"
    assert raw_default["duration_in_month"].map(type).eq(str).all()  # numbers stay text for the contract
    assert raw_default["source_row"].tolist() == list(range(1, 1001))
    assert raw_default["application_id"].is_unique
    assert raw_default["application_id"].str.fullmatch(r"app-[0-9a-f]{16}(-\d+)?").all()


def test_generated_ids_are_deterministic_and_ignore_label_and_column_order(tmp_path: Path) -> None:
    first = load_applications(DEFAULT_DATASET)["application_id"]
    again = load_applications(DEFAULT_DATASET)["application_id"]
    assert first.equals(again)
    data = pd.read_csv(DEFAULT_DATASET)
    shuffled = data[list(reversed(data.columns))].drop(columns=[TARGET_COLUMN])
    other = load_applications(write_csv(shuffled, tmp_path / "unlabelled.csv"))
    assert other["application_id"].equals(first)
    # Parquet keeps real ints; the same applicants still get the same ids.
    data.to_parquet(tmp_path / "apps.parquet", index=False)
    assert load_applications(tmp_path / "apps.parquet")["application_id"].equals(first)


def test_exact_duplicate_rows_get_suffixed_ids(raw_default: pd.DataFrame) -> None:
    rows = raw_default[list(FEATURE_COLUMNS)].iloc[[0, 1, 0, 0]].reset_index(drop=True)
    ids = generate_application_ids(rows)
    assert ids[1] != ids[0]
    assert ids[2] == f"{ids[0]}-2" and ids[3] == f"{ids[0]}-3"
    # Changing one field changes the id.
    changed = rows.copy()
    changed.loc[0, "age_in_years"] = "68"
    assert generate_application_ids(changed)[0] != ids[0]


def test_existing_ids_are_kept(tmp_path: Path, small_raw: pd.DataFrame) -> None:
    small_raw["application_id"] = [f"LN-{i:04d}" for i in range(len(small_raw))]
    loaded = load_applications(write_csv(small_raw, tmp_path / "ids.csv"))
    assert loaded["application_id"].tolist()[:2] == ["LN-0000", "LN-0001"]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_input(tmp_path: Path, small_raw: pd.DataFrame, suffix: str) -> None:
    typed = pd.read_csv(DEFAULT_DATASET).head(30)
    path = tmp_path / f"apps{suffix}"
    typed.to_parquet(path, index=False)
    loaded = load_applications(path)
    assert loaded["duration_in_month"].dtype == "int64"
    result = validate_applications(loaded, str(path))
    assert result.n_valid == 30
    assert result.valid["application_id"].tolist() == small_raw["application_id"].tolist()


def test_unknown_format_names_file_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "apps.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataFileError) as info:
        load_applications(path)
    message = str(info.value)
    assert str(path) in message and ".csv" in message and ".parquet" in message and ".txt" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nope\.csv: file not found"):
        load_applications(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        ((",".join([*FEATURE_COLUMNS, TARGET_COLUMN]) + "\n").encode(), "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfd garbage", "UTF-8"),
        (b'a,b\n1,"unterminated\n', "cannot parse as CSV"),
    ],
)
def test_unusable_csv(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as info:
        load_applications(path)
    assert str(path) in str(info.value) and problem in str(info.value)
    assert isinstance(info.value, RiskAppError)


def test_garbled_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataFileError, match=r"bad\.parquet: cannot read as Parquet"):
        load_applications(path)


def test_missing_columns_are_listed(tmp_path: Path, small_raw: pd.DataFrame) -> None:
    path = write_csv(small_raw.drop(columns=["purpose", "age_in_years"]), tmp_path / "cols.csv")
    with pytest.raises(DataFileError) as info:
        load_applications(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing required column(s): purpose, age_in_years" in message


def test_bad_values_do_not_fail_the_file(tmp_path: Path, small_raw: pd.DataFrame) -> None:
    small_raw.loc[4, "age_in_years"] = "abc"
    loaded = load_applications(write_csv(small_raw, tmp_path / "vals.csv"))
    assert loaded.loc[4, "age_in_years"] == "abc"
