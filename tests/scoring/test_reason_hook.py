"""`score_with_reasons` asks a model that explains itself (`reason_codes(df, top_k=...)`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from risk_app.scoring.service import score_with_reasons
from tests.scoring.doubles import german_credit


class SelfExplainingModel:
    """Declines every other row and names its own reason; records what it was asked."""

    threshold, version = 0.5, "self-explaining-1"

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return np.where(np.arange(len(df)) % 2 == 0, 0.9, 0.1)

    def reason_codes(self, df: pd.DataFrame, top_k: int) -> pd.DataFrame:
        self.asked.append((len(df), top_k))
        return pd.DataFrame(
            {"application_id": df["application_id"], "reason_1": "own reason", "reason_1_field": "duration",
             "reason_1_value": "x", "reason_1_strength": 0.4}
        )  # fmt: skip


def test_a_model_with_its_own_reason_codes_is_asked_for_the_declined_rows() -> None:
    frame = german_credit().head(6).reset_index(drop=True)
    model = SelfExplainingModel()
    out = score_with_reasons(frame, model, top_k=3)
    assert model.asked == [(3, 3)]
    declined = out["decision"] == "decline"
    assert (out.loc[declined, "reason_1"] == "own reason").all()
    assert out.loc[~declined, "reason_1"].isna().all()
    assert out["application_id"].tolist() == frame["application_id"].astype(str).tolist()
