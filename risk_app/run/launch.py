"""The fine-tune stage on N processes: the parent's launcher and each rank's entry point.

`fine_tune_stage(record, examples, plan)` is the fine-tune stage whatever `plan.nproc` is
(`risk_app.run.plan`: the config checked once, at the edge): with one process it is
`stages.fine_tune`; with more it saves the planned config in the run
record and starts `torchrun` on this module, then reads back the record rank 0 wrote. The
parent (the CLI, `workflow.train_run`, or a Dagster asset through Dagster Pipes) never loads
the model, so it holds no GPU and no weights while the ranks train.

Each rank reads the run folder `start_run` wrote (examples, record with the planned config):

* rank 0 runs `stages.fine_tune` — the MLflow run, the checkpoints, the trained weights, the
  raw scores and the record — and writes `distributed.json` (world size, backend, strategy:
  `ddp` for a frozen base, `fsdp` for `full`, and why when it is not the usual one, e.g. `full`
  with EWC on DDP);
* every other rank runs the same `train_classifier` on the same data with nothing to write;
  the supervised loop shards each global batch, synchronizes gradients (DDP) or shards the
  weights themselves (FSDP) and gathers the validation logits (`risk_app.finetune.distributed`).

Under Dagster Pipes (`DAGSTER_PIPES_CONTEXT` in the environment), rank 0 sends its epoch lines
as Pipes log messages and the launch facts as materialization metadata, through the light
`dagster_pipes` package; nothing here imports dagster.

    python -m torch.distributed.run --standalone --nproc-per-node 2 -m risk_app.run.launch RUN_DIR [--resume]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd

from risk_app.atomic import atomic_write_text
from risk_app.errors import RiskAppError
from risk_app.finetune import distributed
from risk_app.finetune.events import on_epoch_end
from risk_app.finetune.resume import resuming
from risk_app.finetune.trainer import train_classifier
from risk_app.models.catalogue import is_catalogue_name
from risk_app.models.loader import ensure_catalogue_base
from risk_app.models.tiny import TINY_NAME, ensure_tiny_qwen2
from risk_app.quiet import quiet_libraries
from risk_app.run import stages
from risk_app.run.plan import TrainingPlan
from risk_app.run.record import RunRecord

LAUNCH_FILE = "distributed.json"
_log = logging.getLogger(__name__)


# ---- the parent --------------------------------------------------------------------------
def torchrun_command(nproc: int, run_dir: str | Path, *, resume: bool = False) -> list[str]:
    """The torchrun command line that trains run `run_dir` on `nproc` local processes."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "risk_app.run.launch", str(run_dir),
    ]  # fmt: skip
    return [*command, "--resume"] if resume else command


def launch_env(nproc: int) -> dict[str, str]:
    """Environment for the ranks: the machine's cores split between them (torchrun would give
    each one thread, which starves tokenization and padding on a many-core GPU host)."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}


def materialize_base(base_model: str) -> None:
    """Build or convert a base that is made on first use (tiny-qwen2, catalogue bases) here,
    once: N ranks making the same folder at once would read each other's half-written files."""
    if base_model == TINY_NAME:
        ensure_tiny_qwen2()
    elif is_catalogue_name(base_model):
        ensure_catalogue_base(base_model)


def prepare_launch(record: RunRecord, plan: TrainingPlan) -> RunRecord:
    """Make the base, save the planned config in the record (the ranks read it there)."""
    materialize_base(plan.config.base_model)
    record = record.model_copy(update={"planned_training": plan.config})
    record.save()
    return record


def fine_tune_stage(
    record: RunRecord,
    examples: pd.DataFrame,
    plan: TrainingPlan,
    *,
    resume: bool = False,
    progress: bool = True,
) -> RunRecord:
    """The fine-tune stage on `plan.nproc` processes of this machine (1: in this process)."""
    nproc = plan.nproc
    if nproc == 1:
        return stages.fine_tune(record, examples, plan, progress=progress, resume=resume)[0]
    record = prepare_launch(record, plan)
    command = torchrun_command(nproc, record.run_dir, resume=resume)
    _log.info("training on %d processes: %s", nproc, " ".join(command))
    returncode = subprocess.run(command, check=False, env={**os.environ, **launch_env(nproc)}).returncode
    if returncode != 0:
        raise RiskAppError(
            f"training on {nproc} processes failed (torchrun exit code {returncode}); "
            f"the ranks' errors are printed above; resume with --resume {record.run_id}"
        )
    return RunRecord.load(record.run_dir)


def read_launch_facts(run_dir: str | Path) -> dict[str, Any] | None:
    """What `distributed.json` says about how a run was spread, or None for a one-process run."""
    path = Path(run_dir) / LAUNCH_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# ---- each rank ---------------------------------------------------------------------------
def run_rank(run_dir: Path, *, resume: bool) -> None:
    """One rank's part of the fine-tune stage (inside torchrun's process group)."""
    record = RunRecord.load(run_dir)
    config = record.planned_training
    if config is None:
        raise RiskAppError(f"run {record.run_id} has no planned training config to launch")
    examples = pd.read_parquet(run_dir / stages.EXAMPLES_FILE)
    plan = TrainingPlan.of(config)  # this rank's edge: the config as the parent checked it, read back
    facts = distributed.launch_facts(plan.choice.method.name, plan.choice.method_cfg)
    if not distributed.is_main_process():
        follow_training(examples, plan, run_dir, resume=resume)
        return
    message = f"training on {facts.world_size} processes ({facts.backend}, {facts.strategy})"
    message += f": {facts.note}" if facts.note else ""
    print(message, flush=True)
    started = time.perf_counter()
    with pipes_session() as pipes:
        if pipes is not None:
            pipes.log.info(message)
        with on_epoch_end(_epoch_logger(pipes)) if pipes is not None else nullcontext():
            record, _ = stages.fine_tune(record, examples, plan, resume=resume)
        summary = {**facts.as_dict(), "stage_seconds": round(time.perf_counter() - started, 2)}
        atomic_write_text(run_dir / LAUNCH_FILE, json.dumps(summary, indent=2))
        if pipes is not None:
            pipes.report_asset_materialization(metadata=_pipes_metadata(summary, record))


def follow_training(examples: pd.DataFrame, plan: TrainingPlan, run_dir: Path, *, resume: bool) -> None:
    """A rank other than 0: the same training on the same data; rank 0 writes everything.

    It reads the checkpoints rank 0 wrote when resuming, and writes nothing itself."""
    train_texts, y_train, _ = stages.texts_and_labels(examples, "train")
    val_texts, y_val, _ = stages.texts_and_labels(examples, "validation")
    with resuming() if resume else nullcontext():
        train_classifier(
            train_texts, y_train, val_texts, y_val, plan.config, checkpoint_dir=run_dir / "checkpoints",
            choice=plan.choice, progress=False,
        )  # fmt: skip


@contextmanager
def pipes_session() -> Iterator[Any]:
    """Dagster Pipes' context when Dagster launched this process through Pipes, else None."""
    if "DAGSTER_PIPES_CONTEXT" not in os.environ:
        yield None
        return
    from dagster_pipes import open_dagster_pipes  # the light Pipes package, not dagster

    with ExitStack() as stack:
        yield stack.enter_context(open_dagster_pipes())


def _epoch_logger(pipes: Any) -> Any:
    def log(record: Mapping[str, Any]) -> None:
        pipes.log.info(
            f"epoch {record['epoch']}: train_loss={record['train_loss']:.4f} "
            f"val_loss={record['val_loss']:.4f} val_auc={record['val_auc']:.4f}"
        )

    return log


def _pipes_metadata(summary: Mapping[str, Any], record: RunRecord) -> dict[str, Any]:
    training = record.need("training")
    return {
        **{f"launch_{key}": value for key, value in summary.items()},
        "best_val_auc": round(float(training.best_val_auc), 4),
        "run_id": record.run_id,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One rank of the fine-tune stage (run under torchrun).")
    parser.add_argument("run_dir", type=Path, help="The run folder start_run wrote.")
    parser.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint.")
    args = parser.parse_args(argv)
    if not distributed.launched_by_torchrun():
        raise SystemExit("run this under torchrun: " + " ".join(torchrun_command(2, args.run_dir)))
    record = RunRecord.load(args.run_dir)
    device = record.planned_training.device if record.planned_training is not None else "auto"
    quiet_libraries()
    with distributed.process_group(device):
        run_rank(args.run_dir, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
