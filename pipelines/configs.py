"""Typed launchpad configs, generated from the `risk_app` config classes where one exists.

Dagster rejects unknown keys in the launchpad; the `risk_app` config classes then check
ranges and method parameters and turn problems into one clear message.
"""

from __future__ import annotations

import types
from collections.abc import Collection
from typing import Any, Literal, Union, get_args, get_origin

import dagster as dg
from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo

from data_contracts.spec import DEFAULT_DATASET
from risk_app.augment.config import AugmentConfig
from risk_app.data import examples
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives.rlhf import RlhfParams
from risk_app.finetune.registry import list_methods
from risk_app.hybrid.config import HybridConfig, HybridStacker
from risk_app.policy.credit import PolicyConfig
from risk_app.workflow import TrainingSource


def _launchpad_type(annotation: Any) -> Any:
    """`annotation` as Dagster's launchpad can take it. A union of two kinds of value (a flag or a
    word: `SpeedConfig.fused_kernels: bool | Literal["measure"]`) is no Dagster config type; such
    a field takes any value there, and the library class checks it (one clear line)."""
    members = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(members) > 1:
        return Any
    return annotation


def launchpad_config(
    name: str,
    library_cls: type[BaseModel],
    overrides: dict[str, Any] | None = None,
    exclude: Collection[str] = (),
) -> type[dg.Config]:
    """A Dagster launchpad config with the same fields, types, defaults and help as a library
    config class, so the two cannot drift apart. `overrides` replaces a field's annotation
    (e.g. the method name as a Literal of the registered methods, so a typo is refused with the
    allowed values); `exclude` leaves fields out (a job that sets them itself). The library
    class re-validates (ranges, cross-field rules, method params).
    """
    fields: dict[str, Any] = {}
    for field_name, info in library_cls.model_fields.items():
        if field_name in exclude:
            continue
        annotation = _launchpad_type((overrides or {}).get(field_name, info.annotation))
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if nested and not issubclass(annotation, dg.Config):
            # A nested library config (TrainConfig.speed) becomes a nested launchpad config:
            # Dagster accepts only its own Config classes inside a Config.
            annotation = launchpad_config(annotation.__name__, annotation)
            info = FieldInfo.merge_field_infos(info, default_factory=annotation)
        fields[field_name] = (annotation, info)
    return create_model(name, __base__=dg.Config, __module__=__name__, __doc__=library_cls.__doc__, **fields)


MethodName = Literal[tuple(name for name, _ in list_methods())]  # type: ignore[valid-type]

TrainingConfig = launchpad_config("TrainingConfig", TrainConfig, {"method": MethodName})
# augmented_training_examples' launchpad: every AugmentConfig field, with its bounds and help.
AugmentationConfig = launchpad_config("AugmentationConfig", AugmentConfig)
# raw_applications' and training_examples' launchpads: the library's classes, which `risk-app
# train --source/--split` fills too.
IngestConfig = launchpad_config("IngestConfig", TrainingSource)
PreparationConfig = launchpad_config("PreparationConfig", examples.PreparationConfig)


class FineTuneConfig(TrainingConfig):  # type: ignore[misc, valid-type]
    """`fine_tuned_model`'s launchpad: the training settings, and how many processes run them.

    `nproc` is how this machine runs the recipe, not part of it: the same TrainConfig on 1 or 8
    processes takes the same optimizer steps, so it stays out of TrainConfig (and so out of the
    artifact's config and of what a resume on another machine reads)."""

    nproc: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Training processes on this machine: torchrun through Dagster Pipes, one per "
        "GPU (NCCL) or gloo on CPU; DDP, the data sharded by rank.",
    )

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.model_dump(exclude={"nproc"}))


CreditPolicyConfig = launchpad_config("CreditPolicyConfig", PolicyConfig)


class CreditPolicyLaunchpad(CreditPolicyConfig):  # type: ignore[misc, valid-type]
    """`credit_policy`'s launchpad: the policy, and whether the LLM is first stacked with LightGBM.

    The stacker is fitted on validation like the calibration, so switching it on or off re-runs
    from here without retraining the LLM (`risk_app.hybrid.stage.stack_hybrid`)."""

    hybrid: HybridStacker = Field(
        default="none",
        description="Stack the LLM's calibrated PD with LightGBM on the spec's columns (cross-fitted "
        "on validation): none, logistic or convex; or tabular_only to deploy LightGBM alone "
        "(tabular:lightgbm, the LLM reported beside it).",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _refused_in_one_sentence(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """A policy the library refuses (`target_approval` without a rate, a rate out of range)
        fails the step in one sentence as it starts, before anything is read: Dagster's launchpad
        checks types, not the policy's cross-field rules, and would show pydantic's trace."""
        try:
            config = handler(data)
            config.policy_config()
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            raise dg.Failure(description=f"credit_policy config: {problems}", allow_retries=False) from None
        return config

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig.model_validate(self.model_dump(exclude={"hybrid"}))

    def hybrid_config(self) -> HybridConfig:
        return HybridConfig(stacker=self.hybrid)


def _problem(error: Any) -> str:
    """One pydantic error as a phrase: the field and what is wrong (a cross-field rule's own words)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message} (got {error['input']!r})" if field else message


# What an empty `dataset` means on a launchpad that does not remember the last run's data set.
DATASET_HELP = (
    "The data set's spec: a built-in name or a spec file path; empty: $RISK_APP_DATASET, "
    f"else {DEFAULT_DATASET}."
)


class DatasetConfig(dg.Config):
    dataset: str = Field(
        default="",
        description="The data set's spec: a built-in name (`risk-app datasets list`) or a spec file path; "
        "empty: the data set of the last run (the launchpad does not fall back to "
        f"{DEFAULT_DATASET} each time), else $RISK_APP_DATASET, else {DEFAULT_DATASET}.",
    )


# rlhf_retraining_job's launchpad: the training settings and rlhf's own, each generated from its
# library class; the method (rlhf), where the feedback comes from (the override ledger) and the
# training data (the labeled book) are what the job is, so they are not fields.
RlhfTrainingSettings = launchpad_config(
    "RlhfTrainingSettings", TrainConfig, exclude=("method", "method_params")
)
RLHF_JOB_SETS = ("feedback_source", "feedback_path", "applications_path", "applications_dataset")
RlhfSettings = launchpad_config("RlhfSettings", RlhfParams, exclude=RLHF_JOB_SETS)


class RlhfRetrainingConfig(dg.Config):
    """Retrain with rlhf on the labeled book, the reward learnt from the analysts' overrides."""

    dataset: str = Field(
        default="",
        description=DATASET_HELP,
    )
    window_months: int = Field(
        default=0, ge=0, description="Train on the book's last N vintages with outcomes (0: all)."
    )
    split: Literal["random", "out_of_time"] = Field(
        default="random",
        description="random: stratified by label; out_of_time (a spec with a date column): the newest "
        "vintage tests, the one before validates.",
    )
    training: RlhfTrainingSettings = Field(  # type: ignore[valid-type]
        default_factory=RlhfTrainingSettings, description="Training settings (the supervised stage's)."
    )
    rlhf: RlhfSettings = Field(  # type: ignore[valid-type]
        default_factory=RlhfSettings,
        description="rlhf's settings: policy method, min_feedback_pairs, the evidence gate and the guard, "
        "the reward model, PPO.",
    )
    credit_policy: CreditPolicyConfig = Field(  # type: ignore[valid-type]
        default_factory=CreditPolicyConfig, description="How the retrained model's credit policy is chosen."
    )

    def run_config(self, dataset: str) -> dict[str, Any]:
        """The training assets' run config this launchpad stands for (`dataset`: the one in force)."""
        params = {**self.rlhf.model_dump(exclude_none=True), "feedback_source": "override_ledger"}
        training = {**self.training.model_dump(exclude_none=True), "method": "rlhf", "method_params": params}
        ops: dict[str, Any] = {
            "dataset_spec": {"config": {"dataset": dataset}},
            "raw_applications": {"config": {"source": "book", "window_months": self.window_months}},
            "training_examples": {"config": {"split": self.split}},
            "fine_tuned_model": {"config": training},
            "credit_policy": {"config": self.credit_policy.model_dump(exclude_none=True)},
        }
        return {"ops": ops}
