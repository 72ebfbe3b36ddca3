"""predict_proba: batched by token length, results in the caller's order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from risk_app.finetune.predict import pad_batch, predict_proba
from risk_app.models.loader import load_classifier
from tests.finetune.helpers import credit_texts


@pytest.fixture
def classifier(tiny_qwen2: Path):  # noqa: ANN201
    torch.manual_seed(0)
    model, tokenizer = load_classifier("tiny-qwen2")
    # A visible head so probabilities differ clearly between texts.
    with torch.no_grad():
        model.score.weight.normal_(0, 0.1)
    return model, tokenizer


def test_grouped_batches_match_row_by_row_in_input_order(classifier) -> None:  # noqa: ANN001
    model, tokenizer = classifier
    long_texts, _ = credit_texts(5)
    texts = [
        "Duration: 6 months.",
        long_texts[0],
        "Age: 67.",
        long_texts[1][:200],
        long_texts[2],
        "Job: skilled.",
    ]
    batched = predict_proba(model, tokenizer, texts, batch_size=4, max_length=128)
    one_by_one = np.array(
        [predict_proba(model, tokenizer, [t], batch_size=1, max_length=128)[0] for t in texts]
    )
    assert batched.shape == (len(texts),)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert np.ptp(batched) > 1e-3  # not all equal, so the order check means something
    assert ((batched > 0) & (batched < 1)).all()


def test_left_padding_gives_same_probabilities(classifier) -> None:  # noqa: ANN001
    model, tokenizer = classifier
    texts = ["Duration: 6 months. Purpose: car (new).", "Age: 67.", "Housing: own. Job: skilled employee."]
    right = predict_proba(model, tokenizer, texts, batch_size=3)
    tokenizer.padding_side = "left"
    left = predict_proba(model, tokenizer, texts, batch_size=3)
    np.testing.assert_allclose(left, right, atol=1e-5)


def test_empty_input_and_model_mode(classifier) -> None:  # noqa: ANN001
    model, tokenizer = classifier
    model.train()
    assert predict_proba(model, tokenizer, []).shape == (0,)
    predict_proba(model, tokenizer, ["Age: 30."])
    assert model.training  # restored after inference


def test_pad_batch_masks_padding(classifier) -> None:  # noqa: ANN001
    _, tokenizer = classifier
    batch = pad_batch(tokenizer, [[5, 6, 7], [8]])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tokenizer.pad_token_id, tokenizer.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
