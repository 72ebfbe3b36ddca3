"""`--set key=value` pairs: JSON values, lists, and dotted keys into nested configs."""

from __future__ import annotations

import pytest

from risk_app.cli.common import parse_config, parse_params
from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig


def test_dotted_keys_reach_nested_configs() -> None:
    params = parse_params(["epochs=2", "speed.token_budget=16384", "speed.fused_adamw=off"], None)
    config = parse_config(TrainConfig, params)
    assert config.epochs == 2
    assert config.speed.token_budget == 16384 and config.speed.fused_adamw == "off"


def test_an_unknown_nested_key_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="turbo"):
        parse_config(TrainConfig, parse_params(["speed.turbo=1"], None))


def test_a_dotted_key_under_a_plain_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a nested setting"):
        parse_params(["epochs=2", "epochs.x=1"], None)
