"""Override monitoring: rates per grade, reason and analyst against the limit, and, once outcomes
come back, whether the analysts' overridden approvals defaulted less than the model said.

An accepted override also changes what was booked: a low-side override (the analyst approved
a model decline) is a loan whose outcome the outcome ledger now takes, a high-side override
(the analyst declined a model approval) is not.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.outcomes.book import book_counts, labeled_book
from risk_app.outcomes.ingest import add_outcome_file
from risk_app.overrides.ingest import add_override_file
from risk_app.overrides.monitor import monitor_overrides
from tests.outcomes.conftest import SPEC, german_rows, record_batch

BATCH, RISKY = "a" * 64, "f" * 64


def _overrides(path: Path, rows: list[tuple[str, str, str, str, str]], batch: str = BATCH) -> Path:
    """Override file of (id, model decision, analyst decision, reason, analyst) rows."""
    pd.DataFrame(
        [
            {"application_id": a, "batch_id": batch, "model_decision": m, "analyst_decision": d,
             "reason_code": r, "analyst": who, "decided_at": "2025-03-16"}
            for a, m, d, r, who in rows
        ]
    ).to_csv(path, index=False)  # fmt: skip
    return path


def _outcomes(path: Path, ids: list[str], label: str) -> Path:
    frame = pd.DataFrame({"application_id": ids, SPEC.target.column: label, "observation_date": "2025-09-30"})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def batch() -> pd.DataFrame:
    """10 applications at PD 0.3 (one grade); app-0, 3, 6, 9 declined, the other 6 approved."""
    valid = german_rows(10)
    record_batch(valid, "2025-03-15", [0.3] * 10, [i % 3 == 0 for i in range(10)], batch_id=BATCH)
    return valid


def test_rates_per_grade_reason_and_analyst_against_the_limit(batch: pd.DataFrame, tmp_path: Path) -> None:
    rows = [
        ("app-0", "decline", "approve", "verified_income", "AN-1"),
        ("app-3", "decline", "approve", "other", "AN-1"),
        ("app-1", "approve", "decline", "adverse_information", "AN-2"),
    ]
    assert add_override_file(_overrides(tmp_path / "o.csv", rows), "german_credit").n_accepted == 3
    report = monitor_overrides("german_credit", max_rate=0.10, min_decisions=5)
    rates = report.rates.set_index(["dimension", "value", "side"])
    grade = str(labeled_book("german_credit")["risk_grade"].iloc[0])
    assert rates.loc[("grade", grade, "low"), ["decisions", "overrides"]].tolist() == [4, 2]
    assert rates.loc[("grade", grade, "high"), ["decisions", "overrides"]].tolist() == [6, 1]
    assert rates.loc[("reason", "verified_income", "low"), "rate"] == pytest.approx(0.25)
    assert rates.loc[("analyst", "AN-1", "low"), "rate"] == pytest.approx(0.5)
    assert rates.loc[("analyst", "AN-2", "high"), "rate"] == pytest.approx(1 / 6)
    # Over 10 % on at least 5 decisions: the high side's 1 of 6 (per grade, reason and analyst);
    # the low side's 2 of 4 rests on too few declines to be judged.
    flagged = set(map(tuple, report.over_limit[["dimension", "side"]].to_numpy()))
    assert flagged == {("grade", "high"), ("reason", "high"), ("analyst", "high")}
    limit, verdict = report.sentences()
    assert limit.startswith("german_credit: override rates above 10%: high-side grade")
    assert verdict == "no overridden approval has an outcome yet (2 pending): who was right is not known"
    assert monitor_overrides("german_credit", max_rate=0.9, min_decisions=5).over_limit.empty


def test_overrides_change_what_was_booked(batch: pd.DataFrame, tmp_path: Path) -> None:
    rows = [("app-0", "decline", "approve", "verified_income", "AN-1"),
            ("app-1", "approve", "decline", "adverse_information", "AN-2")]  # fmt: skip
    add_override_file(_overrides(tmp_path / "o.csv", rows), "german_credit")
    book = labeled_book("german_credit").set_index("application_id")
    assert book.loc["app-0", ["decision", "booked_decision", "override_side", "status"]].tolist() == [
        "decline", "approve", "low", "pending",
    ]  # fmt: skip
    assert book.loc["app-1", ["booked_decision", "status"]].tolist() == ["decline", "declined"]
    assert book_counts(book.reset_index()) == {"scored": 10, "with_outcome": 0, "pending": 6, "declined": 4}
    # The analyst-approved loan gets its outcome; the analyst-declined one cannot have one.
    report = add_outcome_file(_outcomes(tmp_path / "out.csv", ["app-0", "app-1"], "good"), "german_credit")
    assert report.n_accepted == 1 and report.quarantine["check"].tolist() == ["booked_application"]


def test_were_the_analysts_right(tmp_path: Path) -> None:
    # The model declined ten applicants at PD 0.6; an analyst approved them all; none defaulted.
    valid = german_rows(10, offset=20)
    record_batch(valid, "2025-03-15", [0.6] * 10, [True] * 10, batch_id=RISKY)
    ids = [f"app-{20 + i}" for i in range(10)]
    rows = [(a, "decline", "approve", "existing_relationship", "AN-7") for a in ids]
    add_override_file(_overrides(tmp_path / "o.csv", rows, batch=RISKY), "german_credit")
    add_outcome_file(_outcomes(tmp_path / "out.csv", ids, "good"), "german_credit")
    report = monitor_overrides("german_credit")
    assert report.approvals["n_with_outcome"] == 10 and report.approvals["defaults"] == 0
    assert report.approvals["jeffreys_high"] < report.approvals["mean_pd"] == pytest.approx(0.6)
    assert report.verdict.startswith("10 overridden approval(s) with an outcome defaulted at 0.0%")
    assert report.verdict.endswith("the analysts were right, these loans were safer than the model said")


def test_overridden_approvals_that_default_as_predicted(tmp_path: Path) -> None:
    valid = german_rows(6, offset=40)
    record_batch(valid, "2025-03-15", [0.5] * 6, [True] * 6, batch_id=RISKY)
    ids = [f"app-{40 + i}" for i in range(6)]
    add_override_file(
        _overrides(
            tmp_path / "o.csv", [(a, "decline", "approve", "other", "AN-7") for a in ids], batch=RISKY
        ),
        "german_credit",
    )
    add_outcome_file(_outcomes(tmp_path / "bad.csv", ids[:3], "bad"), "german_credit")
    add_outcome_file(_outcomes(tmp_path / "good.csv", ids[3:], "good"), "german_credit")
    verdict = monitor_overrides("german_credit").verdict
    assert "defaulted at 50.0%" in verdict and verdict.endswith("the overrides added the risk it priced")
