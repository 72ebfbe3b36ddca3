"""A batch's score summary and drift sample do not depend on how the batch was chunked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk_app.scoring.summary import BoundedSample, ScoreTally


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def _batch(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    ids = [f"id-{i}" for i in range(n)]
    applications = pd.DataFrame({"application_id": ids, "credit_amount": rng.integers(100, 9000, n)})
    pd_ = rng.random(n)
    scored = pd.DataFrame({
        "application_id": ids, "probability_of_default": pd_,
        "risk_grade": np.where(pd_ < 0.3, "A", np.where(pd_ < 0.6, "B", "C")),
        "decision": np.where(pd_ >= 0.5, "decline", "approve"),
    })  # fmt: skip
    return applications, scored


@pytest.mark.parametrize("size", [1, 7, 50])
def test_the_sample_is_the_same_however_the_rows_are_chunked(size: int) -> None:
    frame = pd.DataFrame({"row": range(120)})
    whole, chunked = BoundedSample(25, seed=3), BoundedSample(25, seed=3)
    whole.add(frame)
    for chunk in _chunks(frame, size):
        chunked.add(chunk)
    pd.testing.assert_frame_equal(chunked.frame(), whole.frame())
    rows = chunked.frame()["row"]
    assert len(rows) == 25 and rows.is_unique and rows.is_monotonic_increasing  # in file order


def test_a_small_batch_is_sampled_whole_and_a_large_one_evenly() -> None:
    small = BoundedSample(50)
    small.add(pd.DataFrame({"row": range(40)}))
    assert small.frame()["row"].tolist() == list(range(40))
    large = BoundedSample(2_000)
    for chunk in _chunks(pd.DataFrame({"row": range(20_000)}), 3_000):
        large.add(chunk)
    # Uniform over the file: each tenth of it holds about a tenth of the sample (binomial sd ~13).
    per_tenth = np.bincount(large.frame()["row"].to_numpy() // 2_000, minlength=10)
    assert per_tenth.min() > 140 and per_tenth.max() < 260


def test_the_tally_of_chunks_equals_the_tally_of_the_whole() -> None:
    applications, scored = _batch(90)
    whole, chunked = ScoreTally(sample_rows=30), ScoreTally(sample_rows=30)
    whole.add(applications, scored)
    for a, s in zip(_chunks(applications, 8), _chunks(scored, 8), strict=True):
        chunked.add(a, s)
    one, many = whole.summary(), chunked.summary()
    assert (many.n_scored, many.n_declined, many.grades) == (one.n_scored, one.n_declined, one.grades)
    assert many.n_declined == int((scored["decision"] == "decline").sum())
    assert many.mean_probability_of_default == pytest.approx(scored["probability_of_default"].mean())
    assert sum(many.grades.values()) == 90 and many.grade_table()["risk_grade"].tolist() == ["A", "B", "C"]
    pd.testing.assert_frame_equal(many.head, scored.head(20))
    pd.testing.assert_frame_equal(chunked.sample(), whole.sample())
    # The sampled PDs are the sampled rows' own.
    by_id = scored.set_index("application_id")["probability_of_default"]
    assert np.allclose(chunked.sample_scores(), by_id[chunked.sample()["application_id"]].to_numpy())


def test_scores_out_of_step_with_their_applications_are_refused() -> None:
    applications, scored = _batch(5)
    with pytest.raises(ValueError, match="row for row"):
        ScoreTally().add(applications, scored.iloc[::-1])
