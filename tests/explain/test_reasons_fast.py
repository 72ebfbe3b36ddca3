"""The scoring path's reason codes (scores reused, not recomputed) agree with plain occlusion.

The model is the tiny Qwen2 with a visible random head behind the RiskModel interface, so the
scores come from the real batched inference (`risk_app.finetune.predict`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from risk_app.data.serialize import serialize_frame
from risk_app.explain.reasons import reason_codes
from risk_app.finetune.predict import predict_proba
from risk_app.models.loader import load_classifier
from risk_app.scoring import service
from risk_app.scoring.service import score_with_reasons
from tests.scoring.doubles import german_credit


class TinyTextModel:
    """predict_proba(df) / predict_texts(texts) over the tiny model, like a registry RiskModel."""

    version = "tiny-random-head"
    field_order = None
    exclude_fields: list[str] = []

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model, self.tokenizer = load_classifier("tiny-qwen2")
        with torch.no_grad():
            self.model.score.weight.normal_(0, 0.3)
        self.threshold = 0.0

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        return predict_proba(self.model, self.tokenizer, list(texts), batch_size=8, max_length=256)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return self.predict_texts(serialize_frame(df).tolist())


def test_scoring_reasons_match_full_occlusion(tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = german_credit().head(24).reset_index(drop=True)
    model = TinyTextModel()
    p = model.predict_proba(frame)
    model.threshold = float(np.median(p))  # half the rows declined
    scored = score_with_reasons(frame, model, top_k=3)
    declined = scored[scored["decision"] == "decline"]
    assert len(declined) >= 10

    full = reason_codes(frame, model, top_k=3).wide.set_index("application_id")
    full.index = full.index.astype(str)
    ours = declined.set_index("application_id")
    assert set(ours.index) == set(full.index)
    same_top = (ours["reason_1_field"] == full.loc[ours.index, "reason_1_field"]).mean()
    assert same_top >= 0.9
    np.testing.assert_allclose(
        ours["reason_1_strength"].astype(float), full.loc[ours.index, "reason_1_strength"].astype(float),
        atol=1e-5,
    )
    assert scored.loc[scored["decision"] == "approve", "reason_1"].isna().all()
    # Declined rows explained a few at a time give the same table.
    monkeypatch.setattr(service, "OCCLUSION_ROWS", 5)
    sliced = score_with_reasons(frame, model, top_k=3)
    pd.testing.assert_frame_equal(sliced.drop(columns="scored_at"), scored.drop(columns="scored_at"))
