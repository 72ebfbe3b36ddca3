"""Training across processes: the process group, rank helpers, sharding, gathering, wrapping.

`risk-app train --nproc N` (see `risk_app.run.launch`) starts N copies of the fine-tune stage
under `torchrun`; each copy runs the ordinary supervised loop, which asks this module a few
things and is otherwise unchanged:

* `choose_strategy(method, cfg)` — DDP for the methods with a frozen base (only their few
  trainable tensors are synchronized), FSDP for `full` fine-tuning (every weight trains, so
  parameters, gradients and the optimizer's moments are sharded over the ranks);
* `shard_parameters(model)` — FSDP2's `fully_shard` on each decoder layer and the root; the
  parameters become sharded `DTensor`s, so it runs before the optimizer is built;
* `shard(batch)` — this rank's slice of a global batch. Every rank draws the same seeded
  global order, so the effective batch and the number of optimizer steps are those of the
  single-process run; only the examples each process computes differ;
* `wrap_model(model)` — the module the training forward goes through: the DDP wrapper, which
  averages gradients over ranks during backward, or the FSDP-sharded model itself, whose hooks
  gather each layer's weights for its forward and reduce-scatter its gradients (also averaged);
* `predict_sharded(predict, texts)` — each rank scores its share of a list of texts and the
  logits are gathered back into input order, so the validation AUC is computed on the whole
  validation set (an average of per-rank AUCs would not be the AUC of anything); under FSDP
  inside `full_parameters(model)`, which gathers the weights for the whole prediction, as ranks
  whose shares batch differently cannot all-gather layer by layer in step;
* `full_state(state)`, `load_state(...)`, `optimizer_state(...)`, `load_optimizer_state(...)` —
  what the loop saves and restores (checkpoints, the best epoch, resume) as whole plain tensors,
  gathered from and scattered back to the shards under FSDP, as they are otherwise;
* `global_batch_loss(loss_fn, labels)` — each rank's share of the global batch's weighted mean
  loss, so that the average of the ranks' gradients is the single-process gradient;
* `mean_across_ranks` / `sum_across_ranks` — the epoch's loss and token count over all ranks;
* `is_main_process()` — only rank 0 writes checkpoints, the artifact and the record.

With one process (no process group) every helper is the identity, so the single-process path
costs nothing and stays bit-for-bit what it was.

`full` with an EWC penalty stays on DDP: the penalty is computed outside the model's forward,
over every parameter against whole-size anchor and Fisher tensors, and outside its forward an
FSDP model holds only shards. `launch_facts()` says so in the run folder and the logs.

    with process_group("auto") as facts:      # under torchrun
        ...train...
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

from risk_app.errors import RiskAppError

Backend = Literal["gloo", "nccl"]
Strategy = Literal["single", "ddp", "fsdp"]

EWC_NEEDS_WHOLE_WEIGHTS = (
    "full fine-tuning with an EWC penalty runs DDP, not FSDP: the penalty is computed outside the "
    "forward over whole parameters, which FSDP holds only as shards there"
)
# Sharded checkpoints name optimizer state by parameter name, plain ones by position.
_MIXED_CHECKPOINT = (
    "this checkpoint's optimizer state was written by a {written} run and this run is {now}; "
    "resume it with the --nproc it was started with"
)
_TIMEOUT = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class LaunchFacts:
    """How one training run was spread over processes; written next to the run's record."""

    world_size: int
    backend: str
    strategy: Strategy
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the process group -------------------------------------------------------------------
def launched_by_torchrun() -> bool:
    """True inside a process that torchrun (torch.distributed.run) started."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "LOCAL_RANK" in os.environ


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files and reports."""
    return rank() == 0


def choose_backend(device: str) -> Backend:
    """NCCL when the run trains on CUDA GPUs, else gloo (CPU)."""
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda else "gloo"


def init_from_env(device: str) -> Backend:
    """Join the process group torchrun describes in the environment; one GPU per local rank."""
    backend = choose_backend(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend=backend, timeout=_TIMEOUT)
    return backend


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group(device: str) -> Iterator[Backend]:
    """Inside: this process is one rank of torchrun's group. Torn down on the way out."""
    backend = init_from_env(device)
    try:
        yield backend
    finally:
        teardown()


def choose_strategy(method_name: str, method_cfg: BaseModel | None = None) -> tuple[Strategy, str]:
    """(strategy, why): DDP for a frozen base, which synchronizes only the few trainable
    tensors; FSDP for `full`, whose every weight, gradient and optimizer moment would
    otherwise be replicated on each rank; DDP for `full` with EWC, and the reason says why."""
    if not is_distributed():
        return "single", ""
    if method_name != "full":
        return "ddp", ""
    if float(getattr(method_cfg, "ewc_lambda", 0.0)) > 0:
        return "ddp", EWC_NEEDS_WHOLE_WEIGHTS
    return "fsdp", ""


def launch_facts(method_name: str, method_cfg: BaseModel | None = None) -> LaunchFacts:
    strategy, note = choose_strategy(method_name, method_cfg)
    backend = str(dist.get_backend()) if is_distributed() else "none"
    return LaunchFacts(world_size=world_size(), backend=backend, strategy=strategy, note=note)


# ---- data and model ----------------------------------------------------------------------
@dataclass
class _Step:
    """The global batch of the step this rank is on, for `GlobalBatchLoss`."""

    batch: list[int]
    idle: bool  # this rank holds a repeated example only so that it takes part in the step


_step = _Step(batch=[], idle=False)


def shard(batch: Sequence[int]) -> list[int]:
    """This rank's contiguous slice of a global batch (sizes differ by at most one).

    A batch smaller than the world gives a rank with nothing to do one example of the batch
    again, because under DDP every rank must run a backward each step; `GlobalBatchLoss` gives
    that example a weight of zero. The global batch is remembered for that loss."""
    batch = list(batch)
    n, size, me = len(batch), world_size(), rank()
    if size == 1:
        return batch
    part = batch[me * n // size : (me + 1) * n // size]
    _step.batch, _step.idle = batch, not part
    return part or [batch[me % n]]


class GlobalBatchLoss(torch.nn.Module):
    """The training loss of the whole global batch, computed on this rank's slice of it.

    The class-weighted cross-entropy is a weighted mean, `sum(w_i * l_i) / sum(w_i)` over the
    batch. Each rank's own mean would divide by its own slice's weights, and DDP's average of
    those is not the batch's mean (halves with more defaults, the heavier class, would count
    for less). So each rank divides its weighted sum by the global batch's weight and multiplies
    by the world size, which DDP's average undoes: the gradient is the single-process one."""

    def __init__(self, loss_fn: torch.nn.CrossEntropyLoss, labels: torch.Tensor) -> None:
        super().__init__()
        self.summed = torch.nn.CrossEntropyLoss(
            weight=loss_fn.weight, label_smoothing=loss_fn.label_smoothing, reduction="sum"
        )
        # Per-example weights on the host: the step's total is then a CPU sum, no device sync.
        weight = loss_fn.weight.detach().cpu().double() if loss_fn.weight is not None else None
        self.example_weight = weight[labels] if weight is not None else torch.ones(len(labels)).double()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = float(self.example_weight[_step.batch].sum())
        scale = 0.0 if _step.idle else world_size() / total
        return self.summed(logits, target) * scale


def global_batch_loss(loss_fn: torch.nn.Module, labels: torch.Tensor) -> torch.nn.Module:
    """The training loss to use on this rank: `GlobalBatchLoss` under torchrun, else `loss_fn`."""
    if not is_distributed():
        return loss_fn
    if not isinstance(loss_fn, torch.nn.CrossEntropyLoss) or loss_fn.reduction != "mean":
        raise TypeError(f"cannot spread {loss_fn!r} over ranks: expected a mean cross-entropy")
    return GlobalBatchLoss(loss_fn, labels)


def shard_parameters(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2: shard `model` in place over the ranks, each decoder layer its own unit.

    Each layer's weights are all-gathered just for its forward and backward and its gradients
    reduce-scattered (averaged, as DDP's are), so a rank holds one layer whole at a time and a
    1/N share of every weight, gradient and optimizer moment. The parameters are replaced by
    sharded `DTensor`s: build the optimizer afterwards. Rank 0's weights are broadcast first,
    as DDP does, so a head drawn differently on some rank cannot go unnoticed."""
    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (world_size(),))
    with torch.no_grad():
        for param in model.parameters():
            dist.broadcast(param.data, src=0)
    # transformers names the blocks that must stay whole (decoder layers) on each model class.
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for module in list(model.modules()):
        if module is not model and type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def is_sharded(model: Any) -> bool:
    """True for a model `shard_parameters` sharded (or its compiled view)."""
    return isinstance(getattr(model, "_orig_mod", model), FSDPModule)


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module the training forward goes through: the model itself (one process, or
    FSDP-sharded, whose own hooks communicate), or its DDP wrapper.

    The wrapper shares the model's parameters, so the optimizer, the method's saved state and
    prediction keep using the plain model and its parameter names."""
    if not is_distributed() or is_sharded(model):
        return model
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    # Every method's trainable tensors take part in every forward (tried with 2 gloo ranks for
    # each method, LoRA's DoRA and AdaLoRA variants included), so DDP need not search the graph
    # for unused ones each step.
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


# ---- whole tensors for what the loop keeps -----------------------------------------------
def full_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with every sharded tensor gathered whole, on the CPU, on rank 0.

    Every rank must call it (each gather is collective); other ranks get an empty dict back,
    so only rank 0 holds a whole copy of the model in host memory. Unsharded: `state` as is."""
    if not any(isinstance(value, DTensor) for value in state.values()):
        return dict(state)
    keep = is_main_process()
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():  # one tensor at a time: one whole layer at most in flight
        whole = value.full_tensor() if isinstance(value, DTensor) else value
        if keep:
            out[name] = whole.detach().to("cpu", copy=True)
    return out


def load_state(method: Any, model: Any, state: Mapping[str, torch.Tensor], cfg: BaseModel | None) -> None:
    """`method.load_state(model, state, cfg)`; into an FSDP model, rank 0's whole tensors are
    broadcast and each rank keeps its shard (every rank calls it; the others' `state` is unused)."""
    if not is_sharded(model):
        method.load_state(model, state, cfg)
        return
    if is_main_process():
        names = {name for name, _ in model.named_parameters()}
        unknown = [key for key in state if key not in names]
        if unknown:  # raising here ends the run: torchrun stops every rank when one fails
            raise RiskAppError(f"saved weights do not fit the sharded model, e.g. {unknown[0]!r}")
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(model, dict(state) if is_main_process() else {}, options=options)


def optimizer_state(model: Any, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state to checkpoint: `optimizer.state_dict()`, or under FSDP the whole
    state keyed by parameter name, on rank 0 (every rank calls it; the others get `{}`)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return dict(get_optimizer_state_dict(model, optimizer, options=options))


def load_optimizer_state(model: Any, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Restore what `optimizer_state` saved (under FSDP, rank 0's copy is scattered to the shards)."""
    by_name = any(isinstance(key, str) for key in state.get("state", {}))
    if by_name != is_sharded(model):
        written, now = ("sharded", "not") if by_name else ("one-process or DDP", "sharded (FSDP)")
        raise RiskAppError(_MIXED_CHECKPOINT.format(written=written, now=now))
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_optimizer_state_dict(model, optimizer, state if is_main_process() else {}, options=options)


# ---- gathering ---------------------------------------------------------------------------
@contextmanager
def full_parameters(model: Any) -> Iterator[None]:
    """Inside: an FSDP model holds its whole weights and its forward communicates nothing, so
    each rank can score its own share of the texts, however many batches that takes.

    Layer-by-layer gathering would need every rank to run the same number of forwards, and
    prediction batches texts by length, so the ranks' counts differ. Costs one whole copy of
    the weights per rank while inside (a model FSDP trains is a fraction of its training
    memory: no gradients, no optimizer moments). Without FSDP: nothing."""
    if not is_sharded(model):
        yield
        return
    units = [module for module in model.modules() if isinstance(module, FSDPModule)]
    for unit in units:  # the same order on every rank: each is one all-gather
        unit.unshard()
    model.set_reshard_after_forward(False)  # forwards find the weights whole and keep them
    try:
        yield
    finally:
        model.set_reshard_after_forward(True)
        for unit in units:
            unit.reshard()


def predict_sharded(predict: Callable[[list[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """`predict(texts)` with the texts spread over the ranks; rows back in input order.

    Rank r scores texts r, r + world, r + 2 * world ...; the pieces are gathered to every rank
    with `all_gather_object`, so each rank then holds the predictions for the whole list."""
    texts = list(texts)
    size = world_size()
    if size == 1:
        return predict(texts)
    mine = predict(texts[rank() :: size])
    pieces: list[Any] = [None] * size
    dist.all_gather_object(pieces, mine)
    out = np.empty((len(texts), *mine.shape[1:]), dtype=mine.dtype)
    for r, piece in enumerate(pieces):
        out[r::size] = piece
    return out


def sum_across_ranks(value: float) -> float:
    """The sum of a number over all ranks (the number itself with one process)."""
    if not is_distributed():
        return value
    total = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        total = total.cuda()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item())


def mean_across_ranks(value: float) -> float:
    return sum_across_ranks(value) / world_size()
