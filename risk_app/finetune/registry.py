"""Registry of fine-tuning methods, by name, and what a name resolves to.

A run names one method (`TrainConfig.method`). Two kinds of name live here:

* a **parameter method** (`lora`, `full`, `freeze` ...: *which* parameters train), a
  `FineTuneMethod` subclass its module decorates with `@register`;
* an **objective over a parameter method** (`rlhf`: *how* they train), registered by its
  objective module with `register_objective_method`; its typed Config names the parameter
  method (`policy_method`, `policy_params`) that prepares the weights.

`resolve_method(name, params)` turns either into a `MethodChoice`: the parameter method with
its parsed Config, the objective that trains it, and the parameters as the run gave them
(what records and artifacts keep). Everything that trains, saves or loads a model starts from
it; `get_method(name)` is the parameter method alone.

The built-in modules are listed in `BUILTIN_METHOD_MODULES` (methods) and
`BUILTIN_OBJECTIVE_METHODS` (objective methods); a lookup imports the module of that name on
first use (scoring loads only its model's method), `list_methods` and an unknown name import
them all. Dispatch is one dict lookup, so adding a method never touches an if/elif chain:
write `methods/<name>.py` and add its module name to the tuple below.

Import direction: this module imports no method or objective at load time. Those modules
import it (to register), and `objectives/rlhf.py` sits above the trainer's supervised loop;
importing them lazily, on first lookup, keeps the graph one-way (`artifact.BUILTIN_MODEL_KINDS`
does the same for model kinds). It is the only lookup of risk_app's own code by name in
`risk_app.finetune` besides the objective table (`objectives.base.OBJECTIVES`); the imports
left inside functions there are of optional third-party libraries (liger-kernel, trl,
datasets), each saying so (`tests/test_import_graph.py`).

    choice = resolve_method("rlhf", {"policy_params": {"r": 4}})
    choice.method.name, choice.objective, choice.params.policy_params["r"]   # 'lora', 'rlhf', 4
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from risk_app.config_errors import validated
from risk_app.errors import ConfigError
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.types import ObjectiveName, RunPlan

# Modules of `risk_app.finetune.methods` that register the built-in parameter methods.
BUILTIN_METHOD_MODULES = ("adapter", "freeze", "full", "lora", "prompt", "qlora", "quantum")
# Built-in objective methods: name -> the module of `risk_app.finetune.objectives` registering it.
BUILTIN_OBJECTIVE_METHODS = {"rlhf": "rlhf"}

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_METHODS: dict[str, type[FineTuneMethod]] = {}

M = TypeVar("M", bound="type[FineTuneMethod]")


class UnknownMethodError(ConfigError):
    """A method name that no module registered."""


class PolicyObjectiveConfig(Protocol):
    """The Config of an objective method: which parameter method its policy is, with what
    parameters, and for how many epochs that method is prepared (None = the run's)."""

    policy_method: str
    policy_params: dict[str, Any]

    def policy_epochs(self) -> int | None: ...


@dataclass(frozen=True)
class ObjectiveMethod:
    """A method name that is an objective over a parameter method (`rlhf`)."""

    name: str
    description: str
    Config: type[BaseModel]  # a PolicyObjectiveConfig, extra="forbid"
    objective: ObjectiveName
    # Quick parameters for the registry-driven CPU suite (tests/finetune/test_method_suite.py).
    suite_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodChoice:
    """What a method name and its parameters resolve to.

    `method` chooses which parameters train, with its parsed Config `method_cfg`; `objective`
    trains them. `name` and `params` are what the run asked for, validated (every key): for a
    parameter method they are that method's name and Config, for an objective method (`rlhf`)
    its own name and Config, which names the parameter method. `policy_epochs`: the epochs
    `method` is prepared for when they are not the run's (rlhf's supervised stage)."""

    name: str
    params: BaseModel
    method: FineTuneMethod
    method_cfg: BaseModel
    objective: ObjectiveName
    policy_epochs: int | None = None

    def plan_for_method(self, plan: RunPlan | None) -> RunPlan | None:
        """The plan `method.prepare` gets (AdaLoRA's schedule ends with the epochs it trains)."""
        if plan is None or self.policy_epochs is None:
            return plan
        return replace(plan, epochs=self.policy_epochs)

    def as_parameter_method(self) -> MethodChoice:
        """The parameter method on its own, trained by the supervised objective (rlhf's first stage)."""
        return MethodChoice(self.method.name, self.method_cfg, self.method, self.method_cfg, "supervised")


_OBJECTIVE_METHODS: dict[str, ObjectiveMethod] = {}


def _check_name(name: object, owner: str) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"{owner}: method name {name!r} must match {_NAME_PATTERN.pattern} "
            "(lower case letters, digits, underscores)"
        )
    return name


def _check_free(name: str, owner: object) -> None:
    existing: object = _METHODS.get(name) or _OBJECTIVE_METHODS.get(name)
    if existing is None or existing is owner:
        return
    where = (
        f"{existing.__module__}.{existing.__qualname__}"
        if isinstance(existing, type)
        else f"the objective method {name!r}"
    )
    raise ValueError(f"method name {name!r} is already registered by {where}")


def register(method_cls: M) -> M:
    """Class decorator: add a FineTuneMethod subclass under its `name`."""
    if not (isinstance(method_cls, type) and issubclass(method_cls, FineTuneMethod)):
        raise TypeError(f"{method_cls!r} is not a FineTuneMethod subclass")
    name = _check_name(getattr(method_cls, "name", None), method_cls.__qualname__)
    if not isinstance(getattr(method_cls, "description", None), str):
        raise ValueError(f"{method_cls.__qualname__}: method {name!r} needs a `description` string")
    _check_free(name, method_cls)
    _METHODS[name] = method_cls
    return method_cls


def register_objective_method(entry: ObjectiveMethod) -> ObjectiveMethod:
    """Add an objective method under its `name` (its objective module calls this on import)."""
    _check_name(entry.name, "ObjectiveMethod")
    existing = _OBJECTIVE_METHODS.get(entry.name)
    _check_free(entry.name, existing if existing == entry else entry)
    _OBJECTIVE_METHODS[entry.name] = entry
    return entry


# Built-in methods whose module could not be imported, and the package it was missing.
_UNAVAILABLE: dict[str, str] = {}


def _import_builtin(name: str) -> None:
    """Import the module that registers built-in `name` (deferred: those modules import this one)."""
    if name in BUILTIN_OBJECTIVE_METHODS:
        importlib.import_module(f"risk_app.finetune.objectives.{BUILTIN_OBJECTIVE_METHODS[name]}")
        return
    try:
        importlib.import_module(f"risk_app.finetune.methods.{name}")
    except ModuleNotFoundError as exc:
        # A method's own library missing (pennylane for `quantum`, say, on a bare GPU
        # image) must not take the other methods down with it; our own code missing must.
        if not exc.name or exc.name.split(".")[0] == "risk_app":
            raise
        _UNAVAILABLE[name] = exc.name


def _load_builtin_methods() -> None:
    for name in (*BUILTIN_METHOD_MODULES, *BUILTIN_OBJECTIVE_METHODS):
        _import_builtin(name)


def _ensure_registered(name: str) -> None:
    # Only the module of the name asked for: scoring needs only its model's own method, and
    # importing every built-in (pennylane for `quantum`, bitsandbytes for `qlora`) cost a
    # scoring command about 10 s of CPU at start.
    known = name in _METHODS or name in _OBJECTIVE_METHODS or name in _UNAVAILABLE
    builtin = name in BUILTIN_METHOD_MODULES or name in BUILTIN_OBJECTIVE_METHODS
    if builtin and not known:
        _import_builtin(name)
    if name not in _METHODS and name not in _OBJECTIVE_METHODS and name not in _UNAVAILABLE:
        _load_builtin_methods()  # an unknown name: the error lists every registered method


def _unknown(name: str) -> UnknownMethodError:
    if name in _UNAVAILABLE:
        return UnknownMethodError(
            f"fine-tuning method {name!r} needs the package {_UNAVAILABLE[name]!r}, which is not "
            "installed here (bash scripts/setup.sh installs it)"
        )
    known = ", ".join(sorted([*_METHODS, *_OBJECTIVE_METHODS])) or "<none>"
    return UnknownMethodError(f"unknown fine-tuning method {name!r}; registered methods: {known}")


def get_method(name: str) -> FineTuneMethod:
    """A fresh instance of the parameter method registered under `name`."""
    _ensure_registered(name)
    if name in _OBJECTIVE_METHODS:
        raise UnknownMethodError(
            f"{name!r} is an objective over a parameter method, not a parameter method; "
            f"choose one of: {', '.join(parameter_method_names())}"
        )
    try:
        return _METHODS[name]()
    except KeyError:
        raise _unknown(name) from None


def objective_method(name: str) -> ObjectiveMethod | None:
    """The objective method registered under `name`, or None when `name` is a parameter method."""
    _ensure_registered(name)
    return _OBJECTIVE_METHODS.get(name)


def method_config_class(name: str) -> type[BaseModel]:
    """The Config class that checks the parameters of method `name` (either kind)."""
    entry = objective_method(name)
    return entry.Config if entry is not None else get_method(name).Config


def suite_params(name: str) -> dict[str, Any]:
    """Quick parameters of method `name` for the CPU test suite."""
    entry = objective_method(name)
    return dict(entry.suite_params if entry is not None else get_method(name).suite_params)


def resolve_method(name: str, params: Mapping[str, Any] | BaseModel | None = None) -> MethodChoice:
    """The parameter method, its Config and the objective that method name `name` with `params`
    stands for; one `ConfigError` sentence when a name or a parameter is wrong."""
    entry = objective_method(name)
    if entry is None:
        method = get_method(name)
        cfg = method.parse_config(params)
        return MethodChoice(name, cfg, method, cfg, method.objective_for(cfg))
    if isinstance(params, entry.Config):
        cfg: Any = params
    else:
        values = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
        cfg = validated(entry.Config, values, f"method {name!r} parameters")
    policy = _policy_method(name, cfg.policy_method)
    try:
        policy_cfg = policy.parse_config(cfg.policy_params)
    except ConfigError as exc:
        raise ConfigError(f"method {name!r}: policy_params for policy_method {policy.name!r}: {exc}") from exc
    # The stored config carries the policy's parameters in full (defaults included).
    cfg = cfg.model_copy(update={"policy_params": policy_cfg.model_dump(mode="json")})
    return MethodChoice(name, cfg, policy, policy_cfg, entry.objective, cfg.policy_epochs())


def _policy_method(name: str, policy_name: str) -> FineTuneMethod:
    allowed = ", ".join(parameter_method_names())
    if objective_method(policy_name) is not None:
        raise ConfigError(
            f"method {name!r}: policy_method {policy_name!r} is itself an objective, not a way of "
            f"choosing parameters; choose one of: {allowed}"
        )
    try:
        return get_method(policy_name)
    except UnknownMethodError:
        raise ConfigError(
            f"method {name!r}: unknown policy_method {policy_name!r}; choose one of: {allowed}"
        ) from None


def parameter_method_names() -> list[str]:
    """Every registered parameter method, sorted (what an objective method's policy may be)."""
    _load_builtin_methods()
    return sorted(_METHODS)


def list_methods() -> list[tuple[str, str]]:
    """(name, description) of every registered method of either kind, sorted by name."""
    _load_builtin_methods()
    described = {name: cls.description for name, cls in _METHODS.items()}
    described |= {name: entry.description for name, entry in _OBJECTIVE_METHODS.items()}
    return sorted(described.items())


def unregister(name: str) -> None:
    """Remove a method (tests register throwaway methods and clean up after)."""
    _METHODS.pop(name, None)
    _OBJECTIVE_METHODS.pop(name, None)
