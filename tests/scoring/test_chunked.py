"""Scoring a file in chunks: the same result as in one piece, outputs whole or absent, bad rows
of any chunk quarantined with file, row and field, the batch recorded once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.data.load import iter_applications, load_applications
from risk_app.paths import DEFAULT_DATASET
from risk_app.scoring.staged import score_and_record
from risk_app.scoring.stream import BatchStage
from risk_app.storage.scores import scoring_ledger
from risk_app.storage.warehouse import query
from tests.scoring.doubles import load_double_artifact, save_double_artifact
from tests.storage.rows import scored_rows_per_batch

N_ROWS = 30


@pytest.fixture
def model(tmp_path: Path):  # noqa: ANN201
    return load_double_artifact(save_double_artifact(tmp_path / "m", version="dbl-chunks", threshold=0.4))


def _raw(n: int = N_ROWS) -> pd.DataFrame:
    return pd.read_csv(DEFAULT_DATASET, dtype=str).head(n).drop(columns=["creditability"])


@pytest.fixture
def bad_late_rows(tmp_path: Path) -> Path:
    """No id column (ids generated); row 26 has a bad duration, row 29 repeats row 2's values,
    so its generated id gets "-2", and row 30 repeats row 1's values too."""
    raw = _raw()
    raw.loc[25, "duration_in_month"] = "abc"
    raw.loc[28] = raw.loc[1]
    raw.loc[29] = raw.loc[0]
    path = tmp_path / "late_bad.csv"
    raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_are_the_whole_file_in_order(bad_late_rows: Path, tmp_path: Path, suffix: str) -> None:
    path = bad_late_rows
    if suffix == ".parquet":
        path = tmp_path / "late_bad.parquet"
        pd.read_csv(bad_late_rows, dtype=str).to_parquet(path, index=False)
    whole = load_applications(path)
    chunks = list(iter_applications(path, chunk_rows=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)
    assert joined["application_id"].is_unique  # a repeat in a later chunk still gets its "-2"


def test_chunked_scores_equal_unchunked(bad_late_rows: Path, tmp_path: Path, model) -> None:  # noqa: ANN001
    outs = {}
    for chunk_rows in (None, 4):
        out = tmp_path / f"out_{chunk_rows}" / "scores.parquet"
        outcome = score_and_record(
            bad_late_rows, out, risk_model=model, reasons=0, chunk_rows=chunk_rows,
            warehouse=tmp_path / f"wh_{chunk_rows}.duckdb",
        )  # fmt: skip
        outs[chunk_rows] = (outcome, pd.read_parquet(out).drop(columns="scored_at"))
    (whole, whole_scores), (chunked, chunked_scores) = outs[None], outs[4]
    pd.testing.assert_frame_equal(chunked_scores, whole_scores)
    counts = (whole.n_in, whole.n_scored, whole.n_quarantined, whole.n_declined)
    assert counts == (chunked.n_in, chunked.n_scored, chunked.n_quarantined, chunked.n_declined)
    assert pd.read_parquet(chunked.quarantine_path).equals(pd.read_parquet(whole.quarantine_path))


def test_bad_rows_and_repeated_ids_in_a_later_chunk_are_quarantined(tmp_path: Path, model) -> None:  # noqa: ANN001
    raw = _raw()
    raw.insert(0, "application_id", [f"id-{i}" for i in range(N_ROWS)])
    raw.loc[25, "duration_in_month"] = "abc"
    raw.loc[27, "application_id"] = "id-3"  # the id of a row in the first chunk
    source = tmp_path / "ids.csv"
    raw.to_csv(source, index=False)
    out = tmp_path / "out" / "ids.scores.csv"
    outcome = score_and_record(source, out, risk_model=model, reasons=0, chunk_rows=10)

    assert (outcome.n_in, outcome.n_scored, outcome.n_quarantined) == (30, 28, 2)
    quarantine = pd.read_parquet(outcome.quarantine_path)
    found = set(zip(quarantine["row_number"], quarantine["column"], quarantine["check"], strict=True))
    assert (28, "application_id", "field_uniqueness") in found
    assert any(row == 26 and column == "duration_in_month" for row, column, _ in found)
    assert set(quarantine["source_file"]) == {str(source)}
    assert "row 28, field application_id='id-3'" in " ".join(quarantine["reason"])
    scored = pd.read_csv(out)
    assert len(scored) == 28 and scored["application_id"].is_unique
    # Recorded once: one ledger row and every scored row, in one transaction.
    ledger = scoring_ledger()
    assert ledger[["n_in", "n_scored", "n_quarantined"]].values.tolist() == [[30, 28, 2]]
    assert scored_rows_per_batch() == {outcome.batch_id: 28}
    assert query("select count(*) as n from risk.scoring_applications")["n"].tolist() == [28]


def test_a_writer_failing_mid_file_leaves_no_output_and_no_record(
    bad_late_rows: Path, tmp_path: Path, model, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    write = BatchStage._write_scores
    written: list[int] = []

    def fail_on_third_chunk(self: BatchStage, scored: pd.DataFrame) -> None:
        written.append(len(scored))
        if len(written) == 3:
            raise OSError("disk full")
        write(self, scored)

    monkeypatch.setattr(BatchStage, "_write_scores", fail_on_third_chunk)
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(OSError, match="disk full"):
        score_and_record(bad_late_rows, out, risk_model=model, reasons=0, chunk_rows=8)
    assert len(written) == 3
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no output, no stage left
    assert scoring_ledger().empty
