"""A config refused in one line: each bad key and why, then the keys the config accepts.

Every typed config (`TrainConfig`, a method's `Config`, `AugmentConfig`, `HybridConfig`, the
CLI's `--set` / `--param` / `--policy` values) is validated through `validated`, so a typo
reads the same wherever it is made:

    validated(TrainConfig, {"epoch": 3}, "training config")
    # ConfigError: training config: unknown key 'epoch'. Allowed keys: method: str = 'lora', ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from risk_app.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def validated(model_cls: type[M], values: Mapping[str, Any], what: str) -> M:
    """`values` as a `model_cls`, or a `ConfigError` "<what>: <problems>. Allowed keys: ..."."""
    try:
        return model_cls.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(f"{what}: {format_validation_error(exc, model_cls)}") from exc


def format_validation_error(exc: ValidationError, model_cls: type[BaseModel]) -> str:
    """One line naming each bad key and why, followed by the keys the model accepts."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "<config>"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}")
        else:
            problems.append(f"{key!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(problems) + f". Allowed keys: {describe_fields(model_cls)}"


def describe_fields(model_cls: type[BaseModel], prefix: str = "") -> str:
    """`name: type = default` for every field of a pydantic model, comma separated.

    A nested config (e.g. `rlhf`'s `reward` and `ppo`) is listed field by field under dotted
    names (`reward.epochs: int = 1`), the way its keys appear in error messages.
    """
    parts = []
    for name, field in model_cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parts.append(describe_fields(annotation, f"{prefix}{name}."))
            continue
        # Plain classes print as their name; generics (list[str], Literal[...]) in full.
        if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
            type_name = annotation.__name__
        else:
            type_name = str(annotation).replace("typing.", "")
        default = "<required>" if field.is_required() else repr(field.get_default(call_default_factory=True))
        parts.append(f"{prefix}{name}: {type_name} = {default}")
    return ", ".join(parts)


__all__ = ["describe_fields", "format_validation_error", "validated"]
