"""`risk-app` command line for engineers: train, score, inspect models and methods.

    risk-app methods
    risk-app train --method lora --param r=8 --epochs 3
    risk-app score --input apps.csv --output scores.parquet --model champion
    risk-app models list

This module never imports dagster; `risk-app run` (the whole chain through Dagster) is added
by `pipelines.cli`, which is what the console script points at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import create_model
from rich.table import Table

from data_contracts.spec import DATASET_ENV, DEFAULT_DATASET, default_dataset, deployment_spec
from risk_app import paths
from risk_app.atomic import atomic_write_text
from risk_app.cli.bases import bases_app
from risk_app.cli.common import clear_errors, console, parse_config, parse_params, print_table
from risk_app.cli.datasets import datasets_app
from risk_app.cli.federated import federated_app
from risk_app.cli.models import models_app, reconcile_first
from risk_app.cli.options import (
    AugmentOption,
    BaseModelOption,
    DataOption,
    DatasetOption,
    EpochsOption,
    MethodOption,
    ParamOption,
    SourceOption,
    SplitOption,
    TestOnOption,
    WindowOption,
    given,
)
from risk_app.cli.outcomes import outcomes_app
from risk_app.cli.overrides import overrides_app
from risk_app.cli.scoring import scoring_app
from risk_app.config_errors import describe_fields
from risk_app.quiet import quiet_libraries

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Credit-risk LLM fine-tuning and scoring.")
app.add_typer(models_app, name="models")
app.add_typer(bases_app, name="bases")
app.add_typer(datasets_app, name="datasets")
app.add_typer(outcomes_app, name="outcomes")
app.add_typer(scoring_app, name="scoring")
app.add_typer(federated_app, name="federated")
app.add_typer(overrides_app, name="overrides")


@app.callback()
def _quiet() -> None:
    """Keep the terminal for our progress bars and messages."""
    quiet_libraries()


@app.command()
@clear_errors
def methods() -> None:
    """List the registered fine-tuning methods and their parameters."""
    # CLI start-up: the method registry imports torch; only this command needs it.
    from risk_app.finetune.registry import list_methods, method_config_class

    def one_per_line(config_cls: Any) -> str:
        return "\n".join(describe_fields(_single(config_cls, name)) for name in config_cls.model_fields)

    out = Table(title="Fine-tuning methods", title_justify="left", show_lines=True)
    out.add_column("method", style="bold")
    out.add_column("description")
    out.add_column("parameters (name: type = default)")
    for name, description in list_methods():
        out.add_row(name, description, one_per_line(method_config_class(name)))
    console.print(out)


def _single(config_cls: Any, field_name: str) -> Any:
    """A one-field view of a pydantic model, so describe_fields prints one line per field."""
    field = config_cls.model_fields[field_name]
    return create_model("One", **{field_name: (field.annotation, field)})


@app.command()
@clear_errors
def augmenters() -> None:
    """List the registered augmenters (nlpaug-based, training split only)."""
    # CLI start-up: the augmenters import nlpaug and torch; only this command needs them.
    from risk_app.augment.base import get_augmenter, list_augmenters

    for name in list_augmenters():
        doc = (get_augmenter(name).__doc__ or "").strip().splitlines()[0]
        console.print(f"[bold]{name}[/bold]: {doc}")


@app.command()
@clear_errors
def validate(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file.")],
    dataset: DatasetOption = None,
) -> None:
    """Check a file against a data set's contract and show what would be quarantined.

    A file with the target column is checked as training data (the same checks as `train`)."""
    # CLI start-up: the workflow imports torch and transformers; only this command needs them.
    from risk_app.workflow import ingest_and_validate

    result = ingest_and_validate(input, require_target=None, spec=dataset or default_dataset())
    console.print(f"{input}: {result.n_in} rows: {result.n_valid} valid, {result.n_quarantined} quarantined")
    if result.n_quarantined:
        # One sentence per failure (file, row, field, value, why): a table of seven columns does not
        # fit a terminal, and the sentence is what the quarantine table's `reason` holds anyway.
        console.print("First failures:")
        for reason in result.quarantine["reason"].head(20):
            console.print(f"  {reason}", overflow="fold")
        if len(result.quarantine) > 20:
            console.print(f"  … and {len(result.quarantine) - 20} more (all in the quarantine table)")


@app.command()
@clear_errors
def train(
    data: DataOption = None,
    dataset: DatasetOption = None,
    source: SourceOption = "file",
    window_months: WindowOption = 0,
    split: SplitOption = "random",
    test_on: TestOnOption = "latest_vintage",
    method: MethodOption = None,
    param: ParamOption = [],  # noqa: B006
    params_json: Annotated[str | None, typer.Option(help="Method parameters as a JSON object.")] = None,
    base_model: BaseModelOption = None,
    epochs: EpochsOption = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for split, init and shuffling.")] = 42,
    augment: AugmentOption = False,
    exclude_protected: Annotated[
        bool, typer.Option(help="Leave protected attributes out of the text.")
    ] = False,
    register: Annotated[bool, typer.Option(help="Register in MLflow and apply the promotion rule.")] = True,
    max_train_rows: Annotated[int | None, typer.Option(help="Train on a subset (quick runs).")] = None,
    setting: Annotated[
        list[str], typer.Option("--set", help="Any training setting key=value (see TrainConfig).")
    ] = [],  # noqa: B006
    policy: Annotated[
        list[str],
        typer.Option("--policy", help="Credit-policy setting key=value, e.g. objective=target_approval."),
    ] = [],  # noqa: B006
    max_decline_rate: Annotated[
        float | None, typer.Option(help="Credit-policy cap on the share declined, e.g. 0.3.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Run id of a killed run: continue from its last epoch checkpoint.")
    ] = None,
    nproc: Annotated[
        int, typer.Option(help="Training processes on this machine (torchrun: one per GPU, or gloo on CPU).")
    ] = 1,
    hybrid: Annotated[
        str,
        typer.Option(
            help="Stack the LLM with LightGBM on the spec's columns: none, logistic, convex, or "
            "tabular_only (deploy LightGBM alone; the LLM is still trained and reported)."
        ),
    ] = "none",
) -> None:
    """Validate, fine-tune, choose the credit policy, evaluate beside the baselines, register.

    `--set` takes any TrainConfig field and `--policy` any PolicyConfig field (a mistake lists
    the allowed keys), so the CLI never lags behind the library's configs.
    """
    # CLI start-up: policy, data and training configs import scikit-learn and torch.
    from risk_app.data.examples import PreparationConfig
    from risk_app.finetune.config import TrainConfig
    from risk_app.policy.credit import PolicyConfig
    from risk_app.workflow import TrainingSource

    spec = deployment_spec(dataset)
    config = parse_config(
        TrainConfig,
        {
            "method_params": parse_params(param, params_json),
            "seed": seed,
            **given(
                method=method, base_model=base_model, epochs=epochs, learning_rate=learning_rate,
                max_train_rows=max_train_rows,
            ),
            **parse_params(setting, None),
        },
    )  # fmt: skip
    training_source = parse_config(
        TrainingSource, {"source": source, "path": str(data or ""), "window_months": window_months}
    )
    preparation = parse_config(
        PreparationConfig,
        {"seed": config.seed, "split": split, "test_on": test_on,
         "exclude_fields": list(spec.protected_columns) if exclude_protected else []},
    )  # fmt: skip
    cap = {} if max_decline_rate is None else {"max_decline_rate": max_decline_rate}
    policy_config = parse_config(PolicyConfig, {**cap, **parse_params(policy, None)})
    if resume:
        _resume(resume, policy_config, register, nproc)
        return
    record = _train(training_source, spec, config, policy_config, preparation, augment, nproc, hybrid=hybrid)
    if register:
        _register_and_report(record)


def _train(
    source: Any,
    spec: Any,
    config: Any,
    policy_config: Any,
    preparation: Any,
    augment: bool,
    nproc: int,
    hybrid: str = "none",
) -> Any:
    """Validate, prepare and train one run on a file or the labeled book; print its summary;
    return its record."""
    # CLI start-up: training imports torch, transformers and mlflow; only `train` needs them.
    from risk_app import workflow
    from risk_app.data.examples import prepare_training_examples
    from risk_app.run.render import policy_sentence, summary_rows, training_notes

    # Checked once, before the data loads: method parameters, processes, hybrid.
    planned = workflow.plan_run(config, nproc=nproc, hybrid=hybrid, spec=spec)
    # Free-text budgets (text.max_tokens) count the base model's tokens, in training and scoring.
    spec = workflow.spec_counting_tokens_of(spec, config.base_model)
    with console.status("validating data"):
        read, validation = workflow.validate_for_training(source, spec=spec)
        examples = prepare_training_examples(validation.valid, preparation, spec=spec)
    counts = f"{validation.n_valid} valid, {validation.n_quarantined} quarantined of {validation.n_in}"
    console.print(f"{read.source}: {counts}", highlight=False)
    for note in read.book.notes if read.book is not None else ():
        console.print(f"  {note}", highlight=False)
    if augment:
        examples = workflow.augment_examples(examples, validation.valid, seed=config.seed, spec=spec)
    record = workflow.train_run(
        validation.valid, examples, planned, policy_config, spec=spec, source=read.source,
        split_seed=config.seed,
    )  # fmt: skip
    print_table("Test metrics (same split)", summary_rows(record))
    over = record.need("training").texts_over_max_length
    if over:
        console.print(
            f"[yellow]warning:[/yellow] {over} application texts are longer than max_length="
            f"{config.max_length} tokens; the model read only their beginning (see the model card). "
            "Raise it with --set max_length=N."
        )
    for note in training_notes(record):
        console.print(note)
    console.print(policy_sentence(record))
    console.print(f"artifact: {record.need('artifact').path}")
    return record


def _resume(run_id: str, policy_config: Any, register: bool, nproc: int) -> None:
    # CLI start-up: training imports torch, transformers and mlflow; only `train` needs them.
    from risk_app import workflow
    from risk_app.run.record import RunRecord
    from risk_app.run.render import policy_sentence, summary_rows, training_notes

    left = RunRecord.load(paths.runs_dir() / run_id)
    if left.training is None:
        stage = "its last epoch checkpoint"
    else:
        stage = "registration" if left.artifact is not None else "the stages after training"
    console.print(f"resuming run {run_id} from {stage}")
    record = workflow.resume_run(run_id, policy_config, nproc=nproc)
    print_table("Test metrics (same split)", summary_rows(record))  # names the hybrid, if it stacks one
    for note in training_notes(record):
        console.print(note)
    console.print(policy_sentence(record))
    if register:
        _register_and_report(record)


def _register_and_report(record: Any) -> None:
    # CLI start-up: registration imports mlflow; only `train --register` needs it.
    from risk_app.run.register import promote_run, register_run

    registered = register_run(record, model_name=record.dataset.name)
    record = promote_run(registered, actor="cli")
    registration = record.need("registration")
    verdict = "champion" if registration.promoted else "challenger"
    console.print(
        f"registered {registration.model_name} version {registration.version} as {verdict}: "
        f"{registration.decision.reason}"
    )


@app.command()
@clear_errors
def score(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV/Parquet of applications.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Scores file (default: named after the batch).")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help=f"Data set: a built-in name or a spec file (default: ${DATASET_ENV}, else "
            f"{DEFAULT_DATASET}); its registered model scores, and the model's own spec must match."
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(help="Alias (champion/challenger), version or artifact folder.")
    ] = "champion",
    reasons: Annotated[int, typer.Option(help="Reason codes per declined application (0 = none).")] = 4,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Default output as CSV (formulas neutralized).")] = False,
) -> None:
    """Score a file: PD, grade, decision, model version, reason codes; recorded once in the warehouse."""
    # CLI start-up: scoring imports torch and mlflow; only `score` needs them.
    from risk_app.scoring.staged import score_and_record

    # The registered model of the data set asked for, else of the deployment's default data set.
    registered = deployment_spec(dataset).name
    if not Path(model).expanduser().is_dir():  # a version or alias: the registry is read
        reconcile_first(registered)
    with console.status(f"scoring {input} with model {model}"):
        outcome = score_and_record(
            input, output, model_ref=model, model_name=registered, reasons=reasons, spec=dataset,
            overwrite=overwrite, fmt="csv" if csv else "parquet",
        )  # fmt: skip
    if outcome.n_quarantined:
        quarantined = f"{outcome.n_quarantined} row(s) quarantined, not scored"
        console.print(f"[yellow]{quarantined}[/yellow]: {outcome.quarantine_path}")
    # Most ids already scored by this model (a re-export?): the summary ends with a warning.
    loud = "bold yellow" if outcome.record.mostly_rescored else None
    console.print(outcome.summary(), highlight=False, style=loud)


@app.command("compare-methods")
@clear_errors
def compare_methods_command(
    dataset: DatasetOption = None,
    data: DataOption = None,
    base_model: BaseModelOption = None,
    methods_: Annotated[
        list[str], typer.Option("--method", "-m", help="Only these methods (default: all registered).")
    ] = [],  # noqa: B006
    epochs: Annotated[int, typer.Option(help="Epochs for every method.")] = 3,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 42,
    setting: Annotated[list[str], typer.Option("--set", help="Any training setting key=value.")] = [],  # noqa: B006
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the table as JSON.")] = None,
) -> None:
    """Train every fine-tuning method on the same split and show them side by side.

    `python bench/compare_methods.py` runs the same comparison and writes docs/methods.md.
    """
    # CLI start-up: training imports torch and transformers; only this command needs them.
    from risk_app import workflow
    from risk_app.finetune import compare
    from risk_app.finetune.config import TrainConfig

    spec = deployment_spec(dataset)
    values = {"epochs": epochs, "seed": seed, **given(base_model=base_model), **parse_params(setting, None)}
    base = parse_config(TrainConfig, values)
    variants = compare.select_variants(methods_)
    validation = workflow.ingest_and_validate(data or spec.data_path, spec=spec)
    examples = workflow.prepare_examples(validation.valid, seed=seed, spec=spec)
    table = compare.compare_methods(
        examples, base, variants, on_row=lambda row: console.print(f"[bold]{row['method']}[/bold] done")
    )
    wanted = ("method", "trainable_percent", "wall_seconds", "val_roc_auc", "test_roc_auc", "error")
    shown = [c for c in wanted if c in table.columns]
    print_table(f"Methods on {spec.name}", table[shown].to_dict("records"))
    if json_out is not None:
        atomic_write_text(json_out, table.to_json(orient="records", indent=2))