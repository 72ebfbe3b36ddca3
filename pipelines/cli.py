"""The `risk-app` console script: the library CLI plus `run`, the whole chain through Dagster.

    risk-app run                      # train on the bundled data, then score it
    risk-app run --data loans.csv --method lora --score-input new_apps.csv
    risk-app run --source book --split out_of_time   # retrain on the labeled book, test on its newest month

`run` executes the same jobs as the Dagster UI, in process, against the local instance in
$DAGSTER_HOME, so its runs show up in `dagster dev` afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from data_contracts.spec import default_dataset
from risk_app import paths
from risk_app.cli.common import clear_errors, console, parse_params, print_table
from risk_app.cli.main import app
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
from risk_app.errors import RiskAppError

QUIET = {"console": {"config": {"log_level": "WARNING"}}}


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or var/dagster_home with the repo's dagster.yaml copied in."""
    home = Path(os.environ.get("DAGSTER_HOME") or paths.home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    source = paths.REPO_ROOT / "dagster.yaml"
    if source.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(source, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def failure_messages(result: Any) -> list[str]:
    """The user-facing messages of failed steps and failed blocking checks of a run."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data:
            messages.append(event.step_failure_data.user_failure_data.description or "")
        elif event.is_step_failure:
            messages.append(event.step_failure_data.error.message.strip().splitlines()[0])
    return [m for m in messages if m]


def training_run_config(
    dataset: str,
    source: dict[str, Any],
    preparation: dict[str, Any],
    training: dict[str, Any],
    augment: bool,
) -> dict[str, Any]:
    """The training job's run config, as an analyst would fill the launchpad: `source`
    (`risk_app.workflow.TrainingSource`), `preparation` (`risk_app.data.examples.PreparationConfig`)
    and `training` (`TrainConfig`) hold only what the user gave; the configs' defaults fill the rest."""
    return {
        "loggers": QUIET,
        "ops": {
            "dataset_spec": {"config": {"dataset": dataset}},
            "raw_applications": {"config": source},
            "training_examples": {"config": preparation},
            "augmented_training_examples": {"config": {"enabled": augment}},
            "fine_tuned_model": {"config": training},
        },
    }


def score_after_training(
    instance: Any, defs: Any, path: Path, output: Path | None, model: str = "champion"
) -> tuple[Any, Path]:
    """Score `path` as its own partition of the scoring job (as the landing sensor would)."""
    # CLI start-up: the assets import dagster and the whole library; only `score` needs them.
    from pipelines.assets.scoring import landing_files, landing_partition_key
    from risk_app.storage.scores import file_batch_id

    console.rule("scoring job")
    batch_id = file_batch_id(path)
    key = landing_partition_key(path.name, batch_id)
    instance.add_dynamic_partitions(landing_files.name, [key])
    config = {
        "loggers": QUIET,
        "ops": {
            "scoring_batch": {"config": {"input_path": str(path), "expected_batch_id": batch_id}},
            "scored_applications": {"config": {"output_path": str(output) if output else "", "model": model}},
        },
    }
    result = defs.resolve_job_def("scoring_job").execute_in_process(
        run_config=config, instance=instance, partition_key=key, raise_on_error=False
    )
    if not result.success:
        raise RiskAppError(
            "scoring job failed: " + "; ".join(failure_messages(result) or ["see the Dagster UI"])
        )
    metadata = result.asset_materializations_for_node("scored_applications")[0].metadata
    return result.output_for_node("scored_applications"), Path(metadata["output_path"].value)


def scoring_model(record: Any) -> str:
    """The champion, or, when the data set has none yet (this version was held back), this
    version by number, said plainly: a demo run still shows scores."""
    # CLI start-up: the registry imports mlflow; only the demo summary needs it.
    from risk_app.run.register import champion_version

    registration = record.need("registration")
    if champion_version(registration.model_name) is not None:
        return "champion"
    console.print(
        f"[yellow]{registration.model_name} has no champion; scoring with version {registration.version}, "
        "which was not promoted[/yellow]"
    )
    return str(registration.version)


def print_training_summary(record: Any) -> None:
    """The record's test metrics beside the baselines, the policy and the verdict."""
    # CLI start-up: rendering a record imports the registry (mlflow).
    from risk_app.run.render import policy_sentence, summary_rows, training_notes

    print_table("Test metrics, same split", summary_rows(record))
    for note in training_notes(record):
        console.print(note)
    console.print(policy_sentence(record))
    registration = record.need("registration")
    verdict = "champion" if registration.decision.promote else "challenger (not promoted)"
    console.print(
        f"{registration.model_name} version {registration.version}: {verdict} — "
        f"{registration.decision.reason}"
    )


@app.command()
@clear_errors
def run(
    dataset: DatasetOption = None,
    data: DataOption = None,
    source: SourceOption = "file",
    window_months: WindowOption = 0,
    split: SplitOption = "random",
    test_on: TestOnOption = "latest_vintage",
    method: MethodOption = None,
    param: ParamOption = [],  # noqa: B006
    base_model: BaseModelOption = None,
    epochs: EpochsOption = None,
    augment: AugmentOption = False,
    score_input: Annotated[
        Path | None,
        typer.Option(help="File to score afterwards (default: the training file; none after --source book)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Scores file (default: named after the batch).")] = None,
) -> None:
    """Run the whole pipeline through Dagster: ingest → … → register, then batch-score."""
    ensure_dagster_home()
    # CLI start-up: dagster and the definitions take tens of seconds; only `dagster-run` needs them.
    import dagster as dg

    from pipelines.definitions import defs

    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    console.rule("training job")
    training = {"method_params": parse_params(param, None), **given(method=method, base_model=base_model)}
    config = training_run_config(
        dataset or default_dataset(),
        {"source": source, "path": str(data or ""), "window_months": window_months},
        {"split": split, "test_on": test_on},
        {**training, **given(epochs=epochs)},
        augment,
    )
    trained = defs.resolve_job_def("training_job").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )
    if not trained.success:
        raise RiskAppError(
            "training job failed: " + "; ".join(failure_messages(trained) or ["see the Dagster UI"])
        )
    record = trained.output_for_node("registered_model")
    # The training file is scored again by default; the labeled book is no file to score.
    to_score = score_input or (Path(record.dataset.source) if source == "file" else None)
    if to_score is not None:
        scored, output = score_after_training(instance, defs, to_score, output, scoring_model(record))
    console.rule("summary")
    print_training_summary(record)
    if to_score is not None:
        console.print(
            f"scored {scored.outcome.n_scored} applications → {output}  grades {scored.summary.grades}, "
            f"declined {scored.outcome.n_declined}"
        )
    else:
        console.print("trained on the labeled book: nothing scored (give --score-input FILE to score one)")
    console.print(
        f"wall time {time.perf_counter() - started:.1f} s; Dagster runs in {os.environ['DAGSTER_HOME']}"
    )


__all__ = ["app"]
