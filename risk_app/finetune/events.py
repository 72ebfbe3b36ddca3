"""Training events: who wants to hear about each finished epoch (and, within long epochs,
every `speed.log_every` optimizer steps) while a model trains.

Objectives call `epoch_ended(record)` after each epoch (the same dict that goes into the
history); a caller listens with `on_epoch_end(listener)` around `train_classifier`. A context
variable, not a parameter threaded through every objective, so an objective that nests another
(RLHF runs the supervised loop first) reports its epochs without knowing who listens.

    with on_epoch_end(lambda record: print(record["epoch"], record["val_auc"])):
        train_classifier(...)

`on_steps_logged(listener)` likewise hears `{"epoch", "step", "steps_per_epoch", "train_loss"}`
whenever the supervised loop reads the loss back (every `speed.log_every` optimizer steps and at
an epoch's last step), so a caller shows progress inside an epoch of many minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_log = logging.getLogger(__name__)
EpochListener = Callable[[Mapping[str, Any]], None]

_LISTENERS: ContextVar[tuple[EpochListener, ...]] = ContextVar("epoch_listeners", default=())
_STEP_LISTENERS: ContextVar[tuple[EpochListener, ...]] = ContextVar("step_listeners", default=())


@contextmanager
def on_epoch_end(listener: EpochListener) -> Iterator[None]:
    """Call `listener(record)` after every epoch trained inside this block."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def epoch_ended(record: Mapping[str, Any]) -> None:
    """Tell every listener an epoch finished; a listener's failure does not stop training."""
    for listener in _LISTENERS.get():
        try:
            listener(record)
        except Exception as exc:  # noqa: BLE001 - tracking is not worth a lost training run
            _log.warning("epoch listener %r failed: %s", listener, exc)


@contextmanager
def on_steps_logged(listener: EpochListener) -> Iterator[None]:
    """Call `listener(record)` each time the training loop reads its loss back, inside this block."""
    token = _STEP_LISTENERS.set((*_STEP_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _STEP_LISTENERS.reset(token)


def steps_logged(record: Mapping[str, Any]) -> None:
    """Tell every step listener where training is; a listener's failure does not stop training."""
    for listener in _STEP_LISTENERS.get():
        try:
            listener(record)
        except Exception as exc:  # noqa: BLE001 - progress is not worth a lost training run
            _log.warning("step listener %r failed: %s", listener, exc)
