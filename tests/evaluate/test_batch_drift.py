"""Drift that knows its sample size: small batches are not judged, chance is not drift."""

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.evaluate.batch_drift import BatchDriftThresholds, batch_drift


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    spec = load_spec("german_credit")
    return workflow.ingest_and_validate(spec.data_path, spec=spec).valid


def test_sixty_rows_from_training_are_too_few_to_judge(train: pd.DataFrame) -> None:
    report = batch_drift(train, train.sample(60, random_state=1), "german_credit", [], [])
    assert report.status == "too_few_rows"
    assert "Too few rows to judge drift: 60 scored" in report.sentence


def test_a_sample_of_training_itself_is_not_drift(train: pd.DataFrame) -> None:
    thresholds = BatchDriftThresholds(min_rows=100, bootstrap_samples=30)
    batch = train.sample(300, random_state=2)
    reference = [0.05 * (i % 19 + 1) for i in range(600)]
    report = batch_drift(train, batch, "german_credit", reference, reference[::2], thresholds)
    features = report.table[report.table["kind"] != "score"]
    assert set(features["status"]) <= {"ok", "within noise"}
    assert report.sentence.startswith("No drift beyond chance in 300 scored rows")


def test_a_shifted_amount_fails_and_is_named(train: pd.DataFrame) -> None:
    thresholds = BatchDriftThresholds(min_rows=100, bootstrap_samples=30)
    batch = train.sample(300, random_state=3).copy()
    batch["credit_amount"] = batch["credit_amount"] * 4
    report = batch_drift(train, batch, "german_credit", [], [], thresholds)
    assert report.status == "fail"
    assert "credit_amount PSI" in report.sentence and "(fail)" in report.sentence
    row = report.table.set_index("column").loc["credit_amount"]
    assert row["psi"] > row["noise_band"]


def test_the_score_is_reported_beside_the_inputs_not_counted_among_them(train: pd.DataFrame) -> None:
    """The sentence once read "3 of 21 inputs moved", counting the score's own PSI as an input."""
    import numpy as np

    thresholds = BatchDriftThresholds(min_rows=100, bootstrap_samples=30)
    batch = train.sample(300, random_state=3).copy()
    batch["credit_amount"] = batch["credit_amount"] * 4
    rng = np.random.default_rng(0)
    reference, shifted = rng.beta(2, 8, 2000), rng.beta(6, 4, 300)  # the score moved too
    report = batch_drift(train, batch, "german_credit", reference, shifted, thresholds)
    inputs = int((report.table["kind"] != "score").sum())
    assert f"of {inputs} inputs moved beyond chance" in report.sentence
    assert "probability_of_default" not in report.sentence
    assert "the score's distribution moved (PSI" in report.sentence
