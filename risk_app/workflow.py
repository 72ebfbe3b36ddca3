"""A training run end to end, as the CLI and tests drive it: prepare data, then the stages.

    config = TrainConfig(method="lora")
    spec = spec_counting_tokens_of("german_credit", config.base_model)  # free-text budgets in its tokens
    validation = ingest_and_validate("loans.csv", spec=spec)
    # or the labeled book: _, validation = validate_for_training(TrainingSource(source="book"), spec)
    examples = prepare_examples(validation.valid, spec=spec, seed=42)  # split="out_of_time": by date
    record = train_run(validation.valid, examples, config, spec=spec)
    record = register_run(record, model_name="german_credit")   # risk_app.run.register

A data set with free text counts its token budgets in the base model's tokens when the spec is
bound first (`spec_counting_tokens_of`, as the CLI does); unbound, the budgets use the
documented estimate (`risk_app.data.text`). Either way the run records which, and scoring
through the artifact counts the same way.

`train_run` calls the stages of `risk_app.run` in the order the Dagster assets run them
(fine-tune → [hybrid] → credit policy → evaluate → package), so both paths produce the same
record. `hybrid="logistic"` stacks the LLM with LightGBM (`risk_app.hybrid`).

What the user asked for is checked once, by `plan_run`, before any data is read or folder made:
the method's parameters parsed (`run.plan.plan_training`), the process count checked, the
hybrid checked against the data set. `train_run` calls it when given a `TrainConfig`; the CLI
calls it first (so a typo fails before the data loads) and hands the `PlannedRun` on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_text import ESTIMATED_TOKENS
from risk_app import paths
from risk_app.augment.config import AugmentConfig
from risk_app.augment.pipeline import augment_training_examples
from risk_app.data.ingest import ingest_and_validate as ingest_and_validate
from risk_app.data.ingest import prepare_examples as prepare_examples
from risk_app.data.load import load_applications
from risk_app.data.validate import ValidationResult, validate_applications
from risk_app.errors import ConfigError, RiskAppError
from risk_app.finetune.config import TrainConfig
from risk_app.hybrid.config import HybridConfig
from risk_app.hybrid.stage import check_hybrid, stack_hybrid
from risk_app.outcomes.book import BookExtract, RejectInference, book_training_frame
from risk_app.policy.credit import PolicyConfig
from risk_app.run.dataset import spec_counting_tokens_of
from risk_app.run.evaluate import DEFAULT_BASELINES, evaluate_run
from risk_app.run.launch import fine_tune_stage
from risk_app.run.package import package_run
from risk_app.run.plan import TrainingPlan, plan_training
from risk_app.run.record import RunRecord
from risk_app.run.stages import (
    EXAMPLES_FILE,
    SPEC_COPY,
    VALID_FILE,
    choose_credit_policy,
    start_run,
)


class TrainingSource(BaseModel):
    """Where a training run's applications come from: a file, or the labeled book (the scored
    applications whose outcome is known; the CLI's `train --source book` and the Dagster
    launchpad's `raw_applications` config are both this class)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["file", "book"] = Field(
        default="file",
        description="file: `path` (or the bundled file); book: the labeled book (scored applications "
        "with a known outcome; declined ones excluded and counted).",
    )
    path: str = Field(
        default="",
        description="CSV or Parquet file of loan applications (empty: the data set's own bundled file).",
    )
    window_months: int = Field(
        default=0, ge=0, description="source=book: train on the last N vintages with outcomes (0: all)."
    )
    reject_inference: RejectInference = Field(
        default="none",
        description="source=book: how declined applicants (no outcome) are treated; only 'none' "
        "(excluded, counted) exists today.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TrainingSource:
        if self.source == "book" and self.path:
            raise ValueError(f"path {self.path!r} names a file, source=book the labeled book: give one")
        return self


@dataclass(frozen=True)
class TrainingApplications:
    """Applications read for training, as written (not validated yet)."""

    frame: pd.DataFrame
    source: str  # the file, or "labeled book of <data set> (vintages <first>..<last>)"
    book: BookExtract | None = None  # what the book left out and why (source=book)


def read_training_applications(source: TrainingSource, spec: Any = None) -> TrainingApplications:
    """The applications `source` names: the file's rows, or the book's rows with an outcome."""
    spec = load_spec(spec)
    if source.source == "book":
        extract = book_training_frame(
            spec, window_months=source.window_months, reject_inference=source.reject_inference
        )
        return TrainingApplications(extract.frame.copy(), extract.source, extract)
    path = source.path or str(spec.data_path)
    return TrainingApplications(load_applications(path, spec=spec), path)


def validate_for_training(
    source: TrainingSource, spec: Any = None
) -> tuple[TrainingApplications, ValidationResult]:
    """Read the applications `source` names and validate them as training data."""
    read = read_training_applications(source, spec)
    return read, validate_applications(read.frame, source=read.source, spec=spec)


def augment_examples(
    examples: pd.DataFrame, valid: pd.DataFrame, seed: int = 42, spec: Any = None, **options: Any
) -> pd.DataFrame:
    """The training split plus nlpaug-augmented copies (validation and test untouched)."""
    config = AugmentConfig(enabled=True, seed=seed, **options)
    return augment_training_examples(examples, valid, config, spec=spec).frame


@dataclass(frozen=True)
class PlannedRun:
    """A training run's request, checked once: the training plan and the hybrid."""

    training: TrainingPlan
    hybrid: HybridConfig


def plan_run(
    train_config: TrainConfig, *, nproc: int = 1, hybrid: HybridConfig | str | None = None, spec: Any = None
) -> PlannedRun:
    """Refuse a bad method name or parameters, process count, hybrid (a data set with no
    tabular columns) or an `rlhf` run without enough feedback in one `ConfigError`, before any
    data is read or folder made."""
    return PlannedRun(plan_training(train_config, nproc, load_spec(spec)), check_hybrid(hybrid, spec))


def train_run(
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    train: TrainConfig | PlannedRun,
    policy_config: PolicyConfig | None = None,
    *,
    spec: Any = None,
    source: str = "",
    split_seed: int = 42,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    progress: bool = True,
    run_id: str | None = None,
    nproc: int = 1,
    hybrid: HybridConfig | str | None = None,
) -> RunRecord:
    """Fine-tune (on `nproc` processes), choose the credit policy, evaluate beside the baselines
    and package the model. `train`: a `TrainConfig`, checked here with `nproc` and `hybrid`
    (`plan_run`), or the `PlannedRun` a caller made first (then it carries both)."""
    if isinstance(train, PlannedRun):
        if nproc != 1 or hybrid is not None:
            raise ConfigError("train_run: with a PlannedRun, give nproc and hybrid to plan_run")
        planned = train
    else:
        planned = plan_run(train, nproc=nproc, hybrid=hybrid, spec=spec)
    record = start_run(
        valid,
        examples,
        source=source,
        spec=spec,
        method=planned.training.config.method,
        run_id=run_id,
        split_seed=split_seed,
        hybrid=planned.hybrid,
    )
    record = fine_tune_stage(record, examples, planned.training, progress=progress)
    return _after_fine_tuning(record, valid, examples, policy_config, spec=spec, baselines=baselines)


def _after_fine_tuning(
    record: RunRecord,
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    policy_config: PolicyConfig | None,
    *,
    spec: Any,
    baselines: Sequence[str] = DEFAULT_BASELINES,
) -> RunRecord:
    """[Stack the hybrid the run started with,] choose the policy, evaluate, package: the same
    stages for a fresh run and a resumed one. A stage whose section the record holds already (a
    run killed after it) is not run again: its facts are the ones the later stages used."""
    hybrid_config = record.planned_hybrid or HybridConfig()  # runs started before it was saved: none
    if hybrid_config.enabled and record.hybrid is None:
        record = stack_hybrid(record, valid, examples, hybrid_config, spec=spec)
    if record.policy is None:
        record = choose_credit_policy(record, policy_config)
    if record.evaluation is None:
        record = evaluate_run(record, valid, examples, spec=spec, baselines=baselines)
    return package_run(record, spec=spec)


def run_inputs(record: RunRecord) -> tuple[DatasetSpec, pd.DataFrame, pd.DataFrame]:
    """The spec, valid rows and examples a run trains on, as `start_run` saved them in its
    folder (free text counted as the run counted it). The stages after fine-tuning read these,
    so a policy chosen again later works on the run's own rows, whatever was ingested since."""
    run_dir = Path(record.run_dir)
    spec = load_spec(run_dir / SPEC_COPY)
    config = record.planned_training or record.need("training").config
    if record.dataset.text_tokens != ESTIMATED_TOKENS:
        spec = spec_counting_tokens_of(spec, config.base_model)
    return spec, pd.read_parquet(run_dir / VALID_FILE), pd.read_parquet(run_dir / EXAMPLES_FILE)


def resume_run(
    run_id: str, policy_config: PolicyConfig | None = None, *, progress: bool = True, nproc: int = 1
) -> RunRecord:
    """Finish a killed run from its record: continue fine-tuning from the newest epoch checkpoint
    if it stopped there, then run only the stages it had not finished (hybrid, policy, evaluate,
    package). Registration and the promotion decision come after (`run.register`, as the CLI's
    `train --resume` does); a run registered already has nothing left to resume.

    Trains on exactly the rows, texts and spec the run started with (saved in its folder) and
    stacks the hybrid it was started with (`RunRecord.planned_hybrid`)."""
    run_dir = paths.runs_dir() / run_id
    record = RunRecord.load(run_dir)
    config = record.planned_training
    if record.registration is not None:
        registration = record.registration
        raise RiskAppError(
            f"run {run_id} finished every stage already (registered as {registration.model_name} "
            f"version {registration.version}); nothing to resume"
        )
    if config is None and record.training is None:
        raise RiskAppError(f"run {run_id} stopped before training started; start a new run instead")
    if record.artifact is not None:
        return record  # killed after packaging: only registration (the caller's) is left
    spec, valid, examples = run_inputs(record)
    if record.training is None:
        assert config is not None  # checked above
        plan = plan_training(config, nproc)  # this call's edge: the run's config, on `nproc` processes now
        record = fine_tune_stage(record, examples, plan, progress=progress, resume=True)
    return _after_fine_tuning(record, valid, examples, policy_config, spec=spec)
