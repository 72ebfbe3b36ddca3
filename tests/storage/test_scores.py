"""The scoring ledger: append once, replace exactly one batch, follow new columns, keep old tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from risk_app.errors import RiskAppError
from risk_app.storage.locks import LockTimeoutError, file_lock
from risk_app.storage.scores import (
    ScoredBatch,
    file_batch_id,
    record_scored_batch,
    scoring_ledger,
)
from risk_app.storage.warehouse import list_tables, query, write_table
from tests.storage.rows import scored_rows_per_batch


def _scores(n: int, version: str = "m1", reasons: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "application_id": [f"app-{i}" for i in range(n)],
            "probability_of_default": [0.1 * (i % 10) for i in range(n)],
            "model_version": version,
            "scored_at": pd.Timestamp("2026-12-01", tz="UTC"),
        }
    )
    if reasons:
        frame["reason_1"] = "Duration: 48 months"
    return frame


def _batch(batch_id: str, n: int, **kwargs: object) -> ScoredBatch:
    version = str(kwargs.pop("model_version", "m1"))
    return ScoredBatch(
        batch_id=batch_id,
        model_version=version,
        dataset="german_credit",
        source_file=f"/landing/{batch_id}.csv",
        scores=_scores(n, version, bool(kwargs.pop("reasons", False))),
        **kwargs,  # type: ignore[arg-type]
    )


def test_append_is_once_per_batch_and_model() -> None:
    assert record_scored_batch(_batch("a" * 64, 5)).status == "appended"
    again = record_scored_batch(_batch("a" * 64, 5))
    assert again.status == "already_recorded" and "nothing added" in again.message
    assert record_scored_batch(_batch("a" * 64, 5, model_version="m2")).status == "appended"
    assert scored_rows_per_batch() == {"a" * 64: 10}
    assert len(scoring_ledger()) == 2


def test_replace_swaps_exactly_one_batch_and_new_columns_are_added() -> None:
    record_scored_batch(_batch("a" * 64, 5))
    record_scored_batch(_batch("b" * 64, 3))
    result = record_scored_batch(_batch("a" * 64, 4, reasons=True), mode="replace")
    assert (result.status, result.replaced_rows, result.rows) == ("replaced", 5, 4)
    assert scored_rows_per_batch() == {"a" * 64: 4, "b" * 64: 3}
    reasons = query("select batch_id, reason_1 from risk.scored_applications order by batch_id")
    assert reasons["reason_1"].isna().sum() == 3  # the other batch has no reasons: NULL, not dropped
    assert list(scoring_ledger()["batch_id"]) == ["b" * 64, "a" * 64]


def test_replacing_one_models_scores_of_a_batch_keeps_the_other_models() -> None:
    """Re-running the champion's Dagster partition must not delete the challenger's scores of
    the same file, and the batch's input rows are held once, not once per model."""
    applications = pd.DataFrame({"application_id": [f"app-{i}" for i in range(5)], "row_number": range(5)})
    record_scored_batch(_batch("a" * 64, 5, applications=applications))
    record_scored_batch(_batch("a" * 64, 5, model_version="m2", applications=applications))
    result = record_scored_batch(_batch("a" * 64, 4, applications=applications.head(4)), mode="replace")
    assert (result.status, result.replaced_rows) == ("replaced", 5)
    per_model = query(
        "select model_version, count(*) as n from risk.scored_applications group by 1 order by 1"
    )
    assert per_model.to_dict("list") == {"model_version": ["m1", "m2"], "n": [4, 5]}
    assert sorted(scoring_ledger()["model_version"]) == ["m1", "m2"]
    held = query("select count(*) as n from risk.scoring_applications")["n"].iloc[0]
    assert held == 5  # the batch's input rows, once: the other model's record still needs them


def test_a_table_from_before_the_ledger_is_kept_aside_not_mixed_in(risk_app_home: Path) -> None:
    import duckdb

    con = duckdb.connect(str(risk_app_home / "warehouse.duckdb"))
    con.execute("create schema risk; create table risk.scored_applications as select 1 as old_row")
    con.close()
    record_scored_batch(_batch("c" * 64, 2))
    assert scored_rows_per_batch() == {"c" * 64: 2}
    kept = [t for t in list_tables() if t.startswith("scored_applications_before_ledger_")]
    assert len(kept) == 1


def test_batch_id_is_the_content_hash(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("x,y\n1,2\n")
    second.write_text("x,y\n1,2\n")
    assert file_batch_id(first) == file_batch_id(second) and len(file_batch_id(first)) == 64


def test_required_fields_and_lock_timeout(tmp_path: Path) -> None:
    with pytest.raises(RiskAppError, match="batch_id and model_version"):
        record_scored_batch(_batch("", 1))
    held = pytest.raises(LockTimeoutError, match="still locked")
    with file_lock(tmp_path / "x.lock"), held, file_lock(tmp_path / "x.lock", timeout_s=0.2):
        pass


def test_other_tables_are_untouched() -> None:
    write_table("applications", pd.DataFrame({"a": [1, 2]}))
    record_scored_batch(_batch("d" * 64, 1))
    assert len(query('select * from "applications"')) == 2
