"""The fine-tune stage on several processes, started by Dagster through Dagster Pipes.

`fine_tuned_model` with `nproc > 1` hands the run folder to `torchrun` as a Pipes subprocess
(`dg.PipesSubprocessClient`): the ranks' output goes to the step's logs, rank 0's epoch
lines arrive as Pipes log messages and its launch facts (world size, backend, strategy, why)
as metadata of the materialization. With one process the stage runs in the asset's process,
and the library's training events (`risk_app.finetune.events`) become the run's events: a log
line and an `AssetObservation` per epoch, a log line every `speed.log_every` optimizer steps.
The training itself is `risk_app.run.launch`; this module only launches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd

from risk_app.finetune.events import on_epoch_end, on_steps_logged
from risk_app.run import stages
from risk_app.run.launch import launch_env, prepare_launch, torchrun_command
from risk_app.run.plan import TrainingPlan
from risk_app.run.record import RunRecord


def fine_tune_in_dagster(
    context: dg.AssetExecutionContext,
    record: RunRecord,
    examples: pd.DataFrame,
    plan: TrainingPlan,
    *,
    resume: bool = False,
) -> tuple[RunRecord, dict[str, Any]]:
    """(the record after fine-tuning, the metadata the ranks reported) on `plan.nproc` processes."""
    nproc = plan.nproc
    if nproc == 1:
        with training_events_to(context):
            record, _ = stages.fine_tune(record, examples, plan, resume=resume)
        return record, {}
    record = prepare_launch(record, plan)
    command = torchrun_command(nproc, record.run_dir, resume=resume)
    context.log.info(f"training on {nproc} processes through Dagster Pipes: {' '.join(command)}")
    # A failed rank makes torchrun exit non-zero, which the client raises as a step failure.
    invocation = dg.PipesSubprocessClient().run(context=context, command=command, env=launch_env(nproc))
    reported = invocation.get_materialize_result().metadata or {}
    return RunRecord.load(record.run_dir), dict(reported)


@contextmanager
def training_events_to(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Inside this block, the library's training events are the run's events (see the module)."""
    with on_epoch_end(_epoch_listener(context)), on_steps_logged(_step_listener(context)):
        yield


def _number(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, int | float) else None


def _epoch_listener(context: dg.AssetExecutionContext) -> Any:
    """Each finished epoch: one line in the run's log and an observation of `fine_tuned_model`
    (its metrics, rounded), so the run's events show progress during minutes of training."""

    def listener(record: Any) -> None:
        metrics = {k: _number(v) for k, v in record.items() if not k.startswith("_")}
        shown = {k: v for k, v in metrics.items() if v is not None}
        rest = ", ".join(f"{k} {v:g}" for k, v in shown.items() if k != "epoch")
        context.log.info(f"epoch {record.get('epoch', '?')} done: {rest}")
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=shown))

    return listener


def _step_listener(context: dg.AssetExecutionContext) -> Any:
    """Within an epoch, every `speed.log_every` optimizer steps: one line in the run's log."""

    def listener(record: Any) -> None:
        context.log.info(
            f"epoch {record['epoch']}: step {record['step']}/{record['steps_per_epoch']}, "
            f"train_loss {float(record['train_loss']):.4f}"
        )

    return listener
