"""Occlusion reason codes: right field, right strengths, one batched model call.

The model here is a test double (the registry's RiskModel may not exist yet when this runs):
a genuine scikit-learn logistic regression over a few numeric fields, which it reads back out
of the serialized text with `parse_clauses`. A field whose clause is missing is imputed with
its training mean, so removing a field moves the score exactly as occlusion intends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from data_contracts.spec import load_spec
from risk_app.data.serialize import clause_label, parse_clauses, serialize_application
from risk_app.errors import RiskAppError
from risk_app.explain.reasons import reason_codes
from risk_app.paths import DEFAULT_DATASET
from tests.data.german import FIELD_LABELS

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
PROTECTED = load_spec("german_credit").protected_columns
# Protected attributes are never decline reasons: they are not occluded.
REASON_FIELDS = [f for f in FIELD_LABELS if f not in PROTECTED]


class TextLogisticModel:
    """Scores texts with a logistic regression on numeric fields parsed from the clauses."""

    def __init__(self, train: pd.DataFrame, fields: Sequence[str], threshold_at: dict[str, float]) -> None:
        self.fields = list(fields)
        self.labels = {FIELD_LABELS[f]: f for f in self.fields}
        x = train[self.fields].to_numpy(dtype=float)
        self.means = x.mean(axis=0)
        y = (train["creditability"] == "bad").astype(int).to_numpy()
        self.model = LogisticRegression(max_iter=1000).fit(x, y)
        point = np.array([threshold_at.get(f, m) for f, m in zip(self.fields, self.means, strict=True)])
        self.threshold = float(self.model.predict_proba(point[None, :])[0, 1])
        self.calls: list[int] = []

    def features(self, text: str) -> np.ndarray:
        values = dict(zip(self.fields, self.means, strict=True))
        for clause in parse_clauses(text):
            field = self.labels.get(clause_label(clause))
            if field is not None:
                values[field] = float(NUMBER.search(clause.split(":", 1)[1]).group())
        return np.array([values[f] for f in self.fields])

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        x = np.stack([self.features(t) for t in texts])
        return self.model.predict_proba(x)[:, 1]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    df = pd.read_csv(DEFAULT_DATASET)
    df.insert(0, "application_id", [f"app-{i:04d}" for i in range(len(df))])
    return df


def test_single_field_model_gives_that_field_as_reason_1(data) -> None:
    model = TextLogisticModel(data, ["duration_in_month"], {"duration_in_month": 30})
    assert model.model.coef_[0, 0] > 0  # longer loans default more in this data
    sample = data.sample(40, random_state=0)
    codes = reason_codes(sample, model, top_k=4)

    declined = sample[sample["duration_in_month"] >= 30]
    assert len(declined) > 3
    assert model.calls == [40, len(declined) * len(REASON_FIELDS)]  # two calls, never row by row
    assert codes.n_model_calls == 2
    assert set(codes.wide["application_id"]) == set(declined["application_id"])
    assert codes.wide["declined"].all()
    assert (codes.wide["reason_1"] == "Duration").all()
    assert (codes.wide["reason_1_field"] == "duration_in_month").all()
    expected_values = [f"{int(d)} months" for d in declined["duration_in_month"]]
    assert codes.wide["reason_1_value"].tolist() == expected_values
    assert (codes.wide["reason_1_strength"] > 0).all()
    # No other field moves this model, so there is no second reason.
    assert codes.wide["reason_2"].isna().all() and codes.wide["reason_4_strength"].isna().all()

    assert len(codes.long) == len(declined) * len(REASON_FIELDS)
    others = codes.long[codes.long["field"] != "duration_in_month"]
    assert np.allclose(others["strength"], 0.0)
    assert codes.long["is_reason"].sum() == len(declined)


def test_strengths_equal_row_by_row_occlusion(data) -> None:
    fields = [
        "duration_in_month",
        "credit_amount",
        "age_in_years",
        "installment_rate_in_percentage_of_disposable_income",
    ]
    model = TextLogisticModel(data, fields, {})
    sample = data.sample(12, random_state=1)
    codes = reason_codes(sample, model, top_k=3, only_declined=False)
    assert model.calls == [12 * (1 + len(REASON_FIELDS))]  # full texts and variants in one call
    assert len(codes.wide) == 12

    fresh = TextLogisticModel(data, fields, {})
    for (_, row), (_, reasons) in zip(sample.iterrows(), codes.wide.iterrows(), strict=True):
        p_full = fresh.predict_texts([serialize_application(row)])[0]
        assert reasons["probability_of_default"] == pytest.approx(p_full)
        manual = {
            f: p_full - fresh.predict_texts([serialize_application(row, exclude=(f,))])[0]
            for f in REASON_FIELDS
        }
        got = codes.long[codes.long["application_id"] == row["application_id"]].set_index("field")["strength"]
        for field, strength in manual.items():
            assert got[field] == pytest.approx(strength, abs=1e-12)
        positive = sorted((s, f) for f, s in manual.items() if s > 0)[::-1][:3]
        assert [reasons[f"reason_{k + 1}_field"] for k in range(len(positive))] == [f for _, f in positive]


def test_no_declines_means_one_call_and_empty_tables(data) -> None:
    model = TextLogisticModel(data, ["duration_in_month"], {"duration_in_month": 500})
    codes = reason_codes(data.head(10), model)
    assert model.calls == [10]
    assert codes.wide.empty and codes.long.empty
    assert "reason_4" in codes.wide.columns


def test_bad_inputs(data) -> None:
    model = TextLogisticModel(data, ["duration_in_month"], {"duration_in_month": 30})
    with pytest.raises(RiskAppError, match="missing from the applications"):
        reason_codes(data.head(5).drop(columns="purpose"), model)
    with pytest.raises(RiskAppError, match="top_k"):
        reason_codes(data.head(5), model, top_k=0)
    with pytest.raises(RiskAppError, match="no applications"):
        reason_codes(data.head(0), model)

    class Broken(TextLogisticModel):
        def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
            return super().predict_texts(texts)[:-1]

    broken = Broken(data, ["duration_in_month"], {"duration_in_month": 30})
    with pytest.raises(RiskAppError, match="returned 4 scores for 5 texts"):
        reason_codes(data.head(5), broken)


def test_follows_the_models_own_serialization(data) -> None:
    """A registry RiskModel exposes `exclude_fields`/`field_order`; excluded fields are never
    serialized, so never occluded nor reported."""
    model = TextLogisticModel(data, ["duration_in_month", "age_in_years"], {"duration_in_month": 30})
    model.exclude_fields = ["personal_status_and_sex", "age_in_years", "foreign_worker"]
    model.field_order = list(reversed(FIELD_LABELS))
    seen: list[str] = []
    original = model.predict_texts

    def spy(texts: Sequence[str]) -> np.ndarray:
        seen.extend(texts)
        return original(texts)

    model.predict_texts = spy  # type: ignore[method-assign]
    sample = data.sample(30, random_state=2)
    codes = reason_codes(sample, model, top_k=2)
    n_declined = int((sample["duration_in_month"] >= 30).sum())
    assert model.calls == [30, n_declined * (len(FIELD_LABELS) - 3)]  # the 3 protected are excluded
    assert not any("Age:" in t or "Foreign worker:" in t for t in seen)
    assert seen[0].startswith("Telephone:")  # reversed order, foreign_worker excluded
    assert set(codes.long["field"]) == set(FIELD_LABELS) - set(model.exclude_fields)
    assert (codes.wide["reason_1"] == "Duration").all()


def test_a_protected_attribute_is_never_a_reason(data) -> None:
    """A model driven by age alone still reads age, but age is never given as a decline reason."""
    model = TextLogisticModel(data, ["age_in_years"], {"age_in_years": 25})
    sample = data.sample(40, random_state=3)
    codes = reason_codes(sample, model, top_k=4)
    assert len(codes.wide) > 0  # some applications are declined (on age)
    assert not set(codes.long["field"]) & set(PROTECTED)
    assert codes.wide["reason_1"].isna().all()  # nothing else moves this model


def test_with_a_real_language_model_scorer(data) -> None:
    """The tiny local Qwen2 (untrained head) scoring through finetune.predict, which batches
    by token length: occlusion strengths must still line up with the right rows and fields."""
    from risk_app.data.serialize import serialize_frame
    from risk_app.finetune.predict import predict_proba
    from risk_app.models.loader import load_classifier

    model, tokenizer = load_classifier("tiny-qwen2")

    class LLMScorer:
        threshold = 0.0
        calls = 0

        def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
            self.calls += 1
            return predict_proba(model, tokenizer, list(texts), 32, 256)

    scorer = LLMScorer()
    sample = data.head(6)
    p = scorer.predict_texts(serialize_frame(sample).tolist())
    scorer.threshold, scorer.calls = float(np.median(p)), 0
    codes = reason_codes(sample, scorer, top_k=3)
    n_declined = int((p >= scorer.threshold).sum())
    assert scorer.calls == 2
    assert codes.n_texts_scored == 6 + n_declined * len(REASON_FIELDS)

    row = sample.loc[codes.wide.index[0]]
    p_full = scorer.predict_texts([serialize_application(row)])[0]
    got = codes.long[codes.long["application_id"] == row["application_id"]].set_index("field")["strength"]
    for field in ("duration_in_month", "purpose", "credit_amount"):
        p_without = scorer.predict_texts([serialize_application(row, exclude=(field,))])[0]
        assert got[field] == pytest.approx(p_full - p_without, abs=1e-4)
