"""The override ledger: every override file once, every bad row quarantined with its reason.

A scoring ledger is filled without a model (real German credit rows, made-up PDs, as the
outcome tests do), then analysts' override files go in: good rows are recorded with the
model version and PD the ledger shows, and every way a row can be wrong — never scored, scored
in another batch, another data set's batch, the ledger shows the other decision, not an
override, an unknown reason code, twice in one file, contradicting or repeating an earlier
file — is quarantined with file, row and reason; rows in = accepted + quarantined.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.override import DEFAULT_REASON_CODES
from risk_app.cli.main import app
from risk_app.errors import DataFileError
from risk_app.overrides import store
from risk_app.overrides.ingest import add_override_file
from risk_app.storage.scores import ScoredBatch, record_scored_batch
from tests.outcomes.conftest import german_rows, record_batch

BATCH_A, BATCH_B, UCI_BATCH, NEVER = "a" * 64, "b" * 64, "c" * 64, "d" * 64
REASON_CHECK = "isin(" + str(list(DEFAULT_REASON_CODES)) + ")"


@pytest.fixture
def ledger() -> pd.DataFrame:
    """Two German credit batches of 10 (app-0..9 in A, app-10..19 in B; every 3rd declined)
    and one batch of another data set."""
    frames = []
    for batch, offset in ((BATCH_A, 0), (BATCH_B, 10)):
        valid = german_rows(10, offset=offset)
        declined = [i % 3 == 0 for i in range(10)]
        record_batch(valid, "2025-03-15", [0.2 + 0.05 * i for i in range(10)], declined, batch_id=batch)
        frames.append(
            valid.assign(batch_id=batch, decision=["decline" if d else "approve" for d in declined])
        )
    uci = pd.DataFrame(
        {
            "application_id": ["uci-1"], "probability_of_default": [0.4], "risk_grade": ["C"],
            "decision": ["approve"], "model_version": ["uci_credit_card/1"],
            "scored_at": [pd.Timestamp("2025-03-15", tz="UTC")],
        }
    )  # fmt: skip
    record_scored_batch(
        ScoredBatch(batch_id=UCI_BATCH, model_version="uci_credit_card/1", dataset="uci_credit_card",
                    source_file="uci.csv", scores=uci)
    )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _row(
    app_id: str, batch: str, model: str, decision: str, reason: str = "verified_income", **extra: str
) -> dict:
    return {
        "application_id": app_id, "batch_id": batch, "model_decision": model, "analyst_decision": decision,
        "reason_code": reason, "analyst": extra.get("analyst", "AN-017"),
        "decided_at": extra.get("decided_at", "2025-03-16T10:30:00"),
    }  # fmt: skip


def _write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_good_overrides_are_recorded_once_with_what_the_ledger_knew(
    ledger: pd.DataFrame, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "overrides.csv",
        [
            _row("app-0", BATCH_A, "decline", "approve"),  # low side: approve a model decline
            _row("app-1", BATCH_A, "approve", "decline", "adverse_information"),  # high side
            _row("app-13", BATCH_B, "decline", "approve", "Existing_Relationship "),  # case and spaces
        ],
    )
    report = add_override_file(path, "german_credit", origin="cli")
    assert (report.status, report.n_in, report.n_accepted, report.n_quarantined) == ("recorded", 3, 3, 0)
    recorded = store.read_rows(store.OVERRIDES, {"dataset": "german_credit"}).sort_values("source_row")
    assert recorded["application_id"].tolist() == ["app-0", "app-1", "app-13"]
    assert recorded["side"].tolist() == ["low", "high", "low"]
    assert recorded["reason_code"].tolist() == [
        "verified_income",
        "adverse_information",
        "existing_relationship",
    ]
    assert set(recorded["model_version"]) == {"german_credit/1"}
    assert recorded["probability_of_default"].tolist() == pytest.approx([0.2, 0.25, 0.35])
    assert recorded["batch_id"].tolist() == [BATCH_A, BATCH_A, BATCH_B]

    # The same content again, under another name too: nothing added, and it says so.
    for again_path in (path, _write(tmp_path / "renamed.csv", pd.read_csv(path).to_dict("records"))):
        again = add_override_file(again_path, "german_credit")
        assert again.status == "already_recorded" and again.n_accepted == 3
        assert "nothing added" in again.message
    assert len(store.read_rows(store.OVERRIDES)) == 3
    assert len(store.read_rows(store.FILES)) == 1


def test_every_bad_row_is_quarantined_with_its_reason(ledger: pd.DataFrame, tmp_path: Path) -> None:
    earlier = _write(tmp_path / "earlier.csv", [_row("app-3", BATCH_A, "decline", "approve"),
                                                _row("app-4", BATCH_A, "approve", "decline")])  # fmt: skip
    assert add_override_file(earlier, "german_credit").n_accepted == 2
    rows = [
        _row("app-6", BATCH_A, "decline", "approve"),  # 1: fine
        _row("app-99", BATCH_A, "approve", "decline"),  # 2: never scored
        _row("app-12", BATCH_A, "approve", "decline"),  # 3: scored, but in batch B
        _row("app-7", NEVER, "approve", "decline"),  # 4: no such batch
        _row("uci-1", UCI_BATCH, "approve", "decline"),  # 5: another data set's batch
        _row("app-2", BATCH_A, "decline", "approve"),  # 6: the ledger says the model approved
        _row("app-5", BATCH_A, "approve", "approve"),  # 7: not an override
        _row("app-8", BATCH_A, "approve", "decline", "gut_feeling"),  # 8: unknown reason code
        _row("app-3", BATCH_A, "decline", "approve"),  # 9: already recorded
        _row("app-4", BATCH_A, "approve", "approve"),  # 10: not an override (and contradicts)
        _row("app-10", BATCH_B, "approve", "decline", analyst=""),  # 11: no analyst reference
        _row("app-11", BATCH_B, "approve", "decline", decided_at="yesterday"),  # 12: unreadable time
        _row("app-14", BATCH_B, "approve", "decline"),  # 13: fine
        _row("app-14", BATCH_B, "approve", "decline"),  # 14: the same override twice in one file
        _row("app-17", BATCH_B, "approve", "decline"),  # 15: contradicts row 16
        _row("app-17", BATCH_B, "decline", "approve"),  # 16: contradicts row 15
    ]
    path = _write(tmp_path / "bad.csv", rows)
    report = add_override_file(path, "german_credit")
    assert report.n_in == len(rows) == report.n_accepted + report.n_quarantined
    by_row = report.quarantine.groupby("row_number")["check"].agg(set).to_dict()
    assert by_row == {
        2: {"known_application"}, 3: {"scored_in_batch"}, 4: {"known_batch"}, 5: {"batch_of_dataset"},
        6: {"matches_ledger"}, 7: {"overrides_the_model"}, 8: {REASON_CHECK}, 9: {"not_already_recorded"},
        10: {"overrides_the_model"}, 11: {"not_nullable"}, 12: {"coerce_dtype('datetime64[ns]')"},
        14: {"field_uniqueness"}, 15: {"consistent_in_file"}, 16: {"consistent_in_file"},
    }  # fmt: skip
    assert report.n_accepted == 2  # rows 1 and 13
    reasons = dict(zip(report.quarantine["row_number"], report.quarantine["reason"], strict=False))
    assert reasons[2] == (
        "row 2, field application_id='app-99': no application of this data set was ever scored under this id"
    )
    assert reasons[6].endswith("the scoring ledger shows the model made the other decision")
    assert reasons[8].startswith("row 8, field reason_code='gut_feeling': not one of the allowed values")
    assert reasons[9].endswith("this override was already recorded from an earlier file")
    stored = store.read_rows(store.QUARANTINE, {"file_id": report.file_id})
    assert len(stored) == len(report.quarantine) and set(stored["source_file"]) == {str(path)}


def test_contradicting_an_earlier_override_and_contradictions_within_a_file(
    ledger: pd.DataFrame, tmp_path: Path
) -> None:
    add_override_file(
        _write(tmp_path / "first.csv", [_row("app-0", BATCH_A, "decline", "approve")]), "german_credit"
    )
    # Another analyst later declines what the first approved: the ledger keeps the first.
    later = add_override_file(
        _write(tmp_path / "later.csv", [_row("app-0", BATCH_A, "decline", "decline", analyst="AN-2")]),
        "german_credit",
    )
    assert later.quarantine["check"].tolist() == ["overrides_the_model"]
    # A file with two different analyst decisions for one application takes neither.
    torn = add_override_file(
        _write(tmp_path / "torn.csv", [_row("app-1", BATCH_A, "approve", "decline"),
                                       _row("app-1", BATCH_A, "decline", "approve")]),
        "german_credit",
    )  # fmt: skip
    assert torn.n_accepted == 0 and set(torn.quarantine["check"]) <= {"consistent_in_file", "matches_ledger"}
    assert len(store.read_rows(store.OVERRIDES)) == 1


def test_the_deployments_own_reason_codes(ledger: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(tmp_path / "o.csv", [_row("app-0", BATCH_A, "decline", "approve", "branch_knowledge")])
    refused = add_override_file(path, "german_credit")
    assert refused.n_accepted == 0
    other = _write(tmp_path / "o2.csv", [_row("app-1", BATCH_A, "approve", "decline", "branch_knowledge")])
    taken = add_override_file(other, "german_credit", reason_codes=("branch_knowledge", "other"))
    assert taken.n_accepted == 1


def test_a_file_without_a_column_is_refused_in_one_sentence(ledger: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    pd.DataFrame([_row("app-0", BATCH_A, "decline", "approve")]).drop(columns=["reason_code"]).to_csv(
        path, index=False
    )
    with pytest.raises(DataFileError, match=r"short\.csv.*missing column\(s\) reason_code"):
        add_override_file(path, "german_credit")


def test_a_failure_mid_write_leaves_nothing(
    ledger: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "o.csv", [_row("app-0", BATCH_A, "decline", "approve")])
    real = store.insert_rows

    def fail_on_quarantine(con, table, frame) -> None:  # noqa: ANN001
        real(con, table, frame)
        if table == store.OVERRIDES:
            raise KeyboardInterrupt("killed between two inserts")

    monkeypatch.setattr(store, "insert_rows", fail_on_quarantine)
    with pytest.raises(KeyboardInterrupt):
        add_override_file(path, "german_credit")
    monkeypatch.setattr(store, "insert_rows", real)
    assert store.read_rows(store.OVERRIDES).empty and store.read_rows(store.FILES).empty
    assert add_override_file(path, "german_credit").n_accepted == 1  # and the file can go in again


def test_overrides_add_from_the_command_line(ledger: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(tmp_path / "o.csv", [_row("app-0", BATCH_A, "decline", "approve"),
                                       _row("app-99", BATCH_A, "approve", "decline")])  # fmt: skip
    runner = CliRunner()
    added = runner.invoke(app, ["overrides", "add", str(path), "--dataset", "german_credit"])
    assert added.exit_code == 0, added.output
    text = " ".join(added.output.split())
    assert "2 override row(s): 1 accepted, 1 quarantined" in text and "app-99" in text
    again = runner.invoke(app, ["overrides", "add", str(path)])
    assert again.exit_code == 0 and "nothing added" in " ".join(again.output.split())
    codes = runner.invoke(app, ["overrides", "add", str(path), "--reason-codes", " , "])
    assert codes.exit_code == 2 and "no reason codes" in codes.output
