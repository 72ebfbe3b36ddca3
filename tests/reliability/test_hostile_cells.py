"""Cells that used to slip through (issue 20 §3): a NUL inside an id, a 5 MB cell, a header
name written twice, a zero-width character in an id.

Each went through `risk-app score` unnoticed: the NUL cut the id short so the row was scored
under another applicant's id, the 5 MB id was stored and the 5 MB category cell became a 5 MB
quarantine reason, the second copy of a column was dropped without a word, and `ab\\u200bc` was
scored as an id that looks like `abc`. Here each goes through the loader, the contract and the
whole scoring path into the warehouse.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec_model import ColumnSpec
from data_contracts.spec_schema import MAX_ID_CHARS, MAX_TEXT_CHARS, column_schema
from risk_app.data.load import iter_applications, load_applications
from risk_app.data.validate import QUOTED_CHARS, validate_applications
from risk_app.errors import DataFileError
from risk_app.scoring.staged import score_and_record
from risk_app.storage.warehouse import query
from tests.reliability.conftest import applications

BIG = 5_000_000
CATEGORY = "status_of_existing_checking_account"


def _with_ids(rows: int, *, seed: int = 0) -> pd.DataFrame:
    frame = applications(rows, seed=seed)
    frame.insert(0, "application_id", [f"id-{i:03d}" for i in range(rows)])
    return frame


def _score(path: Path, double_model: Path) -> object:
    from tests.scoring.doubles import load_double_artifact

    return score_and_record(path, risk_model=load_double_artifact(double_model), reasons=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_nul_inside_an_id_is_quarantined_and_never_cut_into_another_id(
    suffix: str, tmp_path: Path
) -> None:
    frame = _with_ids(4)
    frame.loc[0, "application_id"] = "nul"  # a real applicant
    frame.loc[1, "application_id"] = "nul\x00id"  # would read as "nul" in a CSV
    frame.loc[2, "purpose"] = "car (new)\x00"  # a NUL in a category cell
    path = tmp_path / f"batch{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)

    loaded = load_applications(path)
    assert loaded["application_id"].tolist() == ["nul", "nul\x00id", "id-002", "id-003"]
    result = validate_applications(loaded, str(path), require_target=False)
    assert result.valid["application_id"].tolist() == ["nul", "id-003"]
    q = result.quarantine.set_index("row_number")
    assert q.at[2, "failure_value"] == "nul\\u0000id"
    assert "control" in q.at[2, "reason"]
    assert q.at[3, "column"] == "purpose" and q.at[3, "failure_value"] == "car (new)\\u0000"


def test_a_nul_in_a_csv_is_scored_under_no_other_id(tmp_path: Path, double_model: Path) -> None:
    frame = _with_ids(6)
    frame.loc[0, "application_id"] = "nul\x00id"
    frame.loc[5, "application_id"] = "nul"
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    outcome = _score(path, double_model)
    assert (outcome.n_scored, outcome.n_quarantined) == (5, 1)
    scored = query("select application_id from risk.scored_applications order by application_id")
    assert scored["application_id"].tolist() == ["id-001", "id-002", "id-003", "id-004", "nul"]
    quarantine = query("select application_id, failure_value from risk.scoring_quarantine")
    [stored] = quarantine.itertuples(index=False)
    assert stored.application_id == "nul\x00id" and stored.failure_value == "nul\\u0000id"


def test_a_nul_in_a_later_chunk_and_a_nul_in_the_header(tmp_path: Path) -> None:
    frame = _with_ids(30)
    frame.loc[25, "application_id"] = "x\x00y"
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    ids = pd.concat(list(iter_applications(path, chunk_rows=10)))["application_id"]
    assert ids.iloc[25] == "x\x00y" and ids.str.contains("\x00").sum() == 1
    raw = path.read_bytes().replace(b"purpose", b"purp\x00ose", 1)
    path.write_bytes(raw)
    with pytest.raises(DataFileError, match="missing required column"):
        load_applications(path)  # a header name with a NUL is not the spec's column


def test_huge_cells_are_quarantined_quoting_only_a_prefix(tmp_path: Path, double_model: Path) -> None:
    frame = _with_ids(5)
    frame.loc[1, "application_id"] = "A" * BIG
    frame.loc[2, CATEGORY] = "B" * BIG
    frame.loc[3, "credit_amount"] = "9" * BIG
    frame.loc[4, "application_id"] = "C" * MAX_ID_CHARS  # at the cap: fine
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)

    outcome = _score(path, double_model)
    assert (outcome.n_scored, outcome.n_quarantined) == (2, 3)
    q = query("select * from risk.scoring_quarantine order by row_number")
    assert q["row_number"].tolist() == [2, 3, 4]
    assert "longer than 256 characters" in q.at[0, "reason"]
    for column in ("reason", "failure_value", "application_id"):
        longest = q[column].str.len().max()
        assert longest < MAX_ID_CHARS + 100, (column, longest)
    assert q.at[0, "failure_value"] == "A" * QUOTED_CHARS + f"... ({BIG:,} characters)"
    assert q.at[1, "failure_value"].endswith(f"... ({BIG:,} characters)")
    stored = query("select max(length(application_id)) as n from risk.scored_applications")
    assert int(stored.at[0, "n"]) == MAX_ID_CHARS


def test_free_text_is_capped_at_a_documented_default_or_its_max_chars() -> None:
    import pandera.pandas as pa

    def schema(max_chars: int) -> pa.DataFrameSchema:
        spec = ColumnSpec(type="text", label="Note", max_chars=max_chars, nullable=True)
        return pa.DataFrameSchema({"note": column_schema("note", spec)})

    note, long_note = schema(20), schema(MAX_TEXT_CHARS * 2)
    ok, over = "x" * MAX_TEXT_CHARS, "x" * (MAX_TEXT_CHARS + 1)
    note.validate(pd.DataFrame({"note": [ok, None]}).astype(object))
    with pytest.raises(Exception, match=f"longer than {MAX_TEXT_CHARS} characters"):
        note.validate(pd.DataFrame({"note": [over]}))
    long_note.validate(pd.DataFrame({"note": [over]}))


@pytest.mark.parametrize(
    "header",
    [
        f"{CATEGORY},{CATEGORY}",  # pandas would read the second as "<name>.1" and drop it
        f'{CATEGORY},"{CATEGORY}"',  # quoted the second time
        f"{CATEGORY}, {CATEGORY} ",  # the same once stray spaces are stripped
    ],
)
def test_a_header_name_written_twice_refuses_the_file_naming_it(header: str, tmp_path: Path) -> None:
    frame = applications(4)
    other = frame.drop(columns=[CATEGORY])
    lines = [f"{header},{','.join(other.columns)}"]
    for _, row in frame.iterrows():
        cells = [row[CATEGORY], "no checking account", *(f'"{v}"' for v in other.loc[_])]
        lines.append(",".join(cells))
    path = tmp_path / "dup.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=f"duplicate column name.*'{CATEGORY}'"):
        load_applications(path)


def test_a_parquet_file_with_a_column_twice_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = applications(3)
    arrays = [pa.array(frame[c]) for c in frame.columns] + [pa.array(["x", "y", "z"])]
    table = pa.Table.from_arrays(arrays, names=[*frame.columns, "purpose"])
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataFileError, match="duplicate column name.*'purpose'"):
        load_applications(path)


def test_an_extra_unnamed_column_is_not_a_duplicate(tmp_path: Path) -> None:
    frame = applications(3)
    path = tmp_path / "trailing_commas.csv"
    path.write_text(frame.to_csv(index=False).replace("\n", ",,\n"))
    assert len(load_applications(path)) == 3


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])
def test_zero_width_characters_in_an_id_are_quarantined(invisible: str, tmp_path: Path) -> None:
    frame = _with_ids(3)
    frame.loc[1, "application_id"] = f"id-0{invisible}00"  # looks like "id-000"
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    result = validate_applications(load_applications(path), str(path), require_target=False)
    assert result.valid["application_id"].tolist() == ["id-000", "id-002"]
    [reason] = result.quarantine["reason"]
    assert "zero-width" in reason and f"\\u{ord(invisible):04x}" in reason
