"""GPU scoring's fixed-shape batches and background tokenization (`predict.bucketed_logits`).

Run on the CPU here: the same function scores on a GPU. Its scores must equal the plain path's
(a padded batch per 64 texts in file order, as a hand-written loop does) and the CPU path's,
row by row, whatever slices the tokenizer thread cut and however batches were topped up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from risk_app.finetune import predict
from risk_app.finetune.predict import bucket_batches, bucketed_logits, filled_rows, predict_logits
from risk_app.models.loader import load_classifier
from tests.finetune.test_method_suite import suite_data


def test_bucket_batches_use_few_fixed_shapes_and_every_row_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 257, size=3000).tolist()
    batches = bucket_batches(lengths, budget=8192)
    assert sorted(i for _, rows in batches for i in rows) == list(range(3000))
    for width, rows in batches:
        assert width % 64 == 0 and all(lengths[i] <= width for i in rows)
        assert len(rows) <= 8192 // width
    shapes = {(w, filled_rows(len(r), 8192 // w)) for w, r in batches}
    assert len({w for w, _ in shapes}) == 4  # widths 64, 128, 192, 256
    assert len(shapes) <= 8  # one full shape per width, plus at most one topped-up last batch each


def test_filled_rows_round_up_to_a_power_of_two_within_the_batch() -> None:
    assert [filled_rows(n, 100) for n in (1, 2, 3, 5, 64, 65, 100)] == [1, 2, 4, 8, 64, 100, 100]


@pytest.fixture(scope="module")
def tiny(_tiny_qwen2_build: Path) -> tuple:
    model, tokenizer = load_classifier(str(_tiny_qwen2_build), num_labels=2, device=torch.device("cpu"))
    return model.eval(), tokenizer


def plain_logits(model: torch.nn.Module, tokenizer, texts: list[str]) -> np.ndarray:  # noqa: ANN001
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tokenizer(
                texts[i : i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt"
            )
            out.append(model(**batch).logits.float())
    return torch.cat(out).numpy()


def test_bucketed_scores_equal_the_plain_loop(tiny: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = tiny
    data = suite_data()
    texts = (list(data.train_texts) + list(data.val_texts)) * 2  # 320 texts
    # Small slices: five background tokenizer calls, partial batches topped up in each.
    monkeypatch.setattr(predict, "GPU_SLICES", (37, 100))
    got = bucketed_logits(model, tokenizer, texts, 64, budget=640, device=torch.device("cpu"))
    plain = plain_logits(model, tokenizer, texts)
    cpu_path = predict_logits(model, tokenizer, texts, batch_size=16, max_length=64)
    np.testing.assert_allclose(got, plain, atol=1e-5)
    np.testing.assert_allclose(got, cpu_path, atol=1e-5)
    # Not a constant: the rows differ, so a wrong order would show.
    assert np.ptp(got[:, 1] - got[:, 0]) > 1e-3
