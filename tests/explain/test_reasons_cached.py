"""Reason codes on the prefix cache (risk_app.explain.occlusion_cache) equal full occlusion.

The model is the tiny Qwen2 with a visible random head inside a real registry `RiskModel`
(the only kind of scorer the cache serves), plain and wrapped with LoRA; the reference is the
same call with `prefix_cache=False`, which scores every occluded text through `predict_texts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from data_contracts.spec import load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.explain import occlusion_cache, reasons
from risk_app.explain.reasons import reason_codes
from risk_app.finetune.methods.lora import LoraParams, apply_lora
from risk_app.finetune.registry import resolve_method
from risk_app.models.loader import load_classifier
from risk_app.registry import artifact
from risk_app.registry.artifact import RiskModel
from tests.scoring.doubles import german_credit

SPEC = load_spec("german_credit")
# Foreign worker (protected, never occluded) moved inside, so the first and the last clause
# of the text are both occluded: the two variants with no prefix, or no suffix, to run.
ORDER = [c for c in SPEC.feature_columns if c != "foreign_worker"]
ORDER.insert(5, "foreign_worker")


def _risk_model(tmp_path: Path, lora: bool, cls: type[RiskModel] = RiskModel) -> RiskModel:
    torch.manual_seed(0)
    model, tokenizer = load_classifier("tiny-qwen2")
    with torch.no_grad():
        model.score.weight.normal_(0, 0.3)
    if lora:
        model = apply_lora(model, LoraParams())
        with torch.no_grad():  # adapters that change the scores (B starts at zero)
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05)
    model.eval()
    metadata = {
        "threshold": 0.0,
        "train_config": {"max_length": 256},
        "extra": {"calibration": {"kind": "platt", "slope": 1.3, "intercept": -0.4}},
    }
    return cls(resolve_method("lora" if lora else "full"), model, tokenizer, metadata, tmp_path)


def _count_texts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts each RiskModel.predict_texts call scores from now on."""
    counts: list[int] = []
    real = artifact.predict_texts_proba

    def counting(model: object, tokenizer: object, texts: list[str], *args: object) -> np.ndarray:
        counts.append(len(texts))
        return real(model, tokenizer, texts, *args)

    monkeypatch.setattr(artifact, "predict_texts_proba", counting)
    return counts


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rows = german_credit().head(12).reset_index(drop=True)
    lengths = serialize_frame(rows, field_order=ORDER).str.len()
    assert lengths.nunique() > 5  # texts of different token lengths share the batches
    return rows


@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
def test_cached_strengths_equal_full_occlusion(
    tiny_qwen2: Path, tmp_path: Path, frame: pd.DataFrame, lora: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _risk_model(tmp_path, lora)
    # The cache serves this model, and its last layer runs in full only for the token the head reads.
    assert occlusion_cache.classifier_for_cache(model).last_layer is not None  # type: ignore[union-attr]
    counts = _count_texts(monkeypatch)
    cached = reason_codes(frame, model, top_k=4, only_declined=False, field_order=ORDER, spec=SPEC)
    texts_cached = sum(counts)
    counts.clear()
    full = reason_codes(
        frame, model, top_k=4, only_declined=False, field_order=ORDER, spec=SPEC, prefix_cache=False
    )
    n_fields = len([c for c in ORDER if c not in SPEC.protected_columns])
    # Full occlusion scored every text; the cache only the one row it checks itself against.
    assert sum(counts) == len(frame) * (1 + n_fields)
    assert texts_cached == 1 + n_fields
    np.testing.assert_allclose(cached.long["strength"], full.long["strength"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        cached.wide["probability_of_default"], full.wide["probability_of_default"], atol=1e-5, rtol=0
    )
    fields = [f"reason_{k}_field" for k in range(1, 5)]
    pd.testing.assert_frame_equal(cached.wide[fields], full.wide[fields])
    assert cached.n_texts_scored == full.n_texts_scored


def test_given_scores_and_only_declined(tiny_qwen2: Path, tmp_path: Path, frame: pd.DataFrame) -> None:
    model = _risk_model(tmp_path, lora=False)
    p = model.predict_proba(serialize_frame(frame, field_order=ORDER).tolist())
    model.threshold = float(np.median(p))
    for scores in (None, p):
        cached = reason_codes(frame, model, field_order=ORDER, spec=SPEC, scores=scores)
        full = reason_codes(frame, model, field_order=ORDER, spec=SPEC, scores=scores, prefix_cache=False)
        assert 0 < len(cached.wide) < len(frame)
        np.testing.assert_allclose(cached.long["strength"], full.long["strength"], atol=1e-5, rtol=0)


def test_rows_whose_text_is_not_their_clauses_keep_the_text_path(
    tiny_qwen2: Path, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = _risk_model(tmp_path, lora=False)
    clauses = [serialize_frame(frame, field_order=[name]).tolist() for name in ORDER]
    texts = serialize_frame(frame, field_order=ORDER).tolist()
    texts[3] = texts[3].replace(". ", ".  ", 1)  # another text than its clauses joined
    scored = occlusion_cache.cached_occlusion(model, clauses, [0, 7, len(ORDER) - 1], texts)
    assert scored is not None
    assert scored.exact_rows.tolist() == [i != 3 for i in range(len(frame))]
    assert np.isnan(scored.p_without[3]).all()
    without_first = serialize_frame(frame, field_order=ORDER[1:]).tolist()
    np.testing.assert_allclose(scored.p_without[:3, 0], model.predict_texts(without_first[:3]), atol=1e-5)


def test_models_it_is_not_exact_for_fall_back(
    tiny_qwen2: Path, tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peft import PromptTuningConfig, TaskType, get_peft_model

    clauses = [serialize_frame(frame, field_order=[name]).tolist() for name in ORDER]
    texts = serialize_frame(frame, field_order=ORDER).tolist()
    prompt = _risk_model(tmp_path, lora=False)
    prompt.model = get_peft_model(
        prompt.model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=4)
    )
    assert occlusion_cache.cached_occlusion(prompt, clauses, [1, 2], texts) is None

    class StackedModel(RiskModel):  # scores texts some other way than its language model
        def predict_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
            return 1.0 - super().predict_texts(texts, batch_size)

    # A model the cache fails on mid-way (here: every variant batch raises) gets the text path.
    plain = _risk_model(tmp_path, lora=False)

    def broken(*args: object) -> np.ndarray:
        raise RuntimeError("no such attention mask")

    monkeypatch.setattr(occlusion_cache, "_suffix_batch", broken)
    assert occlusion_cache.cached_occlusion(plain, clauses, [1, 2], texts) is None
    monkeypatch.undo()

    stacked = _risk_model(tmp_path, lora=False, cls=StackedModel)
    assert occlusion_cache.cached_occlusion(stacked, clauses, [1, 2], texts) is None
    # And reason codes for it are full occlusion of its own scores.
    codes = reason_codes(frame, stacked, only_declined=False, field_order=ORDER, spec=SPEC)
    full = reason_codes(frame, stacked, only_declined=False, field_order=ORDER, spec=SPEC, prefix_cache=False)
    pd.testing.assert_frame_equal(codes.long, full.long)


def test_a_cache_that_disagrees_with_the_texts_is_not_used(
    tiny_qwen2: Path, tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _risk_model(tmp_path, lora=False)
    real = occlusion_cache.cached_occlusion

    def off_by_a_little(*args: object) -> occlusion_cache.CachedOcclusion | None:
        scored = real(*args)  # type: ignore[arg-type]
        assert scored is not None
        return occlusion_cache.CachedOcclusion(scored.p_full, scored.p_without + 1e-3, scored.exact_rows)

    monkeypatch.setattr(occlusion_cache, "cached_occlusion", off_by_a_little)
    codes = reason_codes(frame, model, only_declined=False, field_order=ORDER, spec=SPEC)
    monkeypatch.undo()
    full = reason_codes(frame, model, only_declined=False, field_order=ORDER, spec=SPEC, prefix_cache=False)
    pd.testing.assert_frame_equal(codes.long, full.long)
    assert reasons.CACHE_CHECK_ATOL < 1e-3
