"""Classification heads on frozen base-model features, tuned on validation only.

The cheap way to use a large base on a CPU: compute pooled features once
(`risk_app/finetune/features.py`), then fit a small head on them in seconds. Two heads:

* `logistic` — L2-regularised logistic regression on standardised features; the inverse
  regularisation strength C is chosen by validation ROC AUC;
* `linear` — the `score` layer that `freeze` with no decoder layer trained would learn: a
  linear map to two logits trained with AdamW and class-weighted cross-entropy; the learning
  rate, the weight decay and the number of epochs (checked every 5) are chosen by validation ROC AUC.

`select_head` tries both heads on every pooling offered and keeps the best by validation AUC.
Nothing here looks at test data.

    head = select_head({"last": (x_tr, x_va)}, y_tr, y_va, seed=0); p = head.predict(x_test)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

HeadKind = Literal["logistic", "linear"]
HEAD_KINDS: tuple[HeadKind, ...] = ("logistic", "linear")
LOGISTIC_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
LINEAR_LR_GRID = (1e-3, 3e-3, 1e-2)
LINEAR_WD_GRID = (0.0, 0.5)
LINEAR_MAX_EPOCHS = 200  # full-batch steps
LINEAR_EVAL_EVERY = 5  # epochs between validation checks


@dataclass
class FrozenHead:
    """A fitted head: standardisation + a linear model, and how it was chosen."""

    kind: HeadKind
    pooling: str
    params: dict[str, Any]
    val_auc: float
    scaler: StandardScaler
    weight: np.ndarray  # (hidden,) direction of the default logit
    bias: float
    tried: list[dict[str, Any]] = field(default_factory=list)

    def logit(self, features: np.ndarray) -> np.ndarray:
        return self.scaler.transform(features) @ self.weight + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(default) for each row of `features`."""
        return 1.0 / (1.0 + np.exp(-self.logit(features)))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) > 1 else 0.5


def _fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties averaged): the same number, without sklearn's overhead."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def fit_logistic_head(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, pooling: str = "last"
) -> FrozenHead:
    """Logistic regression with C chosen on validation (balanced class weights)."""
    scaler = StandardScaler().fit(x_train)
    z_train, z_val = scaler.transform(x_train), scaler.transform(x_val)
    best: FrozenHead | None = None
    tried = []
    # One model along the regularisation path (C ascending, warm-started from the last fit):
    # each fit starts near its optimum, several times faster than fitting each C from zero.
    model = LogisticRegression(class_weight="balanced", max_iter=500, tol=1e-3, warm_start=True)
    for c in sorted(LOGISTIC_C_GRID):
        model.set_params(C=c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # tol 1e-3 is ample for ranking
            model.fit(z_train, y_train)
        auc = _auc(y_val, model.decision_function(z_val))
        tried.append({"C": c, "val_auc": round(auc, 4)})
        if best is None or auc > best.val_auc:
            best = FrozenHead("logistic", pooling, {"C": c}, auc, scaler, model.coef_[0].copy(),
                              float(model.intercept_[0]))  # fmt: skip
    assert best is not None
    best.tried = tried
    return best


def _train_linear(
    z_train: torch.Tensor, y_train: torch.Tensor, z_val: torch.Tensor, y_val: np.ndarray,
    lr: float, weight_decay: float, max_epochs: int, seed: int,
) -> tuple[float, int, np.ndarray, float]:  # fmt: skip
    """(best val AUC, its epoch, weight, bias) of a 2-logit linear head.

    Full-batch AdamW: with a few hundred rows and a linear model one step per epoch is cheap
    and smooth, and validation is checked after every epoch.
    """
    torch.manual_seed(seed)
    head = torch.nn.Linear(z_train.shape[1], 2)
    counts = torch.bincount(y_train, minlength=2).float().clamp(min=1)
    loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / (2 * counts))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, 0, np.zeros(z_train.shape[1]), 0.0)
    for epoch in range(1, max_epochs + 1):
        optimizer.zero_grad()
        loss_fn(head(z_train), y_train).backward()
        optimizer.step()
        if epoch % LINEAR_EVAL_EVERY:
            continue
        with torch.no_grad():
            logits = head(z_val)
        auc = _fast_auc(y_val, (logits[:, 1] - logits[:, 0]).numpy())
        if auc > best[0]:
            w = (head.weight[1] - head.weight[0]).detach().numpy().astype(np.float64)
            b = float((head.bias[1] - head.bias[0]).detach())
            best = (auc, epoch, w, b)
    return best


def fit_linear_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    pooling: str = "last",
    seed: int = 0,
    *,
    lrs: tuple[float, ...] = LINEAR_LR_GRID,
    weight_decays: tuple[float, ...] = LINEAR_WD_GRID,
    max_epochs: int = LINEAR_MAX_EPOCHS,
) -> FrozenHead:
    """The `score` head trained alone; lr, weight decay and epochs chosen on validation."""
    scaler = StandardScaler().fit(x_train)
    z_train = torch.tensor(scaler.transform(x_train), dtype=torch.float32)
    z_val = torch.tensor(scaler.transform(x_val), dtype=torch.float32)
    y_t = torch.tensor(y_train, dtype=torch.long)
    best: FrozenHead | None = None
    tried = []
    for lr in lrs:
        for wd in weight_decays:
            auc, epoch, weight, bias = _train_linear(z_train, y_t, z_val, y_val, lr, wd, max_epochs, seed)
            tried.append({"lr": lr, "weight_decay": wd, "epoch": epoch, "val_auc": round(auc, 4)})
            if best is None or auc > best.val_auc:
                params = {"lr": lr, "weight_decay": wd, "epochs": epoch}
                best = FrozenHead("linear", pooling, params, auc, scaler, weight, bias)
    assert best is not None
    best.tried = tried
    return best


def select_head(
    features: dict[str, tuple[np.ndarray, np.ndarray]],
    y_train: np.ndarray,
    y_val: np.ndarray,
    *,
    kinds: tuple[HeadKind, ...] | dict[str, tuple[HeadKind, ...]] = HEAD_KINDS,
    seed: int = 0,
) -> FrozenHead:
    """The best head by validation AUC over the feature sets in `features` {name: (train, val)}.

    `kinds` are the heads tried on every feature set, or per feature set ({name: kinds}) when
    the slower `linear` head should only see some of them.
    """
    candidates = []
    for name, (x_train, x_val) in features.items():
        tried = kinds.get(name, ()) if isinstance(kinds, dict) else kinds
        if "logistic" in tried:
            candidates.append(fit_logistic_head(x_train, y_train, x_val, y_val, name))
        if "linear" in tried:
            candidates.append(fit_linear_head(x_train, y_train, x_val, y_val, name, seed=seed))
    if not candidates:
        raise ValueError("select_head needs at least one feature set and one head kind")
    return max(candidates, key=lambda head: head.val_auc)


def train_score_head(
    score: torch.nn.Module,
    train_features: np.ndarray,
    y_train: np.ndarray,
    val_features: np.ndarray,
    y_val: np.ndarray,
    *,
    learning_rate: float,
    epochs: int,
    weight_decay: float = 0.01,
    batch_size: int = 16,
    class_weighting: bool = True,
    patience: int = 0,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train a model's own `score` layer in place on cached last-token features; keep the best epoch.

    This is what `freeze` with no decoder layer trained computes, without running the decoder
    each epoch: `score(features["last"])` equals the classifier's logits (see
    tests/finetune/test_features.py). The model stays an ordinary sequence classifier, so
    prediction and saving work unchanged. Returns one {epoch, train_loss (also as `loss`),
    val_loss, val_auc, learning_rate, seconds} row per epoch, each also passed to `on_epoch`;
    training stops after `patience` epochs without a better validation AUC (0 = never), and
    the weights of the epoch with the best validation AUC are restored.
    """
    torch.manual_seed(seed)
    param = next(score.parameters())
    x_train = torch.tensor(train_features, dtype=param.dtype, device=param.device)
    x_val = torch.tensor(val_features, dtype=param.dtype, device=param.device)
    y_t = torch.tensor(y_train, dtype=torch.long, device=param.device)
    y_v = torch.tensor(np.asarray(y_val), dtype=torch.long, device=param.device)
    counts = torch.bincount(y_t, minlength=2).float().clamp(min=1)
    weight = (counts.sum() / (2 * counts)).to(param.dtype) if class_weighting else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(score.parameters(), lr=learning_rate, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    best_auc, best_epoch = -1.0, 0
    best_state = {k: v.detach().clone() for k, v in score.state_dict().items()}
    for epoch in range(1, epochs + 1):
        started, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(x_train), device=param.device).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(score(x_train[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        with torch.no_grad():
            logits = score(x_val).float()
            val_loss = float(torch.nn.functional.cross_entropy(logits, y_v))
        auc = _fast_auc(np.asarray(y_val), (logits[:, 1] - logits[:, 0]).cpu().numpy())
        record = {"epoch": epoch, "train_loss": total / len(x_train), "loss": total / len(x_train),
                  "val_loss": val_loss, "val_auc": auc, "learning_rate": learning_rate,
                  "seconds": time.perf_counter() - started}  # fmt: skip
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if auc > best_auc:
            best_auc, best_epoch = auc, epoch
            best_state = {k: v.detach().clone() for k, v in score.state_dict().items()}
        elif patience and epoch - best_epoch >= patience:
            break
    score.load_state_dict(best_state)
    return history
