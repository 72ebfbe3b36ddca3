"""The supervised fine-tuning loop: setup -> train -> keep the best epoch.

`train_classifier` is the entry point: it resolves the method, loads and prepares the base
model, and calls `method.fit`, whose default is `supervised_fit` below, a plain torch loop:

* seeded everything (torch, numpy, random, transformers) and a seeded shuffle per epoch;
* dynamic padding per batch; class-weighted cross-entropy (credit data is ~30 % bad, so an
  unweighted loss drifts to "everyone is good"), optional label smoothing;
* AdamW over trainable parameters only (no decay on biases / norms), cosine schedule with
  warmup, gradient clipping, optional gradient accumulation;
* bf16 autocast on CUDA when supported, fp32 on CPU;
* validation AUC each epoch, early stopping on it, best state restored at the end, and a
  checkpoint (the method's saved state + metrics) under `checkpoint_dir/epoch-N` each epoch.

    from risk_app.finetune.trainer import train_classifier
    result = train_classifier(tr_texts, tr_y, va_texts, va_y, TrainConfig(epochs=2), "var/runs/x")
"""

from __future__ import annotations

import contextlib
import math
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from pydantic import BaseModel
from safetensors.torch import save_file
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from risk_app.atomic import atomic_dir, atomic_write_json
from risk_app.errors import ConfigError, RiskAppError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod, count_parameters
from risk_app.finetune.predict import encode_texts, model_device, pad_batch, predict_logits, softmax_default
from risk_app.finetune.types import TrainData, TrainResult

STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.json"


class TrainingDivergedError(RiskAppError):
    """The loss became NaN or infinite."""


# ---- setup helpers -----------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    transformers.set_seed(seed)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    return torch.device(device)


def resolve_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this run, or None for plain fp32."""
    if precision == "fp32":
        return None
    if device.type != "cuda":
        if precision == "fp16":
            raise ConfigError("precision 'fp16' needs a CUDA device; use 'fp32' or 'bf16' on CPU")
        # CPU bf16 autocast is slower than fp32 on most CPUs, so 'auto' stays fp32 there.
        return torch.bfloat16 if precision == "bf16" else None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Weights inverse to class frequency, normalised so a balanced set gives 1.0 each."""
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return torch.tensor(len(labels) / (2.0 * counts), dtype=torch.float32)


def optimizer_groups(
    named_params: Sequence[tuple[str, torch.nn.Parameter]], weight_decay: float
) -> list[dict[str, Any]]:
    """Decay weight matrices only: decaying biases and norm gains just hurts."""
    decay, no_decay = [], []
    for name, param in named_params:
        if param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def steps_per_epoch(n_train: int, config: TrainConfig) -> int:
    batches = math.ceil(n_train / config.batch_size)
    return math.ceil(batches / config.gradient_accumulation_steps)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS; it is the process peak, not this run's alone.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def subsample_train(data: TrainData, max_rows: int | None, seed: int) -> TrainData:
    """A seeded, stratified subset of the train split (validation untouched)."""
    n = len(data.train_texts)
    if max_rows is None or max_rows >= n:
        return data
    idx = np.arange(n)
    try:
        keep, _ = train_test_split(idx, train_size=max_rows, stratify=data.train_labels, random_state=seed)
    except ValueError:  # a class too small to stratify: plain seeded sample
        keep = np.random.default_rng(seed).choice(idx, size=max_rows, replace=False)
    keep = np.sort(keep)
    return TrainData.build(
        [data.train_texts[i] for i in keep], data.train_labels[keep], data.val_texts, data.val_labels
    )


def _is_dispatched(model: Any) -> bool:
    """Models placed by accelerate/bitsandbytes must not be moved with `.to()`."""
    return bool(getattr(model, "hf_device_map", None)) or getattr(model, "hf_quantizer", None) is not None


def save_checkpoint(method: FineTuneMethod, model: Any, out_dir: Path, metrics: dict[str, Any]) -> Path:
    """Write `state.safetensors` + `metrics.json` into `out_dir`, atomically."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in method.state_to_save(model).items()}
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(tmp / STATE_FILE))
        atomic_write_json(tmp / METRICS_FILE, metrics)
    return out_dir


# ---- the loop ----------------------------------------------------------------------------
def supervised_fit(
    method: FineTuneMethod,
    model: Any,
    tokenizer: Any,
    data: TrainData,
    config: TrainConfig,
    cfg: BaseModel,
    checkpoint_dir: str | Path | None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a prepared model on `data`; returns it with the best epoch's weights."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    amp_dtype = resolve_autocast_dtype(config.precision, device)
    if not _is_dispatched(model):
        model.to(device)
    device = model_device(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    train_ids = encode_texts(tokenizer, data.train_texts, config.max_length)
    labels = torch.as_tensor(data.train_labels, dtype=torch.long)
    weight = class_weights(data.train_labels) if config.class_weighting else None
    train_loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing).to(
        device
    )
    # Validation loss is the plain (weighted, unsmoothed) loss so epochs compare cleanly.
    val_loss_fn = torch.nn.CrossEntropyLoss(weight=weight)

    named = method.trainable_parameters(model)
    if not named:
        raise ConfigError(f"method {method.name!r} left no trainable parameters")
    optimizer = method.make_optimizer(optimizer_groups(named, config.weight_decay), config)
    per_epoch = steps_per_epoch(len(train_ids), config)
    total_steps = per_epoch * config.epochs
    scheduler = transformers.get_cosine_schedule_with_warmup(
        optimizer, round(config.warmup_ratio * total_steps), total_steps
    )
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    shuffler = torch.Generator().manual_seed(config.seed)
    trainable, total = count_parameters(model)

    history: list[dict[str, float]] = []
    best_auc, best_epoch, best_state, best_proba = -math.inf, 0, None, None
    epochs_without_gain, global_step, train_tokens, train_seconds = 0, 0, 0, 0.0
    stopped_early = False
    accum = config.gradient_accumulation_steps

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.randperm(len(train_ids), generator=shuffler).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        loss_sum, n_seen = 0.0, 0
        optimizer.zero_grad(set_to_none=True)
        bar = tqdm(total=per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False)
        for b, batch_idx in enumerate(batches):
            batch = pad_batch(tokenizer, [train_ids[i] for i in batch_idx])
            batch = {k: v.to(device) for k, v in batch.items()}
            target = labels[batch_idx].to(device)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with autocast:
                logits = model(**batch).logits
            cls_loss = train_loss_fn(logits.float(), target)
            extra = method.regularization_loss(model)
            loss = cls_loss if extra is None else cls_loss + extra
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"training diverged: loss is {loss.item()} at epoch {epoch}, batch {b + 1}; "
                    f"lower learning_rate (now {config.learning_rate})"
                )
            scaled = loss / accum
            (scaler.scale(scaled) if scaler else scaled).backward()
            # Report the classification loss alone so methods with a regulariser compare.
            loss_sum += cls_loss.item() * len(batch_idx)
            n_seen += len(batch_idx)
            train_tokens += int(batch["attention_mask"].sum().item())
            if (b + 1) % accum == 0 or b + 1 == len(batches):
                if scaler:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for _, p in named], config.max_grad_norm)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                global_step += 1
                # Before zero_grad: AdaLoRA scores rank importance from the gradients.
                method.on_optimizer_step(model, global_step)
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}")
        bar.close()
        train_seconds += time.perf_counter() - epoch_start

        val_logits = predict_logits(
            model, tokenizer, data.val_texts, config.eval_batch_size, config.max_length
        )
        val_proba = softmax_default(val_logits)
        val_auc = float(roc_auc_score(data.val_labels, val_proba))
        val_loss = float(val_loss_fn(torch.from_numpy(val_logits), torch.from_numpy(data.val_labels)))
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / n_seen,
            "val_loss": val_loss,
            "val_auc": val_auc,
            "learning_rate": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(record)
        if progress:
            tqdm.write(
                f"epoch {epoch}: train_loss={record['train_loss']:.4f} "
                f"val_loss={val_loss:.4f} val_auc={val_auc:.4f}"
            )
        if checkpoint_dir is not None:
            save_checkpoint(method, model, Path(checkpoint_dir) / f"epoch-{epoch}", record)

        if val_auc > best_auc:
            best_auc, best_epoch, best_proba = val_auc, epoch, val_proba
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in method.state_to_save(model).items()}
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
            if config.patience and epochs_without_gain >= config.patience:
                stopped_early = epoch < config.epochs
                break

    if best_state is not None and best_epoch != len(history):
        method.load_state(model, best_state)
    model.eval()
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        history=history,
        best_epoch=best_epoch,
        best_val_auc=best_auc,
        trainable_params=trainable,
        total_params=total,
        trainable_percent=100.0 * trainable / max(total, 1),
        wall_seconds=time.perf_counter() - started,
        peak_memory_mb=peak_memory_mb(device),
        tokens_per_second=train_tokens / max(train_seconds, 1e-9),
        device=str(device),
        method_name=method.name,
        method_config=cfg.model_dump(mode="json"),
        best_val_proba=best_proba,
        stopped_early=stopped_early,
        trainable_parameter_names=[name for name, _ in named],
    )


def train_classifier(
    train_texts: Sequence[str],
    train_labels: Sequence[int] | np.ndarray,
    val_texts: Sequence[str],
    val_labels: Sequence[int] | np.ndarray,
    config: TrainConfig,
    checkpoint_dir: str | Path | None,
    method: FineTuneMethod | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `config.base_model` with `config.method` (or `method`) and return the result."""
    from risk_app.finetune.registry import get_method

    if method is None:
        method = get_method(config.method)
    cfg = method.parse_config(config.method_params)
    data = subsample_train(
        TrainData.build(train_texts, train_labels, val_texts, val_labels), config.max_train_rows, config.seed
    )
    seed_everything(config.seed)
    method.total_steps = steps_per_epoch(len(data.train_texts), config) * config.epochs
    model, tokenizer = method.load_base(config.base_model, cfg, config)
    model = method.prepare(model, cfg)
    return method.fit(model, tokenizer, data, config, cfg, checkpoint_dir, progress=progress)
