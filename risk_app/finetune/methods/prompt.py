"""`prompt`: soft-prompt tuning (or prefix tuning) via peft; the base model stays frozen.

* `variant="prompt"` — Lester et al. 2021: `num_virtual_tokens` trainable embeddings are
  prepended to every input. `init="text"` starts them from the embeddings of `init_text`
  (tokenized with the base model's own tokenizer, repeated or cut to length), which trains
  faster and more stably than `init="random"`.
* `variant="prefix"` — Li & Liang 2021: trainable key/value vectors are prepended in every
  attention layer (peft `PrefixTuningConfig`). They always start random; `init="text"` is
  rejected for it.

The task type is sequence classification, so peft also trains a copy of the `score` head.

Padding: soft prompts are fed to the model as `inputs_embeds`, and transformers' sequence
classifier then cannot find the pad tokens and pools the *last position* of every row. With
right padding that would be a pad token for all but the longest text, so `load_base` switches
the tokenizer to left padding for this variant: the last position is then always the last
real token. (Prefix tuning passes `input_ids`, so either side works.)

    TrainConfig(method="prompt", learning_rate=3e-2, method_params={"num_virtual_tokens": 20})
"""

from __future__ import annotations

from typing import Any, Literal

from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.registry import register

DEFAULT_INIT_TEXT = "Assess the credit risk of this loan application:"


class PromptParams(BaseModel):
    """Parameters of the `prompt` method."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["prompt", "prefix"] = Field(
        default="prompt", description="'prompt' (soft input tokens) or 'prefix' (key/value prefixes in every layer)."
    )
    num_virtual_tokens: int = Field(default=20, ge=1, le=100, description="Number of trainable virtual tokens.")
    init: Literal["random", "text"] = Field(
        default="text",
        description="Prompt variant: start from the embeddings of init_text ('text') or at random ('random').",
    )
    init_text: str = Field(
        default=DEFAULT_INIT_TEXT, min_length=1, description="Text whose token embeddings initialise the prompt."
    )

    @model_validator(mode="after")
    def _init_fits_variant(self) -> PromptParams:
        # Prefix tuning always starts random: an explicit init 'text' is a mistake worth
        # reporting, while the default is normalised to 'random' so the saved config says
        # what happened (and re-validates when an artifact is loaded).
        if self.variant == "prefix" and self.init == "text":
            if "init" in self.model_fields_set:
                raise ValueError("init 'text' applies to variant 'prompt' only; prefix tuning starts random")
            self.init = "random"
        return self


def _tokenizer_source(model: Any) -> str:
    source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
    if not source:
        raise ConfigError(
            "method 'prompt': init 'text' needs the base model's tokenizer, but the model does not record "
            "where it was loaded from; use init 'random'"
        )
    return str(source)


def build_prompt_config(model: Any, cfg: PromptParams) -> PromptTuningConfig | PrefixTuningConfig:
    """The peft config for `cfg` (task SEQ_CLS, so the `score` head trains too)."""
    if cfg.variant == "prefix":
        return PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens)
    if cfg.init == "text":
        return PromptTuningConfig(
            task_type=TaskType.SEQ_CLS,
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT,
            prompt_tuning_init_text=cfg.init_text,
            tokenizer_name_or_path=_tokenizer_source(model),
        )
    return PromptTuningConfig(
        task_type=TaskType.SEQ_CLS,
        num_virtual_tokens=cfg.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.RANDOM,
    )


@register
class PromptMethod(FineTuneMethod):
    """Soft prompt or prefix tuning via peft; base frozen, head trains."""

    name = "prompt"
    description = "Prompt tuning (soft virtual tokens) or prefix tuning via peft; base frozen, head trains."
    Config = PromptParams
    suite_params = {"num_virtual_tokens": 4}

    def load_base(self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None) -> tuple[Any, Any]:
        assert isinstance(cfg, PromptParams)
        model, tokenizer = super().load_base(base_model, cfg, train_cfg)
        if cfg.variant == "prompt":
            # See the module docstring: pooling reads the last position when inputs are embeddings.
            tokenizer.padding_side = "left"
        return model, tokenizer

    def prepare(self, model: Any, cfg: BaseModel) -> Any:
        assert isinstance(cfg, PromptParams)
        try:
            return get_peft_model(model, build_prompt_config(model, cfg))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"method 'prompt': could not set up {cfg.variant} tuning: {exc}") from exc
