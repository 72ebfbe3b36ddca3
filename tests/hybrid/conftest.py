"""A tiny hybrid trained once per module: 240 German credit rows, one epoch of tiny-qwen2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.cli import app
from risk_app import workflow
from risk_app.finetune.config import TrainConfig


@pytest.fixture
def small_file(risk_app_home: Path) -> Path:
    path = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(240, random_state=1).to_csv(path, index=False)
    return path


def train_hybrid(small_file: Path, stacker: str):  # type: ignore[no-untyped-def]
    """(record, valid rows, examples) of a hybrid run of `small_file` stacked by `stacker`."""
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=96, seed=7)
    record = workflow.train_run(
        validation.valid, examples, config, source=str(small_file), progress=False, hybrid=stacker
    )
    return record, validation.valid, examples


def score_tail_from_cli(home: Path, version: object, rows: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`risk-app score --reasons 2` of the bundled file's last `rows` applications with model
    `version`: (the applications as written, the scores read back)."""
    source, out = home / "new.csv", home / "scores.parquet"
    frame = pd.read_csv(load_spec("german_credit").data_path).drop(columns="creditability").tail(rows)
    frame.to_csv(source, index=False)
    result = CliRunner().invoke(
        app, ["score", "-i", str(source), "-o", str(out), "--model", str(version), "--reasons", "2"],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return frame, pd.read_parquet(out)


@pytest.fixture
def hybrid_run(small_file: Path, tiny_qwen2: Path):  # type: ignore[no-untyped-def]
    """(record, valid rows, examples) of a logistic-stacked hybrid run."""
    return train_hybrid(small_file, "logistic")
