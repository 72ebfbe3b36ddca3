"""Small serialized credit datasets for fine-tuning tests (no dependency on risk_app.data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from risk_app import paths


def credit_texts(n: int, offset: int = 0) -> tuple[list[str], np.ndarray]:
    """`n` applications from the bundled CSV as "Column: value." texts, with 0/1 labels."""
    frame = pd.read_csv(paths.DEFAULT_DATASET).iloc[offset : offset + n]
    labels = (frame.pop("creditability") == "bad").astype(int).to_numpy()
    columns = list(frame.columns)
    texts = [
        " ".join(f"{c.replace('_', ' ').capitalize()}: {v}." for c, v in zip(columns, row, strict=True))
        for row in frame.itertuples(index=False)
    ]
    return texts, labels
