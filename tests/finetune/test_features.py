"""Frozen-feature cache and heads: one forward pass per text, reused; heads tuned on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from risk_app.finetune.features import FeatureSettings, _load_frozen, cached_features, pooled_features
from risk_app.finetune.frozen_head import fit_linear_head, fit_logistic_head, select_head
from risk_app.finetune.predict import pad_batch
from risk_app.models.loader import load_classifier

TEXTS = [
    "Checking account: < 0 DM. Duration: 6 months. Credit amount: 1169 DM.",
    "Checking account: no checking account. Duration: 48 months.",
    "Purpose: car (new). Age: 22 years.",
]


class CountingLoader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, base: str, settings: FeatureSettings) -> tuple[Any, Any]:
        self.calls += 1
        return _load_frozen(base, settings)


def test_features_computed_once_then_read_from_cache(tiny_qwen2: Path) -> None:
    loader = CountingLoader()
    first = pooled_features("tiny-qwen2", TEXTS, loader=loader)
    assert first.shape == (3, 64) and first.dtype == np.float32 and loader.calls == 1
    again = pooled_features("tiny-qwen2", list(reversed(TEXTS)), loader=loader)
    assert loader.calls == 1  # every text was cached
    np.testing.assert_array_equal(again, first[::-1])
    # One new text: only it is computed, and the old rows are unchanged.
    more = pooled_features("tiny-qwen2", [*TEXTS, "Age: 67 years."], loader=loader)
    assert loader.calls == 2 and more.shape == (4, 64)
    np.testing.assert_array_equal(more[:3], first)
    # Other settings are another cache entry.
    pooled_features("tiny-qwen2", TEXTS[:1], settings=FeatureSettings(max_length=8), loader=loader)
    assert loader.calls == 3


def test_last_pooling_is_what_the_classification_head_sees(tiny_qwen2: Path) -> None:
    torch.manual_seed(0)
    model, tokenizer = load_classifier("tiny-qwen2")
    model.eval()
    features = cached_features("tiny-qwen2", TEXTS, settings=FeatureSettings())
    batch = pad_batch(tokenizer, [tokenizer(t)["input_ids"] for t in TEXTS])
    with torch.no_grad():
        expected = model(**batch).logits
        from_features = model.score(torch.tensor(features["last"]))
    torch.testing.assert_close(from_features, expected, atol=1e-4, rtol=1e-4)
    assert not np.allclose(features["mean"], features["last"])


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 20))
    x[:, 0] += 1.5 * y
    return x, y


def test_heads_learn_a_signal_and_choose_on_validation() -> None:
    x_train, y_train = _separable(300, 0)
    x_val, y_val = _separable(100, 1)
    logistic = fit_logistic_head(x_train, y_train, x_val, y_val)
    linear = fit_linear_head(
        x_train, y_train, x_val, y_val, seed=0, lrs=(1e-2, 1e-1), weight_decays=(0.0,), max_epochs=60
    )
    assert len(linear.tried) == 2 and linear.params["epochs"] in range(5, 61, 5)
    for head in (logistic, linear):
        assert head.val_auc > 0.8
        assert head.val_auc == pytest.approx(max(t["val_auc"] for t in head.tried), abs=1e-4)
        p = head.predict(x_val)
        assert p.shape == (100,) and np.all((p > 0) & (p < 1))
    features = {"a": (x_train, x_val), "noise": (x_train[:, 1:], x_val[:, 1:])}
    best = select_head(features, y_train, y_val, kinds=("logistic",))
    assert best.pooling == "a"


def test_select_head_needs_candidates() -> None:
    with pytest.raises(ValueError, match="at least one feature set"):
        select_head({}, np.array([0, 1]), np.array([0, 1]))


def test_middle_layer_features_skip_the_layers_above(tiny_qwen2: Path) -> None:
    settings = FeatureSettings(layer=1)
    truncated, tokenizer = _load_frozen("tiny-qwen2", settings)
    assert truncated.config.num_hidden_layers == 1
    full, _ = _load_frozen("tiny-qwen2", FeatureSettings())
    assert full.config.num_hidden_layers == 2
    from risk_app.finetune.features import extract_features

    fast = extract_features(truncated, tokenizer, TEXTS, [1])
    reference = extract_features(full, tokenizer, TEXTS, [1])
    for key in fast:
        np.testing.assert_allclose(fast[key], reference[key], atol=1e-5)


def test_train_score_head_on_cached_features_gives_a_working_classifier(tiny_qwen2: Path) -> None:
    from risk_app.finetune.frozen_head import train_score_head
    from risk_app.finetune.predict import predict_proba

    torch.manual_seed(0)
    model, tokenizer = load_classifier("tiny-qwen2")
    _, y = _separable(60, 3)  # texts whose label is readable from a number in them
    texts = [f"Duration: {6 if label else 48} months. Note {i}." for i, label in enumerate(y)]
    features = cached_features("tiny-qwen2", texts, settings=FeatureSettings())["last"]
    history = train_score_head(
        model.score, features[:40], y[:40], features[40:], y[40:], learning_rate=0.05, epochs=15
    )
    assert len(history) == 15 and history[-1]["loss"] < history[0]["loss"]
    best = max(h["val_auc"] for h in history)
    p = predict_proba(model, tokenizer, texts[40:])  # the ordinary path: decoder + restored head
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[40:], p) == pytest.approx(best, abs=1e-6) and best > 0.9
