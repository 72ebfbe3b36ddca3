"""Scoring records under faults: kill -9 mid-write, two scorings at once, the same batch again.

Each test ends by reading the warehouse ledger and tables: every batch is there exactly once,
with all its rows, or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.scoring.output import OutputExistsError, batch_output_path
from risk_app.scoring.staged import score_and_record
from risk_app.storage.scores import file_batch_id, scoring_ledger
from risk_app.storage.warehouse import query
from tests.reliability.conftest import KILLED, applications, run_child, start_child
from tests.storage.rows import scored_rows_per_batch

pytestmark = pytest.mark.slow  # slow: scheduled first (tests/conftest.py)

SCORE_IN_CHILD = """
from tests.scoring.doubles import load_double_artifact
from risk_app.scoring.staged import score_and_record
{patch}
outcome = score_and_record({source!r}, risk_model=load_double_artifact({model!r}), reasons=0)
print(outcome.record.status)
"""


def _score_in_process(source: Path, model: Path) -> str:
    from tests.scoring.doubles import load_double_artifact

    return score_and_record(source, risk_model=load_double_artifact(model), reasons=0).record.status


@pytest.fixture
def batch(risk_app_home: Path) -> Path:
    path = risk_app_home / "batch_A.csv"
    applications(40, seed=1).to_csv(path, index=False)
    return path


KILL_POINTS = {
    # After the scores are inserted, before COMMIT: the transaction must vanish.
    "mid_warehouse_write": """
import risk_app.storage.scores as s
_insert = s._insert
def insert_then_die(con, table, frame):
    _insert(con, table, frame)
    if table == s.SCORES:
        _die()
s._insert = insert_then_die
""",
    # Ledger committed, output not yet written.
    "before_output": """
import risk_app.scoring.staged as o
kill_before(o, "_publish")
""",
    # Output bytes written to the temp file and fsynced, not yet linked into place.
    "mid_output_write": """
import os
kill_before(os, "link")
""",
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_during_scoring_leaves_the_batch_whole_or_absent(
    point: str, batch: Path, double_model: Path, risk_app_home: Path
) -> None:
    code = SCORE_IN_CHILD.format(patch=KILL_POINTS[point], source=str(batch), model=str(double_model))
    child = run_child(code, risk_app_home)
    assert child.returncode == KILLED, child.stderr[-2000:]

    batch_id = file_batch_id(batch)
    output = batch_output_path(batch, batch_id, model_version="double-v1")
    assert not output.exists()  # never a partial output under the real name
    committed = point != "mid_warehouse_write"
    ledger = scoring_ledger()
    assert list(ledger["batch_id"]) == ([batch_id] if committed else [])
    assert scored_rows_per_batch() == ({batch_id: 40} if committed else {})

    # Running the same file again finishes the job, without counting anything twice.
    status = _score_in_process(batch, double_model)
    assert status == ("already_recorded" if committed else "appended")
    assert scored_rows_per_batch() == {batch_id: 40}
    assert len(scoring_ledger()) == 1
    assert len(pd.read_parquet(output)) == 40


def test_two_scorings_of_the_same_and_another_file_at_once(
    batch: Path, double_model: Path, risk_app_home: Path
) -> None:
    other = risk_app_home / "batch_B.parquet"
    applications(25, seed=2).to_parquet(other, index=False)
    children = [
        start_child(SCORE_IN_CHILD.format(patch="", source=str(src), model=str(double_model)), risk_app_home)
        for src in (batch, batch, other)
    ]
    results = [(c.wait(timeout=180), *c.communicate()) for c in children]
    assert all(code == 0 for code, _, _ in results), [err[-1500:] for _, _, err in results]
    statuses = sorted(out.strip().splitlines()[-1] for _, out, _ in results)
    assert statuses == ["already_recorded", "appended", "appended"]

    assert scored_rows_per_batch() == {file_batch_id(batch): 40, file_batch_id(other): 25}
    ledger = scoring_ledger()
    assert sorted(ledger["n_scored"]) == [25, 40]
    assert set(ledger["origin"]) == {"cli"}


def test_same_content_under_another_name_adds_nothing_and_says_so(
    batch: Path, double_model: Path, risk_app_home: Path
) -> None:
    from tests.scoring.doubles import load_double_artifact

    model = load_double_artifact(double_model)
    first = score_and_record(batch, risk_model=model, reasons=0)
    copy = risk_app_home / "copy_of_batch_A.csv"
    copy.write_bytes(batch.read_bytes())
    again = score_and_record(copy, risk_model=model, reasons=0)
    assert first.record.status == "appended" and again.record.status == "already_recorded"
    assert "already scored by model double-v1" in again.summary()
    assert scored_rows_per_batch() == {first.batch_id: 40}
    # A second model scoring the same batch is a new record beside the first, in its own file.
    model.version = "double-v2"
    other_model = score_and_record(batch, risk_model=model, reasons=0)
    assert other_model.record.status == "appended"
    assert other_model.output_path != first.output_path and Path(first.output_path).exists()
    assert len(query("select * from risk.scored_applications")) == 80


def test_the_same_file_scored_again_after_the_first_finished_is_already_scored(
    batch: Path, double_model: Path, risk_app_home: Path
) -> None:
    """The race two scorings of one file can lose: the second starts after the first published."""
    from tests.scoring.doubles import load_double_artifact

    model = load_double_artifact(double_model)
    first = score_and_record(batch, risk_model=model, reasons=0)
    again = score_and_record(batch, risk_model=model, reasons=0)
    assert first.record.status == "appended" and again.record.status == "already_recorded"
    assert again.output_path == first.output_path and again.n_scored == first.n_scored == 40
    assert again.n_declined == first.n_declined
    # A file under the second model's name that nobody recorded: refused, left alone, nothing added.
    model.version = "double-v2"
    stray = batch_output_path(batch, first.batch_id, model_version="double-v2")
    stray.write_bytes(b"someone else's file")
    with pytest.raises(OutputExistsError, match="already exists"):
        score_and_record(batch, risk_model=model, reasons=0)
    assert stray.read_bytes() == b"someone else's file"
    assert len(scoring_ledger()) == 1
