"""AugmentConfig validation and the augmenter registry."""

from __future__ import annotations

import random

import pytest

from risk_app.augment import AUGMENTERS, AugmentConfig, get_augmenter, list_augmenters
from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter
from risk_app.errors import ConfigError

BUILT_IN = ["char_noise", "clause_shuffle", "financial_synonyms", "number_perturbation"]


def test_registry_holds_the_four_augmenters() -> None:
    assert list_augmenters() == BUILT_IN
    for name in BUILT_IN:
        cls = get_augmenter(name)
        assert cls.name == name and cls.stage in ("row", "layout", "text") and cls.description


def test_defaults_are_valid_and_leave_char_noise_off() -> None:
    config = AugmentConfig()
    assert config.enabled is False
    assert "char_noise" not in config.augmenters
    assert config.copies_per_row == 1 and config.ratio == 1.0 and config.number_scale == 0.1
    # Every field carries help text (shown in the Dagster launchpad).
    assert all(field.description for field in AugmentConfig.model_fields.values())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"augmenters": ["financial_synonyms", "back_translation"]},
            "unknown augmenter(s) ['back_translation']",
        ),
        ({"copies_per_row": -1}, "'copies_per_row': Input should be greater than or equal to 0"),
        ({"number_scale": 0.6}, "'number_scale': Input should be less than or equal to 0.5"),
        ({"ratio": 1.5}, "'ratio'"),
        ({"augmentors": ["clause_shuffle"]}, "unknown key 'augmentors'"),
        ({"augmenters": ["clause_shuffle", "clause_shuffle"]}, "listed twice"),
        ({"enabled": True, "augmenters": []}, "no augmenters are listed"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_message(values: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        AugmentConfig.from_dict(values)
    message = str(excinfo.value)
    assert message.startswith("augmentation config: ")
    assert expected in message


def test_unknown_augmenter_message_lists_the_allowed_names() -> None:
    with pytest.raises(ConfigError, match="allowed: char_noise, clause_shuffle, financial_synonyms"):
        AugmentConfig.from_dict({"augmenters": ["synonyms"]})
    with pytest.raises(ConfigError, match="unknown augmenter 'synonyms'; allowed: char_noise"):
        get_augmenter("synonyms")


def test_registry_refuses_a_second_class_under_a_taken_name() -> None:
    class Impostor(Augmenter):
        name = "clause_shuffle"
        stage = "layout"
        description = "not the real one"

        def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
            return sample

    with pytest.raises(ConfigError, match="already registered"):
        register_augmenter(Impostor)
    assert AUGMENTERS["clause_shuffle"] is not Impostor

    class BadStage(Impostor):
        name = "bad_stage"
        stage = "tokens"  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="stage must be one of"):
        register_augmenter(BadStage)
    assert "bad_stage" not in AUGMENTERS
