"""The supervised objective: class-weighted cross-entropy, setup -> one epoch -> validate -> keep best.

`supervised_fit(inputs)` trains a model that `inputs.method.prepare` has prepared, as a
plain torch loop read top to bottom like a torchtune recipe:

* `setup_run` — model on its device, class-weighted loss (credit data is ~30 % bad, so an
  unweighted loss drifts to "everyone is good"), optional label smoothing, the method's
  optimizer over its trainable parameters (no decay on biases / norms), cosine schedule with
  warmup, the method's per-run regularizer (EWC, AdaLoRA), a seeded data-order generator;
* `train_one_epoch` — dynamic padding per batch, bf16 autocast on CUDA when supported,
  gradient accumulation and clipping, `method.on_optimizer_step` after each step;
* `validate` — validation AUC and loss on the whole validation split;
* `BestEpoch` — early stopping on validation AUC; the best epoch's state is restored at the
  end. Each epoch also writes a checkpoint (the method's saved state + metrics) under
  `checkpoint_dir/epoch-N`.

Everything one run needs lives in a `SupervisedRun` made by `setup_run`; the method object is
only asked for its hooks. The RLHF objective runs this same loop as its first stage.

    from risk_app.finetune.objectives.supervised import supervised_fit
    result = supervised_fit(ObjectiveInputs(choice, prepared_model, tokenizer, data, TrainConfig(epochs=2)))
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from risk_app.errors import ConfigError, RiskAppError
from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.events import epoch_ended, steps_logged
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.objectives.base import ObjectiveInputs
from risk_app.finetune.packing import head_tap, pack_batch, packed_logits
from risk_app.finetune.predict import encode_texts, model_device, pad_batch, predict_logits, softmax_default
from risk_app.finetune.resume import TRAINER_STATE, is_resuming, restore, trainer_state_bytes
from risk_app.finetune.run_setup import (
    class_weights,
    count_parameters,
    is_dispatched,
    optimizer_groups,
    peak_memory_mb,
    resolve_autocast_dtype,
    resolve_device,
    save_checkpoint,
    steps_per_epoch,
)
from risk_app.finetune.speed import cast_frozen, epoch_batches, training_attention, training_forward
from risk_app.finetune.types import Regularizer, TrainData, TrainResult


class TrainingDivergedError(RiskAppError):
    """The loss became NaN or infinite."""


@dataclass
class SupervisedRun:
    """One supervised run: what `setup_run` built, plus the counters the epochs advance."""

    method: FineTuneMethod
    cfg: BaseModel
    config: TrainConfig
    model: Any
    tokenizer: Any
    data: TrainData
    device: torch.device
    amp_dtype: torch.dtype | None
    train_ids: list[list[int]]
    labels: torch.Tensor
    train_loss_fn: torch.nn.Module
    val_loss_fn: torch.nn.Module
    named: list[tuple[str, torch.nn.Parameter]]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    shuffler: torch.Generator
    regularizer: Regularizer | None
    steps_per_epoch: int
    forward: Any = None  # the model, or its compiled view (speed.compile)
    global_step: int = 0
    train_tokens: int = 0
    train_seconds: float = 0.0


@dataclass
class BestEpoch:
    """The best validation AUC so far, its epoch, predictions and saved state; early stopping."""

    auc: float = -math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    proba: np.ndarray | None = None
    epochs_without_gain: int = 0

    def update(self, run: SupervisedRun, epoch: int, auc: float, proba: np.ndarray) -> None:
        """Keep this epoch if its AUC is the best so far (strictly better)."""
        if auc > self.auc:
            self.auc, self.epoch, self.proba = auc, epoch, proba
            # Under FSDP every rank gathers (collective); only rank 0 keeps the whole tensors.
            state = distributed.full_state(run.method.state_to_save(run.model, run.cfg))
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1

    def should_stop(self, patience: int) -> bool:
        return bool(patience) and self.epochs_without_gain >= patience


# ---- setup -------------------------------------------------------------------------------
def place_model(model: Any, config: TrainConfig) -> tuple[torch.device, torch.dtype | None]:
    """Move the model to the run's device (unless accelerate placed it); (device, autocast dtype)."""
    device = resolve_device(config.device)
    amp_dtype = resolve_autocast_dtype(config.precision, device)
    if not is_dispatched(model):
        model.to(device)
    device = model_device(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return device, amp_dtype


def loss_functions(
    data: TrainData, config: TrainConfig, device: torch.device
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(train loss, validation loss): validation is the plain weighted loss, so epochs compare."""
    weight = class_weights(data.train_labels) if config.class_weighting else None
    train_loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    return train_loss_fn.to(device), torch.nn.CrossEntropyLoss(weight=weight)


def setup_run(
    method: FineTuneMethod, model: Any, tokenizer: Any, data: TrainData, config: TrainConfig, cfg: BaseModel
) -> SupervisedRun:
    """Everything the epochs need, built once: device, losses, optimizer, schedule, regularizer."""
    if config.speed.packing and not method.supports_packing:
        raise ConfigError(f"speed.packing does not apply to method {method.name!r}; switch it off for it")
    device, amp_dtype = place_model(model, config)
    cast_frozen(model, config.speed, device, amp_dtype)
    # Called once with the model in place: EWC measures its Fisher at the starting weights.
    regularizer = method.regularizer(model, tokenizer, data, config, cfg)
    train_ids = encode_texts(tokenizer, data.train_texts, config.max_length)
    train_loss_fn, val_loss_fn = loss_functions(data, config, device)
    if distributed.choose_strategy(method.name, cfg)[0] == "fsdp":
        distributed.shard_parameters(model)  # replaces the parameters: before the optimizer
    named = method.trainable_parameters(model)
    if not named:
        raise ConfigError(f"method {method.name!r} left no trainable parameters")
    optimizer = method.make_optimizer(optimizer_groups(named, config.weight_decay), config, cfg)
    per_epoch = planned_steps(train_ids, config)
    total_steps = per_epoch * config.epochs
    scheduler = transformers.get_cosine_schedule_with_warmup(
        optimizer, round(config.warmup_ratio * total_steps), total_steps
    )
    return SupervisedRun(
        method=method, cfg=cfg, config=config, model=model, tokenizer=tokenizer, data=data,
        device=device, amp_dtype=amp_dtype, train_ids=train_ids,
        labels=torch.as_tensor(data.train_labels, dtype=torch.long),
        train_loss_fn=train_loss_fn, val_loss_fn=val_loss_fn, named=named,
        optimizer=optimizer, scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
        shuffler=torch.Generator().manual_seed(config.seed),
        regularizer=regularizer, steps_per_epoch=per_epoch,
        forward=training_forward(model, config.speed, device),
    )  # fmt: skip


def planned_steps(train_ids: list[list[int]], config: TrainConfig) -> int:
    """Optimizer steps per epoch; with token-budget batches, those of an unshuffled pass."""
    if config.speed.token_budget is None:
        return steps_per_epoch(len(train_ids), config)
    lengths = [len(ids) for ids in train_ids]
    n_batches = len(epoch_batches(lengths, list(range(len(lengths))), config.batch_size, config.speed))
    return math.ceil(n_batches / config.gradient_accumulation_steps)


# ---- one epoch ---------------------------------------------------------------------------
def train_batch(run: SupervisedRun, batch_idx: list[int]) -> torch.Tensor:
    """Forward + backward on one batch; its classification loss (without the regularizer), detached.

    The loss stays on the device: reading it back here would make the host wait for the GPU
    every step (`SpeedConfig.log_every` says how often `train_one_epoch` does).
    """
    batch_idx = distributed.shard(batch_idx)  # this rank's slice of the global batch
    sequences = [run.train_ids[i] for i in batch_idx]
    target = run.labels[batch_idx]
    if run.device.type == "cuda":  # pinned host memory lets the copy overlap the previous step
        target = target.pin_memory()
    target = target.to(run.device, non_blocking=True)
    # No cuDNN attention in a step that is differentiated: its backward gives NaN on padded
    # bf16 batches of Qwen2.5 (see speed.training_attention).
    with training_attention():
        logits = batch_logits(run, sequences)
        cls_loss = run.train_loss_fn(logits.float(), target)
        extra = run.regularizer(run.model) if run.regularizer is not None else None
        loss = cls_loss if extra is None else cls_loss + extra
        scaled = loss / run.config.gradient_accumulation_steps
        (run.scaler.scale(scaled) if run.scaler else scaled).backward()
    run.train_tokens += sum(len(seq) for seq in sequences)  # real tokens, counted on the host
    return cls_loss.detach()


def batch_logits(run: SupervisedRun, sequences: list[list[int]]) -> torch.Tensor:
    """The training forward of one batch of token id lists: (n, num_labels) logits.

    Padded to the batch's longest text with an attention mask, or, with `speed.packing`, laid
    end to end in packed rows (`risk_app.finetune.packing`: restarting positions, a
    block-diagonal mask, logits read at each application's last token)."""
    speed = run.config.speed
    autocast = (
        torch.autocast(run.device.type, dtype=run.amp_dtype) if run.amp_dtype else contextlib.nullcontext()
    )
    if speed.packing:
        pad_id = run.tokenizer.pad_token_id
        packed = pack_batch(sequences, speed.pack_length, pad_id, speed.pad_to_multiple_of)
        packed = packed.to(run.device, non_blocking=True)
        with head_tap(run.model) as tap, autocast:
            return packed_logits(run.forward, tap, packed)
    batch = pad_batch(run.tokenizer, sequences, multiple=speed.pad_to_multiple_of)
    if run.device.type == "cuda":
        batch = {k: v.pin_memory() for k, v in batch.items()}
    batch = {k: v.to(run.device, non_blocking=True) for k, v in batch.items()}
    with autocast:
        return run.forward(**batch).logits


def check_finite(run: SupervisedRun, loss_sum: torch.Tensor, epoch: int, batch_number: int) -> float:
    """The running loss sum as a float (one host sync); raises once it is NaN or infinite."""
    value = float(loss_sum)
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"training diverged: loss is {value} at epoch {epoch}, by batch {batch_number}; "
            f"lower learning_rate (now {run.config.learning_rate})"
            + (" or train in fp32 (precision=fp32)" if run.amp_dtype is not None else "")
        )
    return value


def optimizer_step(run: SupervisedRun) -> None:
    """Clip, step, advance the schedule, let the method react, clear the gradients."""
    if run.scaler:
        run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_([p for _, p in run.named], run.config.max_grad_norm)
    if run.scaler:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    run.global_step += 1
    # Before zero_grad: AdaLoRA scores rank importance from the gradients.
    run.method.on_optimizer_step(run.model, run.global_step)
    run.optimizer.zero_grad(set_to_none=True)


def train_one_epoch(run: SupervisedRun, epoch: int, progress: bool) -> float:
    """One seeded pass over the train split; returns the mean classification loss per example."""
    config = run.config
    run.model.train()
    started = time.perf_counter()
    order = torch.randperm(len(run.train_ids), generator=run.shuffler).tolist()
    lengths = [len(ids) for ids in run.train_ids]
    batches = epoch_batches(lengths, order, config.batch_size, config.speed)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    n_seen = done_steps = 0
    run.optimizer.zero_grad(set_to_none=True)
    bar = tqdm(
        total=run.steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False
    )
    for b, batch_idx in enumerate(batches):
        # Report the classification loss alone so methods with a regulariser compare.
        loss_sum += train_batch(run, batch_idx) * len(batch_idx)
        n_seen += len(batch_idx)
        if (b + 1) % config.gradient_accumulation_steps == 0 or b + 1 == len(batches):
            optimizer_step(run)
            bar.update(1)
            done_steps += 1
            if run.global_step % config.speed.log_every == 0 or b + 1 == len(batches):
                loss = check_finite(run, loss_sum, epoch, b + 1) / n_seen
                bar.set_postfix(loss=f"{loss:.4f}")
                steps_logged(
                    {
                        "epoch": epoch,
                        "step": done_steps,
                        "steps_per_epoch": run.steps_per_epoch,
                        "train_loss": loss,
                    }
                )
    bar.close()
    mean_loss = check_finite(run, loss_sum, epoch, len(batches)) / max(n_seen, 1)
    run.train_seconds += time.perf_counter() - started
    return mean_loss


# ---- validate ----------------------------------------------------------------------------
def validate(run: SupervisedRun) -> tuple[np.ndarray, float, float]:
    """(P(default) on the validation split, validation loss, validation AUC)."""
    config, data = run.config, run.data

    def predict(part: list[str]) -> np.ndarray:
        return predict_logits(run.model, run.tokenizer, part, config.eval_batch_size, config.max_length)

    # Each rank scores its share; the whole split's logits are gathered before the AUC.
    with distributed.full_parameters(run.model):
        val_logits = distributed.predict_sharded(predict, data.val_texts)
    val_proba = softmax_default(val_logits)
    val_auc = float(roc_auc_score(data.val_labels, val_proba))
    val_loss = float(run.val_loss_fn(torch.from_numpy(val_logits), torch.from_numpy(data.val_labels)))
    return val_proba, val_loss, val_auc


# ---- the loop ----------------------------------------------------------------------------
def supervised_fit(inputs: ObjectiveInputs, /) -> TrainResult:
    """Train a prepared model on `data`; returns it with the best epoch's weights."""
    started = time.perf_counter()
    method, model, cfg, config, checkpoint_dir = (
        inputs.method, inputs.model, inputs.method_cfg, inputs.config, inputs.checkpoint_dir
    )
    progress = inputs.progress
    run = setup_run(method, model, inputs.tokenizer, inputs.data, config, cfg)
    # Under torchrun: DDP (FSDP needs no wrapper), and each rank's share of the global batch's
    # loss; else as they are.
    run.forward = distributed.wrap_model(run.forward)
    run.train_loss_fn = distributed.global_batch_loss(run.train_loss_fn, run.labels)
    best = BestEpoch()
    done, history = restore(run, best, checkpoint_dir) if is_resuming() and checkpoint_dir else (0, [])
    stopped_early = bool(done) and best.should_stop(config.patience)
    for epoch in range(done + 1, config.epochs + 1):
        if stopped_early:
            break
        record = run_epoch(run, epoch, progress)
        history.append(record)
        best.update(run, epoch, record["val_auc"], record.pop("_val_proba"))
        if checkpoint_dir is not None:
            save_epoch_checkpoint(run, best, history, record, checkpoint_dir / f"epoch-{epoch}")
        epoch_ended(record)
        if progress:
            tqdm.write(
                f"epoch {epoch}: train_loss={record['train_loss']:.4f} val_loss={record['val_loss']:.4f} "
                f"val_auc={record['val_auc']:.4f}"
            )
        if best.should_stop(config.patience):
            stopped_early = epoch < config.epochs
            break
    if best.state is not None and best.epoch != len(history):
        distributed.load_state(method, model, best.state, cfg)
    model.eval()
    return build_result(run, history, best, stopped_early, time.perf_counter() - started)


def save_epoch_checkpoint(
    run: SupervisedRun, best: BestEpoch, history: list[dict[str, Any]], record: dict[str, Any], folder: Path
) -> None:
    """Rank 0 writes the epoch's checkpoint; under FSDP every rank first helps gather the whole
    weights and optimizer state (collectives), which rank 0 alone then holds."""
    if not (distributed.is_main_process() or distributed.is_sharded(run.model)):
        return
    state = distributed.full_state(run.method.state_to_save(run.model, run.cfg))
    trainer_state = trainer_state_bytes(run, best, history)
    if distributed.is_main_process():
        save_checkpoint(state, folder, record, extra={TRAINER_STATE: trainer_state})


def run_epoch(run: SupervisedRun, epoch: int, progress: bool) -> dict[str, Any]:
    """Train one epoch and validate; the epoch's history record (its P(default) under `_val_proba`)."""
    epoch_start = time.perf_counter()
    tokens_before, seconds_before = run.train_tokens, run.train_seconds
    train_loss = distributed.mean_across_ranks(train_one_epoch(run, epoch, progress))
    tokens_per_second = (run.train_tokens - tokens_before) / max(run.train_seconds - seconds_before, 1e-9)
    val_proba, val_loss, val_auc = validate(run)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_auc": val_auc,
        "learning_rate": run.scheduler.get_last_lr()[0],
        "seconds": time.perf_counter() - epoch_start,
        "train_tokens_per_second": tokens_per_second,
        "_val_proba": val_proba,
    }


def build_result(
    run: SupervisedRun, history: list[dict[str, float]], best: BestEpoch, stopped_early: bool, wall: float
) -> TrainResult:
    """The run's `TrainResult`; trained parameter names are those the optimizer updated."""
    trainable, total = count_parameters(run.model)
    return TrainResult(
        model=run.model,
        tokenizer=run.tokenizer,
        history=history,
        best_epoch=best.epoch,
        best_val_auc=best.auc,
        trainable_params=trainable,
        total_params=total,
        trainable_percent=100.0 * trainable / max(total, 1),
        wall_seconds=wall,
        peak_memory_mb=peak_memory_mb(run.device),
        tokens_per_second=distributed.sum_across_ranks(run.train_tokens) / max(run.train_seconds, 1e-9),
        device=str(run.device),
        method_name=run.method.name,
        method_config=run.cfg.model_dump(mode="json"),
        best_val_proba=best.proba,
        stopped_early=stopped_early,
        trainable_parameter_names=[name for name, _ in run.named],
    )
