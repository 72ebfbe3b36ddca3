"""Classical baselines that read the free text too: TF-IDF and sentence embeddings.

A language model's edge is the words a table cannot hold, so on a data set whose spec
declares text columns (`spec.text_columns`) it must beat classical models that read the
same words, not only the tabular `logistic` and `lightgbm` of `baselines.py`:

* ``logistic_tfidf`` — logistic regression on the tabular features (scaled, one-hot) stacked
  sparsely beside a TF-IDF of the text (word 1-2-grams, sublinear tf, min_df 3); its L2
  strength is chosen by 5-fold cross-validation on the training rows (a TF-IDF has thousands
  of columns: the tabular baseline's C=1 overfits them);
* ``lightgbm_tfidf`` — the `lightgbm` baseline's very model on the tabular features and the
  same TF-IDF as sparse columns (measured better than a TruncatedSVD of it on Lending Club:
  docs/accuracy.md; `lightgbm_input="svd"` keeps the alternative for the benchmark);
* ``lightgbm_embeddings`` — the same LightGBM on the tabular features and a PCA (8
  components) of all-MiniLM-L6-v2 sentence embeddings of the text (risk_app/models/embed.py;
  raw 384 dimensions overfit). When the encoder cannot be fetched this baseline is skipped
  with the reason, never failing the run.

Every fitted part (scaler, vocabulary and idf, SVD, PCA, model) sees the training rows only;
validation chooses the cut-off and test is scored once, as for the tabular baselines. A spec
without text columns has no text baselines at all.

The text of a row is its text columns, cleaned, joined as "Label: text" (`text_of`).

    scores, notes = score_text_baselines(train_df, val_df, test_df, spec=spec)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.text import clean_text_column
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.baselines import (
    BASELINE_NAMES,
    classical_feature_frame,
    default_target,
    lightgbm_classifier,
    tabular_preprocessor,
)
from risk_app.models.embed import SentenceEncoder, load_sentence_encoder

TextBaselineName = Literal["logistic_tfidf", "lightgbm_tfidf", "lightgbm_embeddings"]
TEXT_BASELINE_NAMES: tuple[str, ...] = get_args(TextBaselineName)
# Every classical model, tabular and text-reading: what the benchmark gate compares a challenger with.
CLASSICAL_BASELINES: tuple[str, ...] = BASELINE_NAMES + TEXT_BASELINE_NAMES
# One line per text baseline for the model card: what it reads and how.
TEXT_BASELINE_SUMMARY: dict[str, str] = {
    "logistic_tfidf": "logistic regression on the tabular features and a TF-IDF of the text (word 1-2-grams)",
    "lightgbm_tfidf": "the `lightgbm` baseline's model on the tabular features and the same TF-IDF",
    "lightgbm_embeddings": "the same LightGBM on the tabular features and 8 principal components of "
    "all-MiniLM-L6-v2 sentence embeddings of the text",
}
LightgbmInput = Literal["sparse", "svd"]
LOGISTIC_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
MIN_DF = 3
EMBEDDING_COMPONENTS = 8
SVD_COMPONENTS = 20
EncoderLoader = Callable[[], SentenceEncoder]
_log = logging.getLogger(__name__)


class BaselineSkipped(RiskAppError):
    """A text baseline that cannot be fitted on this run (its reason is one sentence)."""


def _cleaned(spec: DatasetSpec, column: str, series: pd.Series) -> pd.Series:
    """The column's text as the classical models read it ("" when missing): the spec's cleaning
    rules, HTML stripping and max_chars cap (risk_app.data.text), without the language model's
    token budget: the same words the LLM is given, so the fight is fair."""
    return clean_text_column(spec, column, series)


def text_of(df: pd.DataFrame, spec: DatasetSpec) -> pd.Series:
    """Each row's text columns, cleaned, as one string: "Label: text" joined by " | "; an
    empty cell is left out, so a row without text is "" (and the labels present say which
    fields a row has)."""
    missing = [c for c in spec.text_columns if c not in df.columns]
    if missing:
        raise ConfigError(f"text baselines: frame lacks text column(s) {missing} of data set {spec.name}")

    def _labelled(col: str) -> pd.Series:
        label = spec.label(col)
        return _cleaned(spec, col, df[col]).map(lambda text: f"{label}: {text}" if text else "")

    parts = [_labelled(col) for col in spec.text_columns]
    joined = pd.concat(parts, axis=1).apply(lambda row: " | ".join(t for t in row if t), axis=1)
    return joined.astype(str) if len(df) else pd.Series([], index=df.index, dtype=str)


def tfidf_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, min_df=MIN_DF, max_features=20_000,
        strip_accents="unicode", dtype=np.float32,
    )  # fmt: skip


def _logistic(y: np.ndarray, seed: int) -> LogisticRegression | LogisticRegressionCV:
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < 2:  # too few of one class to cross-validate: the tabular baseline's plain fit
        return LogisticRegression(max_iter=3000, class_weight="balanced", random_state=seed)
    folds = StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=seed)
    return LogisticRegressionCV(
        Cs=list(LOGISTIC_CS), l1_ratios=(0.0,), cv=folds, scoring="roc_auc", class_weight="balanced",
        max_iter=3000, random_state=seed, use_legacy_attributes=False,
    )  # fmt: skip


class TextBaseline:
    """One text-reading baseline: fitted on training rows, then scores any rows of the data set."""

    def __init__(
        self,
        name: TextBaselineName,
        spec: DatasetSpec,
        *,
        seed: int = 42,
        encoder: SentenceEncoder | None = None,
        lightgbm_input: LightgbmInput = "sparse",
        embedding_components: int = EMBEDDING_COMPONENTS,
    ) -> None:
        if name not in TEXT_BASELINE_NAMES:
            raise ConfigError(f"unknown text baseline {name!r}; choose one of {list(TEXT_BASELINE_NAMES)}")
        if name == "lightgbm_embeddings" and encoder is None:
            raise ConfigError("text baseline lightgbm_embeddings needs a sentence encoder")
        self.name, self.spec, self.seed, self.encoder = name, spec, seed, encoder
        self.lightgbm_input, self.embedding_components = lightgbm_input, embedding_components
        self.tabular = tabular_preprocessor(
            name == "logistic_tfidf", spec, sparse=name != "lightgbm_embeddings"
        )
        self.text: TfidfVectorizer | None = None
        self.reducer: TruncatedSVD | PCA | None = None

    def _text_block(self, texts: pd.Series, fit: bool) -> np.ndarray | sparse.csr_matrix:
        if self.name == "lightgbm_embeddings":
            assert self.encoder is not None
            vectors = self.encoder.embed(texts.tolist())
            if fit:
                k = min(self.embedding_components, vectors.shape[0], vectors.shape[1])
                self.reducer = PCA(n_components=k, random_state=self.seed).fit(vectors) if k > 0 else None
            return self.reducer.transform(vectors) if self.reducer is not None else vectors
        if fit:
            self.text = tfidf_vectorizer()
            try:
                matrix = self.text.fit_transform(texts)
            except ValueError as exc:  # "empty vocabulary": too few or too short training texts
                raise BaselineSkipped(
                    f"no word occurs in at least {MIN_DF} training texts, so there is nothing to read ({exc})"
                ) from None
        else:
            assert isinstance(self.text, TfidfVectorizer)
            matrix = self.text.transform(texts)
        if self.name == "lightgbm_tfidf" and self.lightgbm_input == "svd":
            if fit:
                k = max(1, min(SVD_COMPONENTS, matrix.shape[1] - 1))
                self.reducer = TruncatedSVD(n_components=k, random_state=self.seed).fit(matrix)
            assert self.reducer is not None
            return self.reducer.transform(matrix)
        return matrix

    def _matrix(self, df: pd.DataFrame, fit: bool) -> np.ndarray | sparse.csr_matrix:
        frame = classical_feature_frame(df, self.spec)
        tab = self.tabular.fit_transform(frame) if fit else self.tabular.transform(frame)
        text = self._text_block(text_of(df, self.spec), fit)
        if sparse.issparse(tab) or sparse.issparse(text):
            return sparse.hstack(
                [sparse.csr_matrix(tab), sparse.csr_matrix(text)], format="csr", dtype=np.float32
            )
        return np.hstack([np.asarray(tab, dtype=np.float32), np.asarray(text, dtype=np.float32)])

    def fit(self, train_df: pd.DataFrame) -> TextBaseline:
        y = default_target(train_df, self.spec)
        if len(np.unique(y)) < 2:
            raise ConfigError(f"baseline {self.name}: training data has a single class; need both")
        if not text_of(train_df, self.spec).str.len().any():
            raise BaselineSkipped("every training row's text is empty")
        x = self._matrix(train_df, fit=True)
        self.model = (
            _logistic(y, self.seed) if self.name == "logistic_tfidf" else lightgbm_classifier(self.seed)
        )
        self.model.fit(x, y)
        return self

    def predict_default(self, df: pd.DataFrame) -> np.ndarray:
        """P(default) for each row of `df`."""
        proba = self.model.predict_proba(self._matrix(df, fit=False))
        return proba[:, list(self.model.classes_).index(1)].astype(float)


def score_text_baselines(
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    test_df: pd.DataFrame,
    names: Sequence[str] = TEXT_BASELINE_NAMES,
    *,
    seed: int = 42,
    spec: DatasetSpec | str | None = None,
    encoder_loader: EncoderLoader | None = None,
    lightgbm_input: LightgbmInput = "sparse",
    embedding_components: int = EMBEDDING_COMPONENTS,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Fit each text baseline on train; its (validation, test) P(default), and a note per
    baseline that was skipped (why, in one sentence). No text columns: ({}, {})."""
    spec = load_spec(spec)
    unknown = [n for n in names if n not in TEXT_BASELINE_NAMES]
    if unknown:
        raise ConfigError(f"unknown text baseline(s) {unknown}; choose from {list(TEXT_BASELINE_NAMES)}")
    if not spec.text_columns:
        return {}, {}
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    notes: dict[str, str] = {}
    encoder: SentenceEncoder | None = None
    for name in names:
        try:
            if name == "lightgbm_embeddings" and encoder is None:
                encoder = _load_encoder(encoder_loader)
            model = TextBaseline(
                name, spec, seed=seed, encoder=encoder, lightgbm_input=lightgbm_input,  # type: ignore[arg-type]
                embedding_components=embedding_components,
            ).fit(train_df)  # fmt: skip
        except BaselineSkipped as exc:
            notes[name] = f"skipped: {exc}"
            _log.warning("text baseline %s %s", name, notes[name])
            continue
        scores[name] = (model.predict_default(val_df), model.predict_default(test_df))
    return scores, notes


def _load_encoder(loader: EncoderLoader | None) -> SentenceEncoder:
    try:
        return (loader or load_sentence_encoder)()
    except (RiskAppError, OSError) as exc:  # EncoderFetchError, ModelNotFoundError, a broken folder
        raise BaselineSkipped(f"the sentence encoder could not be loaded: {exc}") from exc
