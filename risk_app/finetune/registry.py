"""Registry of fine-tuning methods, by name.

Each method module decorates its class with `@register`; `methods/__init__.py` imports every
module so they all register on first lookup. Dispatch is one dict lookup, so adding a method
never touches an if/elif chain.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

from risk_app.errors import ConfigError

if TYPE_CHECKING:
    # Not imported at run time: importing the methods package runs the method modules,
    # which import this module to register themselves.
    from risk_app.finetune.methods.base import FineTuneMethod

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_METHODS: dict[str, type[FineTuneMethod]] = {}

M = TypeVar("M", bound="type[FineTuneMethod]")


class UnknownMethodError(ConfigError):
    """A method name that no module registered."""


def register(method_cls: M) -> M:
    """Class decorator: add a FineTuneMethod subclass under its `name`."""
    from risk_app.finetune.methods.base import FineTuneMethod

    if not (isinstance(method_cls, type) and issubclass(method_cls, FineTuneMethod)):
        raise TypeError(f"{method_cls!r} is not a FineTuneMethod subclass")
    name = getattr(method_cls, "name", None)
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"{method_cls.__qualname__}: method name {name!r} must match {_NAME_PATTERN.pattern} "
            "(lower case letters, digits, underscores)"
        )
    if not isinstance(getattr(method_cls, "description", None), str):
        raise ValueError(f"{method_cls.__qualname__}: method {name!r} needs a `description` string")
    existing = _METHODS.get(name)
    if existing is not None and existing is not method_cls:
        raise ValueError(
            f"method name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
        )
    _METHODS[name] = method_cls
    return method_cls


def _load_builtin_methods() -> None:
    # Imported here, not at module top, because the method modules import this one.
    import risk_app.finetune.methods  # noqa: F401


def get_method(name: str) -> FineTuneMethod:
    """A fresh instance of the method registered under `name`."""
    _load_builtin_methods()
    try:
        method_cls = _METHODS[name]
    except KeyError:
        known = ", ".join(sorted(_METHODS)) or "<none>"
        raise UnknownMethodError(
            f"unknown fine-tuning method {name!r}; registered methods: {known}"
        ) from None
    return method_cls()


def list_methods() -> list[tuple[str, str]]:
    """(name, description) of every registered method, sorted by name."""
    _load_builtin_methods()
    return [(name, _METHODS[name].description) for name in sorted(_METHODS)]


def unregister(name: str) -> None:
    """Remove a method (tests register throwaway methods and clean up after)."""
    _METHODS.pop(name, None)
