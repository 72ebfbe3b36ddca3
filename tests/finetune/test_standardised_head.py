"""The standardised head on frozen features: quality on offset-dominated features, and the artifact.

The quality test mimics tiny-qwen2's geometry (every feature vector at norm ~8, an offset shared
by every application, 0.085 per-feature spread) and trains the same FedAvg consortium twice, one
local epoch a round: once with the plain bias-free score layer on raw features (the `linear`
head), once with the `standardised` head (consortium mean/scale, a bias). The standardised one
must reach a clearly lower training loss and a higher AUC; it fails if standardisation or the
bias is dropped or broken.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.frozen_head import train_score_head
from risk_app.finetune.registry import get_method
from risk_app.finetune.standardised_head import (
    StandardisedScore,
    feature_standardisation,
    install_standardised_score,
    set_standardisation,
    standardised_head,
)


def _offset_dominated(n: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows at norm ~8 along one shared direction, the label in 0.085-sized deviations."""
    rng = np.random.default_rng(seed)
    dim = 16
    offset = np.full(dim, 8.0 / np.sqrt(dim))
    y = rng.integers(0, 2, n)
    signal = rng.normal(0.0, 0.085, (n, dim))
    signal[:, 0] += 0.12 * (2 * y - 1) + shift  # a lender-specific shift: non-IID lenders
    signal[:, 1] += 0.06 * (2 * y - 1)
    return (offset + signal).astype(np.float32), y


def _fedavg(heads: list[torch.nn.Module], weights: list[int]) -> dict[str, torch.Tensor]:
    total = sum(weights)
    states = [h.state_dict() for h in heads]
    return {k: sum(s[k] * (w / total) for s, w in zip(states, weights, strict=True)) for k in states[0]}


def _consortium(
    lenders: list[tuple[np.ndarray, np.ndarray]], standardised: bool, rounds: int
) -> torch.nn.Module:
    torch.manual_seed(0)
    dim = lenders[0][0].shape[1]
    if standardised:
        head: torch.nn.Module = StandardisedScore(dim, 2)
        # What the statistics rounds compute: row-weighted means of the lenders' moments.
        rows = np.array([len(x) for x, _ in lenders], dtype=float)
        mean = sum(n * x.mean(0) for n, (x, _) in zip(rows, lenders, strict=True)) / rows.sum()
        var = sum(n * ((x - mean) ** 2).mean(0) for n, (x, _) in zip(rows, lenders, strict=True)) / rows.sum()
        set_standardisation(head, mean, np.sqrt(var), fixed=True)
    else:
        head = torch.nn.Linear(dim, 2, bias=False)  # tiny-qwen2's score layer
    for _ in range(rounds):
        local = []
        for k, (x, y) in enumerate(lenders):
            copy = type(head)(dim, 2) if standardised else torch.nn.Linear(dim, 2, bias=False)
            copy.load_state_dict(head.state_dict())
            train_score_head(copy, x, y, x, y, learning_rate=0.05, epochs=1, weight_decay=0.0,
                             class_weighting=False, seed=k)  # fmt: skip
            local.append(copy)
        head.load_state_dict(_fedavg(local, [len(x) for x, _ in lenders]))
    return head


def _loss_and_auc(head: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with torch.no_grad():
        logits = head(torch.tensor(x))
    loss = float(torch.nn.functional.cross_entropy(logits, torch.tensor(y)))
    return loss, float(roc_auc_score(y, (logits[:, 1] - logits[:, 0]).numpy()))


def test_standardised_head_beats_the_raw_head_on_offset_dominated_features() -> None:
    lenders = [_offset_dominated(150, seed, shift) for seed, shift in [(1, -0.03), (2, 0.0), (3, 0.04)]]
    x = np.concatenate([x for x, _ in lenders])
    y = np.concatenate([y for _, y in lenders])
    raw_loss, raw_auc = _loss_and_auc(_consortium(lenders, standardised=False, rounds=8), x, y)
    std_loss, std_auc = _loss_and_auc(_consortium(lenders, standardised=True, rounds=8), x, y)
    assert std_loss < raw_loss - 0.05, (std_loss, raw_loss)
    assert std_auc > raw_auc + 0.02, (std_auc, raw_auc)


def test_statistics_fit_and_bad_ones_are_refused() -> None:
    x = np.random.default_rng(0).normal(3.0, 0.1, (50, 4))
    mean, scale = feature_standardisation(x)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(scale, x.std(0))
    head = StandardisedScore(4, 2)
    with pytest.raises(ValueError, match="does not fit a head on 4 features"):
        set_standardisation(head, mean[:3], scale[:3])
    with pytest.raises(ValueError, match="not positive"):
        set_standardisation(head, mean, np.zeros(4))


def test_the_saved_head_carries_its_standardisation(tiny_qwen2) -> None:
    """The state `freeze` saves holds score.mean/score.scale; a fresh load scores identically."""
    method = get_method("freeze")
    cfg = method.parse_config({"n_trainable_layers": 0, "head": "standardised"})
    train = TrainConfig(method="freeze", method_params=cfg.model_dump(), device="cpu")
    model, _ = method.load_base("tiny-qwen2", cfg, train)
    model = method.prepare(model, cfg, None)
    head = standardised_head(model)
    assert head is not None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"score.linear.weight", "score.linear.bias"}
    dim = head.mean.shape[0]
    rng = np.random.default_rng(0)
    set_standardisation(head, rng.normal(size=dim), rng.uniform(0.05, 0.2, dim))
    with torch.no_grad():
        head.linear.bias.copy_(torch.tensor([0.3, -0.2]))
    state = method.state_to_save(model, cfg)
    assert {"score.mean", "score.scale"} <= set(state)

    fresh, _ = method.load_base("tiny-qwen2", cfg, train)
    fresh = method.prepare(fresh, cfg, None)
    method.load_state(fresh, state, cfg)
    ids = torch.tensor([[5, 9, 13, 2, 7]])
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids=ids).logits, model(input_ids=ids).logits)


def test_install_keeps_the_score_weights() -> None:
    holder = torch.nn.Module()
    holder.score = torch.nn.Linear(6, 2, bias=False)
    weight = holder.score.weight.detach().clone()
    new = install_standardised_score(holder)
    assert install_standardised_score(holder) is new  # idempotent
    torch.testing.assert_close(new.linear.weight, weight)
    x = torch.randn(3, 6)
    torch.testing.assert_close(new(x), x @ weight.T)  # identity standardisation, zero bias
