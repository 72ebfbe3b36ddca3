"""`prompt`: soft-prompt tuning (or prefix tuning) via peft; the base model stays frozen.

* `variant="prompt"` — Lester et al. 2021: `num_virtual_tokens` trainable embeddings are
  prepended to every input. `init="text"` starts them from the embeddings of `init_text`
  (tokenized with the base model's own tokenizer, repeated or cut to length), which trains
  faster and more stably than `init="random"`.
* `variant="prefix"` — Li & Liang 2021: trainable key/value vectors are prepended in every
  attention layer (peft `PrefixTuningConfig`). They always start random; `init="text"` is
  rejected for it.

The task type is sequence classification, so peft also trains a copy of the `score` head.

Padding, so that a text's score never depends on the rest of its batch:

* soft prompts reach the model as `inputs_embeds`, so transformers' sequence classifier
  cannot see the pad tokens and pools the *last position* of every row: a pad for all but
  the longest text under right padding. Left padding fixes the pooling but moves the text
  away from the prompt by the pad count (RoPE positions). `prepare` therefore adds a forward
  pre-hook on the wrapped classifier that moves each row's pads to the front and numbers the
  real positions 0, 1, ... after them (`move_pads_first`).
* prefix tuning passes `input_ids`, so pooling finds the pads, but with left padding the
  text's RoPE positions shift by the pad count while the (unrotated) prefix keys stay put.
  Its pre-hook numbers the real tokens from `num_virtual_tokens` on (`prefix_position_ids`).

    TrainConfig(method="prompt", learning_rate=3e-2, method_params={"num_virtual_tokens": 20})
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.errors import ConfigError
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.registry import register
from risk_app.finetune.types import RunPlan

DEFAULT_INIT_TEXT = "Assess the credit risk of this loan application:"


class PromptParams(BaseModel):
    """Parameters of the `prompt` method."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["prompt", "prefix"] = Field(
        default="prompt",
        description="'prompt' (soft input tokens) or 'prefix' (key/value prefixes in every layer).",
    )
    num_virtual_tokens: int = Field(
        default=20, ge=1, le=100, description="Number of trainable virtual tokens."
    )
    init: Literal["random", "text"] = Field(
        default="text",
        description=(
            "Prompt variant: start from the embeddings of init_text ('text') or at random ('random')."
        ),
    )
    init_text: str = Field(
        default=DEFAULT_INIT_TEXT,
        min_length=1,
        description="Text whose token embeddings initialise the prompt.",
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


def move_pads_first(
    inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reorder each row so its pads come first; position ids count the real tokens from 0.

    A stable sort on the mask keeps the real tokens (soft prompt, then text) in order.
    """
    order = torch.argsort(attention_mask.to(torch.int8), dim=1, stable=True)
    embeds = torch.gather(inputs_embeds, 1, order.unsqueeze(-1).expand_as(inputs_embeds))
    mask = torch.gather(attention_mask, 1, order)
    positions = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
    return embeds, mask, positions


def pads_first_hook(
    module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Forward pre-hook for the classifier under a soft prompt (see the module docstring)."""
    embeds, mask = kwargs.get("inputs_embeds"), kwargs.get("attention_mask")
    if embeds is None or mask is None or args or kwargs.get("past_key_values") is not None:
        return args, kwargs
    embeds, mask, positions = move_pads_first(embeds, mask)
    return args, {**kwargs, "inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions}


def prefix_position_ids(attention_mask: torch.Tensor, num_virtual_tokens: int) -> torch.Tensor:
    """Positions of the text tokens after a prefix: real tokens count on from the prefix length.

    `attention_mask` covers prefix + text, as peft passes it to the classifier.
    """
    text_mask = attention_mask[:, num_virtual_tokens:].long()
    return (text_mask.cumsum(dim=1) - 1).clamp(min=0) + num_virtual_tokens


def prefix_positions_hook(num_virtual_tokens: int) -> Any:
    """Forward pre-hook for the classifier under prefix tuning (see the module docstring)."""

    def hook(
        module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        mask = kwargs.get("attention_mask")
        if mask is None or args or kwargs.get("input_ids") is None or kwargs.get("position_ids") is not None:
            return args, kwargs
        return args, {**kwargs, "position_ids": prefix_position_ids(mask, num_virtual_tokens)}

    return hook


@register
class PromptMethod(FineTuneMethod):
    """Soft prompt or prefix tuning via peft; base frozen, head trains."""

    name = "prompt"
    description = "Prompt tuning (soft virtual tokens) or prefix tuning via peft; base frozen, head trains."
    Config = PromptParams
    supports_packing = False  # virtual tokens come before every text
    suite_params = {"num_virtual_tokens": 4}

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, PromptParams)
        try:
            peft_model = get_peft_model(model, build_prompt_config(model, cfg))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"method 'prompt': could not set up {cfg.variant} tuning: {exc}") from exc
        hook = pads_first_hook if cfg.variant == "prompt" else prefix_positions_hook(cfg.num_virtual_tokens)
        peft_model.base_model.register_forward_pre_hook(hook, with_kwargs=True)
        return peft_model
