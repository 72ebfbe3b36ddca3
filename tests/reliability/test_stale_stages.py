"""A scoring run killed while it held the warehouse lock leaves its hidden stage folder (the
batch's staged applications and scores: applicant data) in outputs/; the next scoring run in that
folder removes it, and says so, but never a stage whose owner process is alive (issue 20 §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from risk_app import paths
from risk_app.registry.processes import process_tags
from risk_app.scoring.staged import score_and_record, stage_root
from risk_app.scoring.stream import STAGE_OWNER
from tests.reliability.conftest import KILLED, applications, run_child

# Killed inside the warehouse transaction, after the scores were inserted: the lock is held, the
# stage holds the batch's applications and scores.
KILLED_IN_THE_WAREHOUSE = """
import risk_app.storage.scores as s
from tests.scoring.doubles import load_double_artifact
from risk_app.scoring.staged import score_and_record
_insert = s._insert
def insert_then_die(con, table, frame):
    _insert(con, table, frame)
    if table == s.SCORES:
        _die()
s._insert = insert_then_die
score_and_record({source!r}, risk_model=load_double_artifact({model!r}), reasons=0)
"""


def _stages() -> list[Path]:
    return sorted(paths.outputs_dir().glob(".*.stage"))


@pytest.fixture
def batches(risk_app_home: Path) -> tuple[Path, Path]:
    first, second = risk_app_home / "batch_A.csv", risk_app_home / "batch_B.csv"
    applications(30, seed=1).to_csv(first, index=False)
    applications(30, seed=2).to_csv(second, index=False)
    return first, second


def test_the_next_run_removes_a_killed_runs_stage_and_says_so(
    batches: tuple[Path, Path], double_model: Path, risk_app_home: Path
) -> None:
    from tests.scoring.doubles import load_double_artifact

    first, second = batches
    child = run_child(
        KILLED_IN_THE_WAREHOUSE.format(source=str(first), model=str(double_model)), risk_app_home
    )
    assert child.returncode == KILLED, child.stderr[-2000:]
    [killed] = _stages()
    assert any(killed.rglob("*.parquet"))  # the staged applications and scores of the batch
    # and the file's validated rows, staged before scoring (risk_app.scoring.staged)
    [validated] = sorted(stage_root().glob("*/cli-*"))
    assert any(validated.glob("valid-*.parquet"))

    # Beside it: a stage of a live scorer (this process) and one without an owner marker.
    live = paths.outputs_dir() / ".batch_C.csv.x.live.stage"
    live.mkdir()
    (live / STAGE_OWNER).write_text(json.dumps(process_tags()))
    unmarked = paths.outputs_dir() / ".batch_D.csv.x.unmarked.stage"
    unmarked.mkdir()

    outcome = score_and_record(second, risk_model=load_double_artifact(double_model), reasons=0)
    assert outcome.record.status == "appended"
    assert not killed.exists() and not validated.exists()
    assert outcome.stale_stages_removed == (str(killed), str(validated))
    assert "left by killed scoring runs" in outcome.summary() and str(killed) in outcome.summary()
    assert _stages() == [live, unmarked]  # a live run's stage, and one nobody can vouch for, stay

    again = score_and_record(first, risk_model=load_double_artifact(double_model), reasons=0)
    assert again.record.status == "appended" and again.stale_stages_removed == ()
