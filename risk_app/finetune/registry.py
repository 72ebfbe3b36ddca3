"""Registry of fine-tuning methods, by name.

Each method module decorates its class with `@register`. The built-in modules are listed in
`BUILTIN_METHOD_MODULES`; `get_method(name)` imports the module of that name on first use
(scoring loads only its model's method), `list_methods` and an unknown name import them all.
Dispatch is one dict lookup, so adding a method never touches an if/elif chain: write
`methods/<name>.py` and add its module name to the tuple below.

Import direction: this module imports no method at load time. The method modules import it
(to call `register`), and `methods/rlhf.py` sits above the trainer (it runs the RLHF
objective, which runs the supervised loop), while the trainer resolves methods through
`get_method`. Importing the method modules lazily, on first lookup, is what keeps that a
one-way graph (`artifact.BUILTIN_MODEL_KINDS` does the same for model kinds). It is the only
lookup of risk_app's own code by name in `risk_app.finetune`; the imports left inside functions
there are of optional third-party libraries (liger-kernel, trl, datasets), each saying so
(`tests/test_import_graph.py`).
"""

from __future__ import annotations

import importlib
import re
from typing import TypeVar

from risk_app.errors import ConfigError
from risk_app.finetune.methods.base import FineTuneMethod

# Modules of `risk_app.finetune.methods` that register the built-in methods.
BUILTIN_METHOD_MODULES = ("adapter", "freeze", "full", "lora", "prompt", "qlora", "quantum", "rlhf")

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_METHODS: dict[str, type[FineTuneMethod]] = {}

M = TypeVar("M", bound="type[FineTuneMethod]")


class UnknownMethodError(ConfigError):
    """A method name that no module registered."""


def register(method_cls: M) -> M:
    """Class decorator: add a FineTuneMethod subclass under its `name`."""
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


# Built-in methods whose module could not be imported, and the package it was missing.
_UNAVAILABLE: dict[str, str] = {}


def _import_builtin(module: str) -> None:
    """Import one built-in method module (deferred: the method modules import this one)."""
    try:
        importlib.import_module(f"risk_app.finetune.methods.{module}")
    except ModuleNotFoundError as exc:
        # A method's own library missing (pennylane for `quantum`, say, on a bare GPU
        # image) must not take the other methods down with it; our own code missing must.
        if not exc.name or exc.name.split(".")[0] == "risk_app":
            raise
        _UNAVAILABLE[module] = exc.name


def _load_builtin_methods() -> None:
    for module in BUILTIN_METHOD_MODULES:
        _import_builtin(module)


def get_method(name: str) -> FineTuneMethod:
    """A fresh instance of the method registered under `name`."""
    # Only the module of the name asked for: scoring needs only its model's own method, and
    # importing every built-in (pennylane for `quantum`, bitsandbytes for `qlora`) cost a
    # scoring command about 10 s of CPU at start.
    if name in BUILTIN_METHOD_MODULES and name not in _METHODS and name not in _UNAVAILABLE:
        _import_builtin(name)
    if name not in _METHODS and name not in _UNAVAILABLE:
        _load_builtin_methods()  # an unknown name: the error lists every registered method
    try:
        method_cls = _METHODS[name]
    except KeyError:
        if name in _UNAVAILABLE:
            raise UnknownMethodError(
                f"fine-tuning method {name!r} needs the package {_UNAVAILABLE[name]!r}, which is not "
                "installed here (bash scripts/setup.sh installs it)"
            ) from None
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
