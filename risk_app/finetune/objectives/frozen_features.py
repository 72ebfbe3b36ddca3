"""The frozen-features objective: a classification head trained on cached pooled features.

When no decoder layer trains (`freeze` with `n_trainable_layers=0`), every epoch would run the
same frozen forward pass again. This objective runs it once per distinct text instead:
`risk_app.finetune.features.cached_features` pools each application's last-token hidden state
(what `*ForSequenceClassification` feeds its `score` head) and keeps it on disk keyed by the
base model's content hash, the text and the feature settings (template, token limit,
precision), so later epochs, seeds, heads and runs on the same data only read the file. The
model's own `score` layer is then trained on those vectors (`frozen_head.train_score_head`),
so the result is an ordinary sequence classifier: saved, packaged, loaded and scored like any
other method's, and at scoring time the frozen base computes the features and applies the head.

A method opts in through `FineTuneMethod.objective_for(cfg)`; `freeze` returns this
objective's name when `n_trainable_layers == 0`:

    train_classifier(tr, y_tr, va, y_va, TrainConfig(method="freeze",
                     method_params={"n_trainable_layers": 0}, epochs=20), None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.events import epoch_ended
from risk_app.finetune.features import FeatureSettings, cached_features
from risk_app.finetune.frozen_head import fit_logistic_head, train_score_head
from risk_app.finetune.methods.base import HEAD_MODULE
from risk_app.finetune.objectives.base import ObjectiveInputs
from risk_app.finetune.run_setup import count_parameters, peak_memory_mb, resolve_device
from risk_app.finetune.standardised_head import (
    StandardisedScore,
    feature_standardisation,
    set_standardisation,
)
from risk_app.finetune.types import TrainData, TrainResult

# The cache's template id: the texts' own hash is in the key, so one namespace serves every
# serialization template; it matches bench/frozen_heads.py, whose features are then reused.
FEATURE_TEMPLATE = "default"


def feature_settings(config: TrainConfig) -> FeatureSettings:
    """The cache key's settings for a run: its token limit and the precision it computes in."""
    precision = "bf16" if config.precision == "bf16" else "fp32"
    return FeatureSettings(max_length=config.max_length, precision=precision, template=FEATURE_TEMPLATE)


def _head(model: Any) -> torch.nn.Module:
    head = getattr(model, HEAD_MODULE, None)
    if not isinstance(head, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} has no `{HEAD_MODULE}` classification head")
    return head


def _fit_linear(
    head: torch.nn.Module, x_train: np.ndarray, x_val: np.ndarray, data: TrainData, config: TrainConfig
) -> list[dict[str, float]]:
    """The score layer trained by AdamW with the run's learning rate, epochs and patience."""
    return train_score_head(
        head, x_train, data.train_labels, x_val, data.val_labels,
        learning_rate=config.learning_rate, epochs=config.epochs, weight_decay=config.weight_decay,
        batch_size=config.batch_size, class_weighting=config.class_weighting,
        patience=config.patience, seed=config.seed, on_epoch=epoch_ended,
    )  # fmt: skip


def _fit_standardised(
    head: torch.nn.Module, x_train: np.ndarray, x_val: np.ndarray, data: TrainData, config: TrainConfig
) -> list[dict[str, float]]:
    """`_fit_linear` through the standardised head (see finetune/standardised_head.py); its mean and
    scale come from these training rows unless a consortium fixed them."""
    if not isinstance(head, StandardisedScore):
        raise TypeError("head 'standardised' needs the StandardisedScore layer that freeze.prepare installs")
    if not head.fixed:
        set_standardisation(head, *feature_standardisation(x_train))
    return _fit_linear(head, x_train, x_val, data, config)


def _fit_logistic(
    head: torch.nn.Module, x_train: np.ndarray, x_val: np.ndarray, data: TrainData, config: TrainConfig
) -> list[dict[str, float]]:
    """Logistic regression on standardised features (C by validation AUC), folded into the layer.

    logit = w . (x - mean) / scale + b  =  (w / scale) . x + (b - (w / scale) . mean), split
    evenly between the two logits, so the classifier's softmax gives the regression's P."""
    started = time.perf_counter()
    fitted = fit_logistic_head(x_train, data.train_labels, x_val, data.val_labels)
    direction = fitted.weight / fitted.scaler.scale_
    intercept = fitted.bias - float(direction @ fitted.scaler.mean_)
    weight = torch.as_tensor(direction / 2, dtype=head.weight.dtype, device=head.weight.device)
    with torch.no_grad():
        head.weight[1], head.weight[0] = weight, -weight
        head.bias[1], head.bias[0] = intercept / 2, -intercept / 2
    # One row per strength tried ("epoch" i = the i-th C); the chosen row carries the exact
    # AUC (the others are rounded, and never above it, so the best row is the chosen one).
    loss = _log_loss(head, x_train, data.train_labels)  # of the fitted, folded model
    seconds = (time.perf_counter() - started) / len(fitted.tried)
    history = []
    for i, row in enumerate(fitted.tried, start=1):
        auc = fitted.val_auc if row["C"] == fitted.params["C"] else min(row["val_auc"], fitted.val_auc)
        history.append({"epoch": i, "train_loss": loss, "val_auc": auc, "C": row["C"], "seconds": seconds})
        epoch_ended(history[-1])
    return history


def _log_loss(head: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        logits = head(torch.as_tensor(x, dtype=head.weight.dtype, device=head.weight.device)).float()
        return float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y, device=logits.device)))


HeadFitter = Callable[
    [torch.nn.Module, np.ndarray, np.ndarray, TrainData, TrainConfig], list[dict[str, float]]
]
# How the head is fitted on the cached features (`freeze`'s `head` parameter), by name.
HEAD_FITTERS: dict[str, HeadFitter] = {
    "linear": _fit_linear,
    "logistic": _fit_logistic,
    "standardised": _fit_standardised,
}


def frozen_features_fit(inputs: ObjectiveInputs, /) -> TrainResult:
    """Pool the features once (cached), train the `score` head on them, keep the best epoch."""
    started = time.perf_counter()
    model, tokenizer, data, config = inputs.model, inputs.tokenizer, inputs.data, inputs.config
    cfg, progress = inputs.method_cfg, inputs.progress
    device = resolve_device(config.device)
    model.to(device)
    model.eval()
    settings = feature_settings(config)
    texts = data.train_texts + data.val_texts
    # The prepared model is the frozen base: hand it to the cache so nothing is loaded twice.
    pooled = cached_features(
        config.base_model, texts, settings=settings, batch_size=config.eval_batch_size,
        progress=progress, loader=lambda _base, _settings: (model, tokenizer),
        log=tqdm.write if progress else None,
    )["last"]  # fmt: skip
    n_train = len(data.train_texts)
    head = _head(model)
    fit = HEAD_FITTERS[getattr(cfg, "head", "linear")]
    history = fit(head, pooled[:n_train], pooled[n_train:], data, config)
    best = max(history, key=lambda row: row["val_auc"])
    param = next(head.parameters())
    with torch.no_grad():
        logits = head(torch.tensor(pooled[n_train:], dtype=param.dtype, device=param.device)).float()
    val_proba = torch.softmax(logits, dim=-1)[:, 1].cpu().numpy().astype(np.float64)
    trainable, total = count_parameters(model)
    wall = time.perf_counter() - started
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        history=[{k: v for k, v in row.items() if k != "loss"} for row in history],
        best_epoch=int(best["epoch"]),
        best_val_auc=float(best["val_auc"]),
        trainable_params=trainable,
        total_params=total,
        trainable_percent=100.0 * trainable / max(total, 1),
        wall_seconds=wall,
        peak_memory_mb=peak_memory_mb(device),
        tokens_per_second=0.0,  # the base reads each text once, cached; no tokens flow per epoch
        device=str(device),
        method_name=inputs.method.name,
        method_config=cfg.model_dump(mode="json"),
        best_val_proba=val_proba,
        stopped_early=len(history) < config.epochs,
        trainable_parameter_names=[n for n, p in model.named_parameters() if p.requires_grad],
    )
