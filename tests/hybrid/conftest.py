"""A tiny hybrid trained once per module: 240 German credit rows, one epoch of tiny-qwen2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.finetune.config import TrainConfig


@pytest.fixture
def small_file(risk_app_home: Path) -> Path:
    path = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(240, random_state=1).to_csv(path, index=False)
    return path


@pytest.fixture
def hybrid_run(small_file: Path, tiny_qwen2: Path):  # type: ignore[no-untyped-def]
    """(record, valid rows, examples) of a logistic-stacked hybrid run."""
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    config = TrainConfig(epochs=1, max_length=96, seed=7)
    record = workflow.train_run(
        validation.valid, examples, config, source=str(small_file), progress=False, hybrid="logistic"
    )
    return record, validation.valid, examples
