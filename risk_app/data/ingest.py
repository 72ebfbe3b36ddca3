"""The data stages before training, as one call each: a file in, valid rows and quarantine out;
valid rows in, text examples with their split out.

    validation = ingest_and_validate("loans.csv", spec=spec)
    examples = prepare_examples(validation.valid, spec=spec, seed=42)  # split="out_of_time": by date

They need only the data layer (pandas, pandera, the spec), so a process that prepares a lender's
rows (a Flower ClientApp, `risk_app.federated.lender`) does not import the training run's stages,
MLflow or the augmenters; `risk_app.workflow` offers both beside the stages that follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from data_contracts.spec import load_spec
from risk_app.data.examples import PreparationConfig, prepare_training_examples
from risk_app.data.load import load_applications
from risk_app.data.split import SplitKind
from risk_app.data.validate import ValidationResult, validate_applications


def ingest_and_validate(
    path: str | Path, require_target: bool | None = True, spec: Any = None
) -> ValidationResult:
    """Load a CSV/Parquet file and split it into contract-valid rows and quarantined rows.

    `require_target=None` decides from the file: a file that holds the target column is checked
    as training data (labels required, and the positive label must occur), else as scoring data.
    """
    frame = load_applications(path, spec=spec)
    if require_target is None:
        require_target = load_spec(spec).target.column in frame.columns
    return validate_applications(frame, source=str(path), require_target=require_target, spec=spec)


def prepare_examples(
    valid: pd.DataFrame,
    seed: int = 42,
    exclude_fields: Sequence[str] = (),
    spec: Any = None,
    *,
    split: SplitKind = "random",
    test_on: Literal["latest_vintage", "fractions"] = "latest_vintage",
) -> pd.DataFrame:
    """Serialize each valid application to text and assign its split: stratified 70/15/15 at
    random, or out of time (`risk_app.data.examples.PreparationConfig`)."""
    config = PreparationConfig(seed=seed, exclude_fields=list(exclude_fields), split=split, test_on=test_on)
    return prepare_training_examples(valid, config, spec=spec)
