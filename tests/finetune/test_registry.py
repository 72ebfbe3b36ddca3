"""Method registry and config validation: names, duplicates, unknown methods and keys."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.methods.lora import LoraMethod
from risk_app.finetune.registry import (
    UnknownMethodError,
    get_method,
    list_methods,
    objective_method,
    register,
    resolve_method,
    unregister,
)


def _method_class(method_name: str) -> type[FineTuneMethod]:
    class Dummy(FineTuneMethod):
        name = method_name
        description = "test only"

        class Config(BaseModel):
            model_config = ConfigDict(extra="forbid")
            k: int = Field(default=1, ge=0, description="a knob")

        def prepare(self, model, cfg):  # noqa: ANN001, ANN201
            return model

    return Dummy


def test_lora_is_registered_and_listed() -> None:
    names = dict(list_methods())
    assert "lora" in names and names["lora"]
    first, second = get_method("lora"), get_method("lora")
    assert isinstance(first, LoraMethod) and first is not second  # fresh instance per call


def test_register_then_dispatch_by_name() -> None:
    cls = register(_method_class("dummy_for_test"))
    try:
        assert isinstance(get_method("dummy_for_test"), cls)
        assert ("dummy_for_test", "test only") in list_methods()
        assert get_method("dummy_for_test").parse_config({"k": 3}).k == 3
    finally:
        unregister("dummy_for_test")


def test_duplicate_name_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(_method_class("lora"))


@pytest.mark.parametrize("bad", ["Lora", "2lora", "lo-ra", "", "lora method"])
def test_malformed_name_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        register(_method_class(bad))


def test_non_method_class_rejected() -> None:
    with pytest.raises(TypeError):
        register(dict)  # type: ignore[arg-type]


def test_unknown_method_lists_registered_names() -> None:
    with pytest.raises(UnknownMethodError, match=r"unknown fine-tuning method 'nope'.*lora"):
        get_method("nope")
    assert issubclass(UnknownMethodError, ConfigError)


def test_method_config_errors_name_key_and_allowed_keys() -> None:
    method = get_method("lora")
    with pytest.raises(ConfigError) as info:
        method.parse_config({"rank": 4})
    message = str(info.value)
    assert "unknown key 'rank'" in message
    assert "Allowed keys:" in message and "r: int = 8" in message and "target_modules" in message


def test_train_config_validation() -> None:
    assert TrainConfig().method == "lora"
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'.*Allowed keys: method"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="'learning_rate'"):
        TrainConfig.from_dict({"learning_rate": -1})
    with pytest.raises(ConfigError, match="device must be"):
        TrainConfig.from_dict({"device": "tpu"})
    with pytest.raises(ConfigError, match="'precision'"):
        TrainConfig.from_dict({"precision": "int8"})


def test_rlhf_is_an_objective_method_not_a_parameter_method() -> None:
    # `rlhf` is listed and chosen like any method, but it resolves to its policy method and the
    # rlhf objective; no method object of its own forwards the parameter hooks.
    assert "rlhf" in dict(list_methods())
    assert objective_method("rlhf") is not None and objective_method("lora") is None
    with pytest.raises(UnknownMethodError, match="'rlhf' is an objective over a parameter method"):
        get_method("rlhf")
    choice = resolve_method("rlhf", {"policy_method": "full"})
    assert (choice.name, choice.method.name, choice.objective) == ("rlhf", "full", "rlhf")
    plain = resolve_method("lora", {"r": 4})
    assert (plain.name, plain.method.name, plain.objective) == ("lora", "lora", "supervised")
    assert plain.params is plain.method_cfg


def test_a_parameter_method_cannot_take_an_objective_methods_name() -> None:
    objective_method("rlhf")  # registered
    with pytest.raises(ValueError, match="already registered by the objective method 'rlhf'"):
        register(_method_class("rlhf"))
