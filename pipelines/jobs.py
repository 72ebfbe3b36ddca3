"""Jobs: training (ingest → register) and scoring (a batch of new applications)."""

from __future__ import annotations

import dagster as dg

TRAINING_GROUPS = ("ingest", "validation", "preparation", "training", "evaluation", "registry")

training_job = dg.define_asset_job(
    name="training_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest, validate, prepare, fine-tune, evaluate and register a risk model.",
    # One process: the DuckDB file takes one writer, and training wants every core.
    executor_def=dg.in_process_executor,
)

scoring_job = dg.define_asset_job(
    name="scoring_job",
    selection=dg.AssetSelection.groups("scoring"),
    description="Validate and batch-score a file of applications with the champion model.",
    executor_def=dg.in_process_executor,
)
