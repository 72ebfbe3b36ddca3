"""The `risk-app` console script: the library CLI plus `run`, the whole chain through Dagster.

    risk-app run                      # train on the bundled data, then score it
    risk-app run --data loans.csv --method lora --score-input new_apps.csv

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

from risk_app import paths
from risk_app.cli import app, clear_errors, console, parse_params, print_table
from risk_app.errors import RiskAppError


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


@app.command()
@clear_errors
def run(
    data: Annotated[Path, typer.Option(help="Labelled applications to train on.")] = paths.DEFAULT_DATASET,
    method: Annotated[str, typer.Option(help="Fine-tuning method; see `risk-app methods`.")] = "lora",
    param: Annotated[list[str], typer.Option("--param", "-p", help="Method parameter key=value.")] = [],  # noqa: B006
    base_model: Annotated[
        str, typer.Option(help="Hub id, local folder, .gguf file or tiny-qwen2.")
    ] = "tiny-qwen2",
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 3,
    augment: Annotated[bool, typer.Option(help="Augment the training split.")] = False,
    score_input: Annotated[
        Path | None, typer.Option(help="File to score afterwards (default: --data).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Scores file (default: var/outputs/scores.parquet).")
    ] = None,
) -> None:
    """Run the whole pipeline through Dagster: ingest → … → register, then batch-score."""
    output = output or paths.outputs_dir() / "scores.parquet"
    ensure_dagster_home()
    import dagster as dg

    from pipelines.definitions import defs

    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    quiet = {"console": {"config": {"log_level": "WARNING"}}}
    training_config = {
        "loggers": quiet,
        "ops": {
            "raw_applications": {"config": {"path": str(data)}},
            "augmented_training_examples": {"config": {"enabled": augment}},
            "fine_tuned_model": {
                "config": {
                    "method": method,
                    "method_params": parse_params(param, None),
                    "base_model": base_model,
                    "epochs": epochs,
                }
            },
        },
    }
    console.rule("training job")
    trained = defs.resolve_job_def("training_job").execute_in_process(
        run_config=training_config, instance=instance, raise_on_error=False
    )
    checks = {e.check_name: e for e in trained.get_asset_check_evaluations()}
    promotion = checks.get("promotion_rule")
    if not trained.success and not (promotion is not None and not promotion.passed):
        raise RiskAppError(
            "training job failed: " + "; ".join(failure_messages(trained) or ["see the Dagster UI"])
        )
    evaluation = trained.output_for_node("model_evaluation")
    registered = trained.output_for_node("registered_model")
    console.rule("scoring job")
    scoring_config = {
        "loggers": quiet,
        "ops": {
            "scoring_batch": {"config": {"input_path": str(score_input or data)}},
            "scored_applications": {"config": {"output_path": str(output)}},
        },
    }
    scored_run = defs.resolve_job_def("scoring_job").execute_in_process(
        run_config=scoring_config, instance=instance, raise_on_error=False
    )
    if not scored_run.success:
        raise RiskAppError(
            "scoring job failed: " + "; ".join(failure_messages(scored_run) or ["see the Dagster UI"])
        )
    scored = scored_run.output_for_node("scored_applications")

    console.rule("summary")
    print_table(
        "Test metrics, same split",
        evaluation.to_dict("records"),
        ["model", "roc_auc", "ks", "gini", "brier", "f1", "precision", "recall", "accuracy"],
    )
    verdict = "champion" if registered["decision"]["promote"] else "challenger (not promoted)"
    console.print(f"model version {registered['version']}: {verdict} — {registered['decision']['reason']}")
    grades = scored["risk_grade"].value_counts().sort_index().to_dict()
    console.print(
        f"scored {len(scored)} applications → {output}  grades {grades}, "
        f"declined {int((scored['decision'] == 'decline').sum())}"
    )
    console.print(
        f"wall time {time.perf_counter() - started:.1f} s; Dagster runs in {os.environ['DAGSTER_HOME']}"
    )


__all__ = ["app"]
