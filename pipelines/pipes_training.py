"""The fine-tune stage on several processes, started by Dagster through Dagster Pipes.

`fine_tuned_model` with `nproc > 1` hands the run folder to `torchrun` as a Pipes subprocess
(`dg.PipesSubprocessClient`): the ranks' output goes to the step's logs, rank 0's epoch
lines arrive as Pipes log messages and its launch facts (world size, backend, strategy, why)
as metadata of the materialization. With one process the stage runs in the asset's process,
as before. The training itself is `risk_app.run.launch`; this module only launches it.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

from risk_app.finetune.config import TrainConfig
from risk_app.run import stages
from risk_app.run.launch import launch_env, prepare_launch, torchrun_command
from risk_app.run.record import RunRecord


def fine_tune_in_dagster(
    context: dg.AssetExecutionContext,
    record: RunRecord,
    examples: pd.DataFrame,
    config: TrainConfig,
    nproc: int,
    *,
    resume: bool = False,
) -> tuple[RunRecord, dict[str, Any]]:
    """(the record after fine-tuning, the metadata the ranks reported) on `nproc` processes."""
    if nproc == 1:
        record, _ = stages.fine_tune(record, examples, config, resume=resume)
        return record, {}
    record = prepare_launch(record, config, nproc)
    command = torchrun_command(nproc, record.run_dir, resume=resume)
    context.log.info(f"training on {nproc} processes through Dagster Pipes: {' '.join(command)}")
    # A failed rank makes torchrun exit non-zero, which the client raises as a step failure.
    invocation = dg.PipesSubprocessClient().run(context=context, command=command, env=launch_env(nproc))
    reported = invocation.get_materialize_result().metadata or {}
    return RunRecord.load(record.run_dir), dict(reported)
