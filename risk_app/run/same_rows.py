"""The evidence promotion decides on: challenger and champion scored on the same rows.

A run's evaluation re-scores the registered model's champion on the run's test rows and keeps
both models' scores (`run.evaluate`, `EvaluationFacts.champion_same_rows`). `same_rows_evidence`
turns them into a `promotion.SameRowsEvidence`: every metric of both models on those rows and a
paired test of the promotion rule's metric (DeLong for the AUC, a paired bootstrap otherwise;
`evaluate.paired`). Registration and promotion (`run.register`, used by the CLI and the Dagster
assets alike) pass it to the registry, which decides on it when it re-scored the champion of
that moment, and on each version's recorded test metrics only when no such evidence exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from risk_app.evaluate.paired import paired_comparison
from risk_app.registry.promotion import PromotionRule, SameRowsEvidence
from risk_app.run.evaluate import CHAMPION_ROW
from risk_app.run.record import RunRecord


def same_rows_evidence(record: RunRecord, model_name: str, rule: PromotionRule) -> SameRowsEvidence | None:
    """The champion of `model_name` against this run on the run's test rows, or None when the
    evaluation re-scored no champion of that registered model (a first run, a champion that
    could not score these rows, a run registered under another name) or its scores are gone."""
    evaluation = record.evaluation
    if evaluation is None or evaluation.champion_same_rows is None:
        return None
    facts = evaluation.champion_same_rows
    if facts.model_name != model_name or CHAMPION_ROW not in evaluation.baselines:
        return None
    path = Path(facts.scores_path)
    if not path.is_file():
        return None
    rows = pd.read_parquet(path, columns=["default", "challenger", "champion"])
    comparison = paired_comparison(
        rows["default"].to_numpy(np.int64),
        rows["challenger"].to_numpy(float),
        rows["champion"].to_numpy(float),
        rule.metric,
        threshold_challenger=float(evaluation.test.threshold),
        threshold_champion=facts.threshold,
        seed=record.training.config.seed if record.training is not None else 0,
    )
    return SameRowsEvidence(
        champion_version=facts.version,
        rows=f"the challenger's {facts.rows} test rows ({facts.defaults} defaults)",
        challenger=evaluation.test.values(),
        champion=evaluation.baselines[CHAMPION_ROW].values(),
        comparison=comparison,
    )
