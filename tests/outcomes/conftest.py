"""A scoring ledger filled without a model: real German credit rows, made-up scores and dates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app.data.validate import validate_applications
from risk_app.policy.grades import assign_grades
from risk_app.storage.scores import ScoredBatch, record_scored_batch

SPEC = load_spec("german_credit")


def german_rows(n: int, offset: int = 0) -> pd.DataFrame:
    """`n` valid German credit applications with ids app-<offset + i>, and their true labels."""
    frame = pd.read_csv(SPEC.data_path, dtype=str).iloc[offset : offset + n].copy()
    frame.insert(0, "application_id", [f"app-{offset + i}" for i in range(n)])
    return validate_applications(frame, source="german_credit.csv", spec=SPEC).valid


def record_batch(
    valid: pd.DataFrame, scored_at: str, pds: Sequence[float], declined: Sequence[bool], batch_id: str
) -> None:
    """Append a scored batch to the ledger as the scoring code would (labels stripped)."""
    p = np.asarray(pds, dtype=float)
    scores = pd.DataFrame(
        {
            "application_id": valid["application_id"].astype(str).to_numpy(),
            "probability_of_default": p,
            "risk_grade": assign_grades(p),
            "decision": np.where(np.asarray(declined), "decline", "approve").astype(object),
            "model_version": "german_credit/1",
            "scored_at": pd.Series([pd.Timestamp(scored_at, tz="UTC")] * len(p), dtype="datetime64[ns, UTC]"),
        }
    )
    applications = valid.drop(columns=[SPEC.target.column, "default"])
    record_scored_batch(
        ScoredBatch(
            batch_id=batch_id,
            model_version="german_credit/1",
            dataset=SPEC.name,
            source_file=f"{batch_id}.csv",
            scores=scores,
            applications=applications,
        )
    )


@pytest.fixture
def scored_book() -> Callable[..., pd.DataFrame]:
    """Record one batch per month (`months`, `per_month` rows each, every 5th declined)."""

    def make(
        months: Sequence[str] = ("2025-01",), per_month: int = 20, pd_value: float = 0.3
    ) -> pd.DataFrame:
        frames = []
        for i, month in enumerate(months):
            valid = german_rows(per_month, offset=i * per_month)
            declined = [j % 5 == 4 for j in range(per_month)]
            record_batch(valid, f"{month}-15", [pd_value] * per_month, declined, batch_id=f"batch-{month}")
            frames.append(valid.assign(month=month, declined=declined))
        return pd.concat(frames, ignore_index=True)

    return make


def outcome_file(path, rows: pd.DataFrame, observed: str = "2025-09-30") -> str:  # noqa: ANN001
    """Write an outcome file: id, the data set's label, observation date."""
    frame = pd.DataFrame(
        {
            "application_id": rows["application_id"].astype(str).to_numpy(),
            SPEC.target.column: rows[SPEC.target.column].astype(str).to_numpy(),
            "observation_date": observed,
        }
    )
    frame.to_csv(path, index=False)
    return str(path)
