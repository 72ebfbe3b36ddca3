"""Outcome files that contradict each other (issue 20 §5): at once, within one file, or hidden
behind a NUL.

Two `risk-app outcomes add` of files with the same new ids and opposite labels, run at once,
were both accepted in full: the checks against earlier outcomes ran outside the warehouse lock.
Within one file, a contradictory pair kept the first label. Both are decided now under the lock
that writes, and a contradiction quarantines every row of the id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from risk_app.outcomes import store
from risk_app.outcomes.ingest import add_outcome_file
from tests.outcomes.conftest import SPEC, german_rows, outcome_file, record_batch
from tests.reliability.conftest import start_child

LABEL = SPEC.target.column

ADD_IN_CHILD = """
import time
import risk_app.outcomes.ingest as ingest
original = ingest._book_failures
def slow_book_failures(*args, **kwargs):
    time.sleep(2.0)  # widen the window between reading earlier outcomes and writing
    return original(*args, **kwargs)
ingest._book_failures = slow_book_failures
time.sleep(max(0.0, {start_at} - time.time()))  # both children past their imports: start together
report = ingest.add_outcome_file({path!r}, "german_credit", origin="cli")
print(report.n_accepted, report.n_quarantined, ",".join(sorted(set(report.quarantine["check"]))) or "-")
"""


@pytest.fixture
def approved() -> Callable[[int], pd.DataFrame]:
    """Record `n` scored German credit applications (every 5th declined); the approved ones."""

    def make(n: int) -> pd.DataFrame:
        valid = german_rows(n)
        declined = [j % 5 == 4 for j in range(n)]
        record_batch(valid, "2025-01-15", [0.3] * n, declined, batch_id="batch-2025-01")
        return valid.loc[[not d for d in declined]]

    return make


def _flipped(labels: pd.Series) -> pd.Series:
    return labels.map({"good": "bad", "bad": "good"})


def test_two_files_with_opposite_labels_at_once_are_ordered_by_the_lock(
    approved: Callable[[int], pd.DataFrame], risk_app_home: Path
) -> None:
    rows = approved(40)
    first = outcome_file(risk_app_home / "lender_a.csv", rows)
    flipped = rows.assign(**{LABEL: _flipped(rows[LABEL])})
    second = outcome_file(risk_app_home / "lender_b.csv", flipped)
    start_at = time.time() + 6.0
    code = [ADD_IN_CHILD.format(path=path, start_at=start_at) for path in (first, second)]
    children = [start_child(c, risk_app_home) for c in code]
    results = [(c.wait(timeout=300), *c.communicate()) for c in children]
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    lines = sorted(out.strip().splitlines()[-1] for _, out, _ in results)
    n = len(rows)
    assert lines == sorted([f"{n} 0 -", f"0 {n} consistent_outcome"])

    stored = store.read_rows(store.OUTCOMES)
    assert len(stored) == n
    assert stored.groupby("application_id")["outcome_default"].nunique().max() == 1


def test_a_contradictory_pair_in_one_file_quarantines_both_rows(
    approved: Callable[[int], pd.DataFrame], tmp_path: Path
) -> None:
    four = approved(20).head(4)
    torn, repeated = four.iloc[[0]], four.iloc[[1]]
    rows = pd.concat(
        [
            four,  # rows 1-4
            torn.assign(**{LABEL: _flipped(torn[LABEL])}),  # row 5: the other label for row 1's id
            repeated,  # row 6: the same label again for row 2's id
        ]
    )
    report = add_outcome_file(outcome_file(tmp_path / "outcomes.csv", rows), SPEC)
    assert (report.n_in, report.n_accepted, report.n_quarantined) == (6, 3, 3)
    checks = dict(zip(report.quarantine["row_number"], report.quarantine["check"], strict=True))
    assert checks == {1: "consistent_in_file", 5: "consistent_in_file", 6: "field_uniqueness"}
    assert "different outcomes" in report.quarantine["reason"].iloc[0]
    stored = store.read_rows(store.OUTCOMES)
    assert sorted(stored["application_id"]) == sorted(four["application_id"].iloc[1:])


def test_a_nul_in_an_outcome_id_records_nothing_against_another_application(
    approved: Callable[[int], pd.DataFrame], tmp_path: Path
) -> None:
    real = approved(10).head(1)
    hidden = real.assign(application_id=real["application_id"] + "\x00 and more")
    report = add_outcome_file(outcome_file(tmp_path / "outcomes.csv", hidden), SPEC)
    assert (report.n_accepted, report.n_quarantined) == (0, 1)
    assert "\\u0000" in report.quarantine["failure_value"].iloc[0]
    assert store.read_rows(store.OUTCOMES).empty


def test_a_huge_outcome_id_is_quarantined_quoting_only_a_prefix(
    approved: Callable[[int], pd.DataFrame], tmp_path: Path
) -> None:
    real = approved(10).head(1)
    huge = real.assign(application_id="X" * 5_000_000)
    report = add_outcome_file(outcome_file(tmp_path / "outcomes.csv", huge), SPEC)
    assert (report.n_accepted, report.n_quarantined) == (0, 1)
    stored = store.read_rows(store.QUARANTINE)
    for column in ("application_id", "failure_value", "reason"):
        assert stored[column].str.len().max() < 400, column
