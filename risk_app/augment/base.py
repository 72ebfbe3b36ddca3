"""What an augmenter is, and the registry that finds one by name.

An augmented copy of a training application is built in three stages, and each augmenter
works at exactly one of them:

1. ``row``: the structured application (a dict of the data set's columns), before any text exists;
   e.g. `number_perturbation` nudges amounts there, so the text stays a faithful rendering.
2. ``layout``: how the row will be serialized (the clause order); e.g. `clause_shuffle`.
3. ``text``: the serialized string; e.g. `financial_synonyms`, `char_noise` (nlpaug).

Every augmenter is a small class with a `name`, a `stage` and `apply(sample, rng)`, registered
with `@register_augmenter`. The pipeline looks classes up in `AUGMENTERS` by name: adding an
augmenter means one module and one import line in `risk_app/augment/__init__.py`.

nlpaug draws from Python's global `random` and NumPy's global generator; `seeded_global_rngs`
seeds both for one call and restores them after, so augmentation is reproducible under a seed
and leaves the caller's random streams untouched. (Not thread-safe: run one augmentation per
process at a time, which is how Dagster runs assets.)
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import ConfigError

if TYPE_CHECKING:
    from risk_app.augment.config import AugmentConfig

Stage = Literal["row", "layout", "text"]
STAGE_ORDER: tuple[Stage, ...] = ("row", "layout", "text")


@dataclass(frozen=True)
class AugmentSample:
    """One copy on its way through the stages.

    `row` holds the structured fields, `field_order` the clause order to serialize with, and
    `text` is None until the pipeline serializes the (possibly changed) row after the layout
    stage.
    """

    row: dict[str, Any]
    field_order: tuple[str, ...]
    text: str | None = None
    # Per-augmenter detail for metadata/tests, e.g. {"credit_amount": (1169, 1241)}.
    notes: dict[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> AugmentSample:
        return replace(self, **changes)


class Augmenter(ABC):
    """Base class: a named transformation at one stage, configured from an `AugmentConfig` for
    one data set (`spec`; default german_credit)."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    description: ClassVar[str]

    def __init__(self, config: AugmentConfig, spec: DatasetSpec | None = None) -> None:
        self.config = config
        self.spec = load_spec(spec)

    @abstractmethod
    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        """Return the changed sample; `rng` is this copy's own seeded generator."""


AUGMENTERS: dict[str, type[Augmenter]] = {}


def register_augmenter(cls: type[Augmenter]) -> type[Augmenter]:
    """Class decorator: add `cls` to `AUGMENTERS` under `cls.name` (unique, snake_case)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ConfigError(f"augmenter class {cls.__name__} needs a snake_case `name`, got {name!r}")
    if getattr(cls, "stage", None) not in STAGE_ORDER:
        raise ConfigError(f"augmenter {name!r}: stage must be one of {list(STAGE_ORDER)}")
    if name in AUGMENTERS and AUGMENTERS[name] is not cls:
        raise ConfigError(f"augmenter name {name!r} is already registered by {AUGMENTERS[name].__name__}")
    AUGMENTERS[name] = cls
    return cls


def list_augmenters() -> list[str]:
    """Registered augmenter names, sorted."""
    return sorted(AUGMENTERS)


def get_augmenter(name: str) -> type[Augmenter]:
    """The augmenter class registered as `name`; unknown names list the allowed ones."""
    try:
        return AUGMENTERS[name]
    except KeyError:
        raise ConfigError(f"unknown augmenter {name!r}; allowed: {', '.join(list_augmenters())}") from None


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from any parts (run seed, application id, copy number).

    Each copy gets its own seed, so a copy does not change when other rows are added, removed
    or reordered. `hash()` is salted per process, hence SHA-256.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed `random` and `numpy.random` (which nlpaug uses) for the block, then restore them."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


__all__ = [
    "AUGMENTERS",
    "STAGE_ORDER",
    "AugmentSample",
    "Augmenter",
    "Stage",
    "derive_seed",
    "get_augmenter",
    "list_augmenters",
    "register_augmenter",
    "seeded_global_rngs",
]
