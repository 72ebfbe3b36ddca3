"""A hybrid run killed during fine-tuning resumes to a hybrid, not to the LLM alone.

The hybrid option is saved with the run when it starts (`RunRecord.planned_hybrid`), so
`risk-app train --resume RUN` stacks the LLM with LightGBM after the remaining epochs exactly
as the uninterrupted run would have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from risk_app import workflow
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.events import on_epoch_end
from risk_app.hybrid.model import HybridRiskModel
from risk_app.registry.artifact import load_risk_model
from risk_app.run import stages
from risk_app.run.record import RunRecord


class Killed(KeyboardInterrupt):
    pass


def _kill_after_first_epoch(epoch: dict) -> None:  # type: ignore[type-arg]
    if epoch["epoch"] == 1:
        raise Killed


def test_a_killed_hybrid_run_resumes_to_the_hybrid(small_file: Path, tiny_qwen2: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=2, max_length=64, seed=7, patience=0)
    with pytest.raises(Killed), on_epoch_end(_kill_after_first_epoch):
        workflow.train_run(
            validation.valid, examples, config, baselines=("logistic",), progress=False,
            run_id="killed-hybrid", hybrid={"stacker": "logistic", "n_folds": 3},
        )  # fmt: skip
    killed = stages.resumable_run("killed-hybrid")
    assert killed is not None and killed.hybrid is None  # killed before the hybrid stage
    assert killed.planned_hybrid is not None and killed.planned_hybrid.n_folds == 3

    result = CliRunner().invoke(
        app, ["train", "--resume", "killed-hybrid", "--no-register"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "hybrid:lora+logistic" in result.output and "llm_alone" in result.output

    record = RunRecord.load(killed.run_dir)
    assert [e.epoch for e in record.need("training").history] == [1, 2]
    hybrid = record.need("hybrid")
    assert hybrid.config.stacker == "logistic" and hybrid.config.n_folds == 3
    assert "llm_alone" in record.need("evaluation").baselines
    artifact = Path(record.need("artifact").path)
    assert json.loads((artifact / "risk_model.json").read_text())["version"].startswith("lora+logistic-")
    assert isinstance(load_risk_model(artifact), HybridRiskModel)
    assert (
        "# Model card: credit-risk model (hybrid:lora+logistic)" in (artifact / "MODEL_CARD.md").read_text()
    )
