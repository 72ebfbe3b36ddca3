"""Training across processes: the process group, rank helpers, sharding, gathering, wrapping.

`risk-app train --nproc N` (see `risk_app.run.launch`) starts N copies of the fine-tune stage
under `torchrun`; each copy runs the ordinary supervised loop, which asks this module six
things and is otherwise unchanged:

* `shard(batch)` — this rank's slice of a global batch. Every rank draws the same seeded
  global order, so the effective batch and the number of optimizer steps are those of the
  single-process run; only the examples each process computes differ;
* `wrap_model(model)` — the module the training forward goes through:
  `DistributedDataParallel`, which averages the gradients over ranks during backward;
* `predict_sharded(predict, texts)` — each rank scores its share of a list of texts and the
  logits are gathered back into input order, so the validation AUC is computed on the whole
  validation set (an average of per-rank AUCs would not be the AUC of anything);
* `global_batch_loss(loss_fn, labels)` — each rank's share of the global batch's weighted mean
  loss, so that DDP's average of the ranks' gradients is the single-process gradient;
* `mean_across_ranks` / `sum_across_ranks` — the epoch's loss and token count over all ranks;
* `is_main_process()` — only rank 0 writes checkpoints, the artifact and the record.

With one process (no process group) every helper is the identity, so the single-process path
costs nothing and stays bit-for-bit what it was.

Why DDP for every method, including `full`: FSDP2 (`fully_shard`) does run on gloo, but its
parameters become sharded DTensors, and the loop's saved state, best-epoch copy, resume and the
rank-0-only prediction of the test split all expect plain tensors. Until that is built, `full`
runs under DDP (a full replica per rank, which is fine for any model that fits one device) and
`launch_facts()` says so in the run folder and the logs.

    with process_group("auto") as facts:      # under torchrun
        ...train...
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist

Backend = Literal["gloo", "nccl"]
Strategy = Literal["single", "ddp", "fsdp"]

FSDP_NOT_BUILT = (
    "FSDP for full fine-tuning is not built yet (its sharded DTensor parameters need gathered "
    "saves, best-epoch copies and resume); ran DDP with a full model replica per rank"
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


def rank_device(device: str) -> str:
    """The `TrainConfig.device` this rank trains on: its own GPU under NCCL, else unchanged."""
    if is_distributed() and dist.get_backend() == "nccl":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def choose_strategy(method_name: str) -> tuple[Strategy, str]:
    """(strategy, why): DDP, which for a frozen base synchronizes only the few trainable
    tensors; `full` also runs DDP until FSDP is built, and the reason says so."""
    if not is_distributed():
        return "single", ""
    return "ddp", FSDP_NOT_BUILT if method_name == "full" else ""


def launch_facts(method_name: str) -> LaunchFacts:
    strategy, note = choose_strategy(method_name)
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


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module the training forward goes through: the model itself, or its DDP wrapper.

    The wrapper shares the model's parameters, so the optimizer, the method's saved state and
    prediction keep using the plain model and its parameter names."""
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    # Every method's trainable tensors take part in every forward (tried with 2 gloo ranks for
    # each method, LoRA's DoRA and AdaLoRA variants included), so DDP need not search the graph
    # for unused ones each step.
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


# ---- gathering ---------------------------------------------------------------------------
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


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's `value` on every rank (e.g. a run id only rank 0 drew)."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
