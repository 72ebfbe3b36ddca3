"""Reason codes by occlusion: which fields pushed an application toward default?

For each application the model scores the full serialized text, then the text with one field's
clause left out, for every field. The strength of a field is

    P(default | full text) - P(default | text without that field)

so a positive strength means the field pushed the score toward default (a reason for a
decline), a negative one means it helped the applicant. Because this needs nothing but the
model's text scoring (`predict_texts`), it works for every fine-tuning method alike (LoRA,
prefix tuning, a quantum head ...) and for any model that reads the one serialization template.

All occluded variants go through `predict_texts` in a single call (the model batches them by
token length), never one application at a time: with 20 fields that is 20 texts per row. A
registry model that is a plain causal decoder takes a shortcut with the same numbers
(`occlusion_cache`): a variant shares everything before its left-out clause with the full text,
so each row's full text runs once with its key/value cache kept and each variant runs only the
tokens after the clause on top of it (about half the tokens, and no variant is tokenized).

    from risk_app.explain.reasons import reason_codes
    codes = reason_codes(test_df, risk_model, top_k=4)
    codes.wide[["application_id", "reason_1", "reason_1_value", "reason_1_strength"]]

Only fields with positive strength become reason codes; an application with fewer than
`top_k` such fields gets empty trailing reasons rather than "reasons" that lowered its risk.
A protected attribute of the data set's spec (age, sex, marital status ...) is never a reason
for a decline: it stays in the text the model reads, but it is not occluded or reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.serialize import format_value, serialize_frame
from risk_app.errors import RiskAppError
from risk_app.explain.occlusion_cache import CachedOcclusion, cached_occlusion, classifier_for_cache


class TextScorer(Protocol):
    """What reason codes need from a model: text scoring and its decision threshold."""

    threshold: float

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ReasonCodes:
    """Top-k reasons per application (wide) and every field's strength (long)."""

    wide: pd.DataFrame
    long: pd.DataFrame
    n_texts_scored: int
    n_model_calls: int


def _score(model: TextScorer, texts: list[str]) -> np.ndarray:
    scores = np.asarray(model.predict_texts(texts), dtype=float).reshape(-1)
    if scores.shape[0] != len(texts):
        raise RiskAppError(
            f"reason codes: the model returned {scores.shape[0]} scores for {len(texts)} texts"
        )
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1))
    if bad.size:
        i = int(bad[0])
        raise RiskAppError(f"reason codes: the model returned {scores[i]!r} for text {i}, not a probability")
    return scores


def _check_request(df: pd.DataFrame, top_k: int) -> None:
    if not isinstance(df, pd.DataFrame):
        raise RiskAppError(f"reason_codes expects a DataFrame, got {type(df).__name__}")
    if df.empty:
        raise RiskAppError("reason_codes: no applications given")
    if top_k < 1:
        raise RiskAppError(f"reason_codes: top_k={top_k} must be at least 1")


def _text_and_reason_fields(
    df: pd.DataFrame, risk_model: TextScorer, field_order: Sequence[str] | None, spec: DatasetSpec
) -> tuple[list[str], list[str]]:
    """The fields the model's text holds, in order, and those of them that may be reasons."""
    # Serialize exactly as the model was trained: a registry RiskModel records its field order
    # and the fields it leaves out (e.g. protected attributes); those are never occluded.
    if field_order is None:
        field_order = getattr(risk_model, "field_order", None)
    excluded = set(getattr(risk_model, "exclude_fields", None) or ())
    text_fields = [name for name in (field_order or spec.feature_columns) if name not in excluded]
    missing = [name for name in text_fields if name not in df.columns]
    if missing:
        raise RiskAppError(f"reason_codes: columns {missing} are missing from the applications")
    # A protected attribute stays in the text the model reads but is never a reason for a decline.
    fields = [name for name in text_fields if name not in spec.protected_columns]
    if not fields:
        raise RiskAppError("reason_codes: every field the model reads is protected; nothing can be a reason")
    return text_fields, fields


def _occluded_texts(
    subset: pd.DataFrame, fields: list[str], text_fields: list[str], spec: DatasetSpec, mask: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each row's text without each field it is to be tested on (`mask`, rows x fields), grouped
    by field; returns the texts and the (row, field) of each."""
    variants: list[str] = []
    rows_of, fields_of = [], []
    for j, name in enumerate(fields):
        rows = np.flatnonzero(mask[:, j])
        if rows.size:
            texts = serialize_frame(subset.iloc[rows], field_order=text_fields, exclude=(name,), spec=spec)
            variants.extend(texts.tolist())
            rows_of.append(rows)
            fields_of.append(np.full(rows.size, j))
    if not variants:
        return [], np.empty(0, dtype=int), np.empty(0, dtype=int)
    return variants, np.concatenate(rows_of), np.concatenate(fields_of)


@dataclass(frozen=True)
class _OcclusionScores:
    """P(default) of the selected rows with their full text and with each field left out."""

    selected: np.ndarray  # positions in df of the rows that get reasons
    p_full: np.ndarray  # (n_selected,)
    p_without: np.ndarray  # (n_selected, n_fields); NaN where a field was not occluded
    n_variants: int
    n_calls: int


# Largest difference in P(default) between the cached path and scoring a row's texts that still
# counts as the same computation (float32 sums in another order differ by ~1e-7).
CACHE_CHECK_ATOL = 1e-5


def _cached_occlusion(
    subset: pd.DataFrame,
    risk_model: TextScorer,
    texts: list[str],
    setup: tuple[list[str], list[str], DatasetSpec],
) -> tuple[CachedOcclusion | None, int]:
    """The prefix-cache scores of `subset` (see occlusion_cache) and the model calls spent, or
    None where the model is not one the cache is exact for or its first row disagrees with
    scoring that row's texts (checked on every call: a model that slips through the structural
    checks costs one row's texts, not wrong reasons)."""
    if classifier_for_cache(risk_model) is None:  # not a model the cache is exact for
        return None, 0
    text_fields, fields, spec = setup
    clauses = [serialize_frame(subset, field_order=[name], spec=spec).tolist() for name in text_fields]
    occluded = [text_fields.index(name) for name in fields]
    cached = cached_occlusion(risk_model, clauses, occluded, texts)
    if cached is None or not cached.exact_rows.any():
        return None, 0
    row = int(np.flatnonzero(cached.exact_rows)[0])
    one = np.zeros((len(subset), len(fields)), dtype=bool)
    one[row] = True
    variants, _, var_fields = _occluded_texts(subset, fields, text_fields, spec, one)
    check = _score(risk_model, [texts[row], *variants])
    expected = np.concatenate([[cached.p_full[row]], cached.p_without[row, var_fields]])
    if not np.allclose(check, expected, atol=CACHE_CHECK_ATOL, rtol=0):
        return None, 2
    return cached, 2


def _score_occlusions(
    df: pd.DataFrame,
    risk_model: TextScorer,
    full_texts: list[str],
    setup: tuple[list[str], list[str], DatasetSpec],
    only_declined: bool,
    scores: np.ndarray | None,
    prefix_cache: bool,
) -> _OcclusionScores:
    """Score full texts and occluded variants in as few model calls as the mode allows: rows the
    prefix cache covers in one pass, the others' variants as texts in one `predict_texts` call."""
    text_fields, fields, spec = setup
    calls = 0
    threshold = float(risk_model.threshold)
    if scores is not None or only_declined:
        # The declines must be known before their variants can be built: scores given, or a call.
        p_all = np.asarray(scores, dtype=float) if scores is not None else _score(risk_model, full_texts)
        calls += int(scores is None)
        selected = np.flatnonzero(p_all >= threshold) if only_declined else np.arange(len(df))
    else:
        p_all = None
        selected = np.arange(len(df))
    subset = df.iloc[selected]
    cached, cache_calls = (None, 0)
    if prefix_cache and len(subset):
        cached, cache_calls = _cached_occlusion(subset, risk_model, [full_texts[i] for i in selected], setup)
    calls += cache_calls
    as_text = np.ones(len(subset), dtype=bool) if cached is None else ~cached.exact_rows
    mask = np.repeat(as_text[:, None], len(fields), axis=1)
    variants, var_rows, var_fields = _occluded_texts(subset, fields, text_fields, spec, mask)
    if p_all is None:
        # Every row is selected here; those the cache did not cover still need their full text.
        unscored = np.flatnonzero(as_text)
        texts = [full_texts[i] for i in unscored] + variants
        all_scores = _score(risk_model, texts) if texts else np.empty(0)
        calls += int(bool(texts))
        p_all = np.full(len(df), np.nan)
        p_all[unscored] = all_scores[: unscored.size]
        if cached is not None:
            p_all[cached.exact_rows] = cached.p_full[cached.exact_rows]
        p_variants = all_scores[unscored.size :]
    else:
        p_variants = _score(risk_model, variants) if variants else np.empty(0)
        calls += int(bool(variants))
    p_without = np.full((len(subset), len(fields)), np.nan)
    p_without[var_rows, var_fields] = p_variants
    if cached is not None:
        p_without[cached.exact_rows] = cached.p_without[cached.exact_rows]
    n_cached = 0 if cached is None else int(cached.exact_rows.sum()) * len(fields)
    return _OcclusionScores(
        selected=selected,
        p_full=p_all[selected],
        p_without=p_without,
        n_variants=len(variants) + n_cached,
        n_calls=calls,
    )


def reason_codes(
    df: pd.DataFrame,
    risk_model: TextScorer,
    top_k: int = 4,
    only_declined: bool = True,
    *,
    field_order: Sequence[str] | None = None,
    id_column: str = "application_id",
    spec: DatasetSpec | str | None = None,
    scores: np.ndarray | None = None,
    prefix_cache: bool = True,
) -> ReasonCodes:
    """Occlusion reason codes for the applications in `df` (declined ones only by default).

    With `only_declined`, the full texts of all rows are scored in one call to find the
    declines (P(default) >= `risk_model.threshold`), and their occluded variants in a second;
    otherwise full texts and variants share a single call. `scores`, P(default) of the rows of
    `df` when the caller has them already, saves scoring the full texts again. The text template
    follows the model's own `field_order` / `exclude_fields` attributes when it has them (a
    registry `RiskModel` does); `field_order` here overrides the order. `spec` is the data set
    (default: the model's `dataset_spec` attribute when it has one, else german_credit).

    With `prefix_cache` (the default) a registry model that is a plain causal decoder scores
    the variants on the cached prefix of each row's full text (`occlusion_cache`): the same
    numbers (to float rounding) for about half the work; False scores every variant as text.
    """
    # Setup: the data set, the request and the fields (those in the text; those that may be reasons).
    spec = load_spec(spec if spec is not None else getattr(risk_model, "dataset_spec", None))
    _check_request(df, top_k)
    if scores is not None and len(scores) != len(df):
        raise RiskAppError(f"reason_codes: {len(scores)} scores given for {len(df)} applications")
    threshold = float(risk_model.threshold)
    text_fields, fields = _text_and_reason_fields(df, risk_model, field_order, spec)

    # Steps: score the full and occluded texts; a field's strength is how much its absence lowers P.
    full_texts = serialize_frame(df, field_order=text_fields, spec=spec).tolist()
    scored = _score_occlusions(
        df, risk_model, full_texts, (text_fields, fields, spec), only_declined, scores, prefix_cache
    )
    strength = scored.p_full[:, None] - scored.p_without

    # Result: the long table (every field ranked) and the wide one (top_k reasons per application).
    subset = df.iloc[scored.selected]
    ids = subset[id_column].to_numpy() if id_column in subset.columns else subset.index.to_numpy()
    long = _long_table(subset, ids, fields, scored.p_full, strength, top_k, spec)
    wide = _wide_table(subset, ids, fields, scored.p_full, strength, threshold, top_k, spec)
    n_full = 0 if scores is not None else len(full_texts)
    return ReasonCodes(
        wide=wide, long=long, n_texts_scored=n_full + scored.n_variants, n_model_calls=scored.n_calls
    )


def _long_table(
    subset: pd.DataFrame,
    ids: np.ndarray,
    fields: list[str],
    p_full: np.ndarray,
    strength: np.ndarray,
    top_k: int,
    spec: DatasetSpec,
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i in range(len(subset)):
        # Stable sort: equal strengths keep template order, so output is deterministic.
        order = np.argsort(-np.nan_to_num(strength[i], nan=-np.inf), kind="stable")
        for rank, j in enumerate(order, start=1):
            name = fields[j]
            rows.append(
                {
                    "application_id": ids[i],
                    "rank": rank,
                    "field": name,
                    "label": spec.label(name),
                    "value": format_value(name, subset[name].iloc[i], spec),
                    "probability_of_default": float(p_full[i]),
                    "strength": float(strength[i, j]),
                    "is_reason": bool(rank <= top_k and strength[i, j] > 0),  # NaN > 0 is False
                }
            )
    columns = ["application_id", "rank", "field", "label", "value", "probability_of_default", "strength"]
    return pd.DataFrame(rows, columns=[*columns, "is_reason"])


def _wide_table(
    subset: pd.DataFrame,
    ids: np.ndarray,
    fields: list[str],
    p_full: np.ndarray,
    strength: np.ndarray,
    threshold: float,
    top_k: int,
    spec: DatasetSpec,
) -> pd.DataFrame:
    n = len(subset)
    labels = np.full((n, top_k), None, dtype=object)
    names = np.full((n, top_k), None, dtype=object)
    values = np.full((n, top_k), None, dtype=object)
    strengths = np.full((n, top_k), np.nan)
    for i in range(n):
        order = np.argsort(-np.nan_to_num(strength[i], nan=-np.inf), kind="stable")[:top_k]
        for k, j in enumerate(order):
            if not strength[i, j] > 0:  # also stops at a field that was not occluded (NaN)
                break
            name = fields[j]
            labels[i, k], names[i, k] = spec.label(name), name
            values[i, k] = format_value(name, subset[name].iloc[i], spec)
            strengths[i, k] = strength[i, j]
    wide = pd.DataFrame(
        {"application_id": ids, "probability_of_default": p_full, "declined": p_full >= threshold},
        index=subset.index,
    )
    for k in range(top_k):
        wide[f"reason_{k + 1}"] = labels[:, k]
        wide[f"reason_{k + 1}_field"] = names[:, k]
        wide[f"reason_{k + 1}_value"] = values[:, k]
        wide[f"reason_{k + 1}_strength"] = strengths[:, k]
    return wide
