"""What crosses the wire: the method's trainable tensors, in a fixed order, checked on arrival.

A lender sends exactly the tensors its fine-tuning method trains (`method.trainable_parameters`:
LoRA's adapters and the copy of the `score` head peft trains; for a head on frozen features, the
head), as float32 numpy arrays in the model's own parameter order. Nothing else of the model
(frozen base weights), and nothing of the data, is ever turned into an array here.

`TensorTemplate` is the consortium's contract for those arrays: names, shapes, dtype. Both sides
build it from the same base model and method config, so an update that does not match it (wrong
count, shape, dtype, or a NaN/inf) is refused by `check_update` with a sentence naming the
tensor, before anything is averaged in.

    template = TensorTemplate.of(method, model)
    arrays = template.arrays(model)            # what a lender sends
    template.check_update(arrays, "lender 3")  # what the server does first
    template.load(model, arrays)               # what a lender does with the global weights
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from risk_app.errors import RiskAppError
from risk_app.finetune.methods.base import FineTuneMethod

WIRE_DTYPE = np.float32


class MalformedUpdateError(RiskAppError):
    """An update whose arrays do not match the consortium's tensor template."""


@dataclass(frozen=True)
class TensorTemplate:
    """Names and shapes of the trainable tensors, in the order they travel."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, method: FineTuneMethod, model: Any) -> TensorTemplate:
        named = method.trainable_parameters(model)
        if not named:
            raise RiskAppError(f"method {method.name!r} leaves no trainable tensor to federate")
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def signature(self) -> str:
        """A short hash of names and shapes: equal on two sides iff the templates are equal."""
        payload = json.dumps([self.names, self.shapes], separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def n_values(self) -> int:
        return int(sum(int(np.prod(shape)) for shape in self.shapes))

    @property
    def wire_bytes(self) -> int:
        """Bytes of one update's raw values (the message adds a little framing)."""
        return self.n_values * np.dtype(WIRE_DTYPE).itemsize

    def arrays(self, model: Any) -> list[np.ndarray]:
        """The model's trainable tensors as float32 arrays, in template order."""
        params = dict(model.named_parameters())
        return [params[name].detach().to("cpu", torch.float32).numpy().copy() for name in self.names]

    def load(self, model: Any, arrays: Sequence[np.ndarray], source: str = "global weights") -> None:
        """Copy `arrays` into the model's trainable tensors (checked first; any float dtype is cast)."""
        self.check_update(arrays, source, exact_dtype=False)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, array in zip(self.names, arrays, strict=True):
                target = params[name]
                target.copy_(torch.from_numpy(np.asarray(array)).to(device=target.device, dtype=target.dtype))

    def check_update(self, arrays: Sequence[Any], source: str, *, exact_dtype: bool = True) -> None:
        """Refuse arrays that do not fit: count, type, shape, dtype and finiteness, each named.

        `exact_dtype=False` accepts any floating dtype (the server's aggregate after DP noise or
        SecAgg+ dequantization is float64; it is cast on loading)."""
        if len(arrays) != len(self.names):
            raise MalformedUpdateError(
                f"{source}: update has {len(arrays)} tensors, the consortium's model has {len(self.names)}"
            )
        for name, shape, array in zip(self.names, self.shapes, arrays, strict=True):
            if not isinstance(array, np.ndarray):
                raise MalformedUpdateError(
                    f"{source}: tensor {name!r} is a {type(array).__name__}, not an array"
                )
            if tuple(array.shape) != shape:
                raise MalformedUpdateError(
                    f"{source}: tensor {name!r} has shape {tuple(array.shape)}, the consortium's is {shape}"
                )
            if array.dtype != WIRE_DTYPE and (exact_dtype or not np.issubdtype(array.dtype, np.floating)):
                raise MalformedUpdateError(
                    f"{source}: tensor {name!r} is {array.dtype}, the consortium sends {np.dtype(WIRE_DTYPE)}"
                )
            if not np.isfinite(array).all():
                raise MalformedUpdateError(f"{source}: tensor {name!r} holds NaN or infinite values")
