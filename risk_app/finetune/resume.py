"""Resume a killed training run from its last epoch checkpoint, to the same result.

Each epoch's checkpoint folder (`epoch-N/`, written atomically) holds the method's trained
tensors (`state.safetensors`), the epoch's metrics and `trainer_state.pt`: the optimizer and
scheduler state, the data-order generator, every RNG, the history so far and the best epoch.
`with resuming(): train_classifier(...)` makes the supervised loop restore the newest complete
checkpoint and continue with the next epoch, so a run killed after epoch k ends with the same
weights and history as one that was never interrupted.

`trainer_state.pt` holds only tensors, numbers, strings and lists, and is read with
`torch.load(weights_only=True)`: loading a checkpoint never runs code.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from risk_app.finetune import distributed

TRAINER_STATE = "trainer_state.pt"
STATE_FILE = "state.safetensors"
_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
_RESUMING: ContextVar[bool] = ContextVar("resuming", default=False)


@contextmanager
def resuming() -> Iterator[None]:
    """Training inside this block continues from the newest complete checkpoint, if any."""
    token = _RESUMING.set(True)
    try:
        yield
    finally:
        _RESUMING.reset(token)


def is_resuming() -> bool:
    return _RESUMING.get()


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [
            kind,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "python": [int(version), list(internal), gauss],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def trainer_state_bytes(run: Any, best: Any, history: list[dict[str, float]]) -> bytes:
    """Everything besides the weights that the next epoch depends on, serialized."""
    state = {
        "optimizer": distributed.optimizer_state(run.model, run.optimizer),  # FSDP: gathered whole
        "scheduler": run.scheduler.state_dict(),
        "shuffler": run.shuffler.get_state(),
        "rng": _rng_state(),
        "counters": [run.global_step, run.train_tokens, float(run.train_seconds)],
        "history": history,
        "best": {
            "auc": float(best.auc),
            "epoch": int(best.epoch),
            "epochs_without_gain": int(best.epochs_without_gain),
            "proba": torch.from_numpy(np.asarray(best.proba, dtype=np.float64))
            if best.proba is not None
            else None,
        },
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def latest_checkpoint(checkpoint_dir: str | Path | None) -> tuple[int, Path] | None:
    """(epoch, folder) of the newest checkpoint that is complete (has its trainer state)."""
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    found = []
    for child in Path(checkpoint_dir).iterdir():
        match = _EPOCH_DIR.match(child.name)
        if match and (child / TRAINER_STATE).is_file() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return max(found) if found else None


def restore(run: Any, best: Any, checkpoint_dir: str | Path) -> tuple[int, list[dict[str, float]]]:
    """Load the newest checkpoint into `run` and `best`; (last finished epoch, history)."""
    latest = latest_checkpoint(checkpoint_dir)
    if latest is None:
        return 0, []
    epoch, folder = latest
    state = torch.load(folder / TRAINER_STATE, weights_only=True)
    distributed.load_state(run.method, run.model, load_file(str(folder / STATE_FILE)), run.cfg)
    distributed.load_optimizer_state(run.model, run.optimizer, state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.shuffler.set_state(state["shuffler"])
    _set_rng_state(state["rng"])
    run.global_step, run.train_tokens, run.train_seconds = state["counters"]
    saved = state["best"]
    best.auc, best.epoch, best.epochs_without_gain = (
        saved["auc"],
        saved["epoch"],
        saved["epochs_without_gain"],
    )
    best.proba = saved["proba"].numpy() if saved["proba"] is not None else None
    if best.epoch:
        best.state = load_file(str(Path(checkpoint_dir) / f"epoch-{best.epoch}" / STATE_FILE))
    return epoch, list(state["history"])
