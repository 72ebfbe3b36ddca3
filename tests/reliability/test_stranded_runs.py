"""A killed run is never stranded (issue 20 §4): kill -9 at a stage boundary, then the CLI finishes it.

* killed after training, before evaluation: `train --resume` evaluates, packages, registers and
  decides from the run record, without training again;
* killed during an epoch: the resumed run logs its epochs into the MLflow run the killed one
  opened, so the curve is one curve;
* a version killed before its decision, and an MLflow run a dead process left RUNNING, are
  reconciled by the first command that reads the registry (`models list`, `models promote`,
  `score`), not only by the next registration.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from risk_app import paths
from risk_app.cli.main import app
from risk_app.registry import mlflow_registry as reg
from risk_app.run.record import RunRecord
from tests.reliability.conftest import KILLED, run_child

# slow: scheduled first (tests/conftest.py)
pytestmark = [pytest.mark.usefixtures("mlflow_store"), pytest.mark.slow]
runner = CliRunner()

TRAIN_IN_CHILD = """
import contextlib
from risk_app import workflow
from risk_app.finetune.config import TrainConfig
{patch}
validation = workflow.ingest_and_validate({path!r})
examples = workflow.prepare_examples(validation.valid, seed=7)
config = TrainConfig(epochs=2, max_length=64, seed=7, patience=0)
with {context}:
    workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False,
                       run_id="killed-run")
"""


# Epoch 1 is checkpointed and logged to MLflow, then the process is killed.
DIE_AFTER_LOGGING_EPOCH_1 = """
from risk_app.run import tracking
_log_epoch = tracking.TrainingTracker.log_epoch
def _log_then_die(self, record):
    _log_epoch(self, record)
    if record["epoch"] == 1:
        _die()
tracking.TrainingTracker.log_epoch = _log_then_die
"""


def _applications(home: Path) -> Path:
    path = home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(240, random_state=1).to_csv(path, index=False)
    return path


def _killed_run(home: Path, *, patch: str = "", context: str = "contextlib.nullcontext()") -> None:
    code = TRAIN_IN_CHILD.format(patch=patch, path=str(_applications(home)), context=context)
    child = run_child(code, home, timeout=300)
    assert child.returncode == KILLED, child.stderr[-3000:]


def _record() -> RunRecord:
    return RunRecord.load(paths.runs_dir() / "killed-run")


def test_killed_before_evaluation_is_finished_by_resume(risk_app_home: Path, tiny_qwen2: Path) -> None:
    _killed_run(risk_app_home, patch='kill_before(workflow, "evaluate_run")')
    killed = _record()
    assert killed.training is not None and killed.evaluation is None and killed.artifact is None
    trained_with = killed.training.mlflow_run_id

    result = runner.invoke(app, ["train", "--resume", "killed-run"])
    assert result.exit_code == 0, result.output
    assert "nothing to resume" not in result.output
    record = _record()
    assert record.training is not None and record.training.mlflow_run_id == trained_with  # not retrained
    assert record.evaluation is not None and record.artifact is not None
    registration = record.need("registration")
    assert registration.version == 1
    [row] = reg.list_versions("german_credit")
    assert row["promotion_decision"] in {"promoted", "recommended", "rejected"}

    again = runner.invoke(app, ["train", "--resume", "killed-run"])
    assert again.exit_code != 0 and "finished every stage already" in again.output
    assert len(reg.list_versions("german_credit")) == 1


def test_resumed_training_logs_into_the_killed_runs_mlflow_run(risk_app_home: Path, tiny_qwen2: Path) -> None:
    _killed_run(risk_app_home, patch=DIE_AFTER_LOGGING_EPOCH_1)
    assert _record().training is None

    result = runner.invoke(app, ["train", "--resume", "killed-run", "--no-register"])
    assert result.exit_code == 0, result.output
    client = reg._client()
    runs = [
        r for r in client.search_runs([reg.configure_mlflow()]) if r.data.tags.get("run_id") == "killed-run"
    ]
    assert len(runs) == 1, [r.info.run_id for r in runs]
    [run] = runs
    assert run.info.status == "FINISHED" and run.info.run_id == _record().need("training").mlflow_run_id
    history = client.get_metric_history(run.info.run_id, "epoch_val_auc")
    assert [m.step for m in history] == [1, 2]


REGISTER_IN_CHILD = """
from risk_app.registry import mlflow_registry as reg
from risk_app.registry.reconcile import register_and_decide
{patch}
{before}
register_and_decide(
    {artifact!r}, run_key={key!r}, metrics={{"roc_auc": 0.7, "brier": 0.2}}, model_name="german_credit"
)
"""


# What a registration or a training killed inside its MLflow run leaves: a RUNNING run of a dead pid.
# The process opens it (not as its active run) before the registration that is then killed, so one
# child process leaves both things behind: importing MLflow in a second child cost ~10 s a test.
OPEN_A_RUN = """
from risk_app.registry.processes import process_tags
experiment = reg.configure_mlflow()
reg._client().create_run(experiment, tags=process_tags())
"""


def _killed_registration(home: Path, key: str, patch: str, before: str = "") -> None:
    from tests.scoring.doubles import save_double_artifact

    artifact = save_double_artifact(home / f"artifact_{key}", version=key, n_train=120)
    code = REGISTER_IN_CHILD.format(patch=patch, before=before, artifact=str(artifact), key=key)
    child = run_child(code, home)
    assert child.returncode == KILLED, child.stderr[-2000:]


@pytest.mark.parametrize(
    "command",
    [
        ["models", "list"],
        ["models", "promote", "1", "--reason", "after a kill"],
        ["score", "-i", "{apps}", "--model", "1", "--reasons", "0"],
    ],
    ids=["list", "promote", "score"],
)
def test_commands_that_read_the_registry_reconcile_it_first(risk_app_home: Path, command: list[str]) -> None:
    # Version 1 killed before its decision, by a process that had also opened an MLflow run.
    _killed_registration(risk_app_home, "run-1", 'kill_before(reg, "decide_and_record")', OPEN_A_RUN)
    experiment = reg.configure_mlflow()
    client = reg._client()
    statuses = sorted(r.info.status for r in client.search_runs([experiment]))
    assert statuses == ["FINISHED", "RUNNING"]  # what the two kills left behind
    [undecided] = reg.list_versions("german_credit")
    assert undecided["promotion_decision"] is None

    apps = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).head(20).drop(columns=["creditability"]).to_csv(apps)
    result = runner.invoke(app, [arg.format(apps=apps) for arg in command], terminal_width=300)
    # Whatever the command then does (the score may fail on the test double), it reconciled first.
    assert "reconciled german_credit" in result.output, result.output
    statuses = sorted(r.info.status for r in client.search_runs([experiment]))
    assert statuses == ["FINISHED", "KILLED"]
    [decided] = reg.list_versions("german_credit")
    assert decided["promotion_decision"] is not None
