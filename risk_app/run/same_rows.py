"""The evidence promotion decides on: challenger and champion scored on the same rows.

A run's evaluation re-scores the registered model's champion on the run's test rows and keeps
both models' scores (`run.evaluate`, `EvaluationFacts.champion_same_rows`). `same_rows_evidence`
turns them into a `promotion.SameRowsEvidence`: every metric of both models on those rows and a
paired test of the promotion rule's metric (DeLong for the AUC, a paired bootstrap otherwise;
`evaluate.paired`). Registration and promotion (`run.register`, used by the CLI and the Dagster
assets alike) pass it to the registry, which decides on it when it re-scored the champion of
that moment, and on each version's recorded test metrics only when no such evidence exists.

The rows are the challenger's test rows the champion was never trained or validated on (the
evaluation leaves out those in the champion artifact's fit rows); the evidence's sentence says
how many were compared and how many were left out, or that the overlap is unknown (an older
champion artifact). When too few rows remain, the evidence carries only the reason
(`fallback`), and the verdict is made on the recorded metrics, naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from risk_app.evaluate.metrics import score_predictions
from risk_app.evaluate.paired import paired_comparison
from risk_app.registry.promotion import PromotionRule, SameRowsEvidence
from risk_app.run.evaluate import CHAMPION_ROW, FITTED_ON
from risk_app.run.record import ChampionRowFacts, RunRecord


def rows_in_words(facts: ChampionRowFacts) -> str:
    """The compared rows as the verdict names them, with what was left out and why."""
    everything = f"the challenger's {facts.rows} test rows"
    version = f"champion version {facts.version}"
    if facts.compared is None:  # a record made before fitted rows were left out
        return f"{everything} ({facts.defaults} defaults)"
    if not facts.overlap_known:
        return (
            f"{everything} ({facts.defaults} defaults; whether {version} trained or validated on any "
            "of them is unknown: its artifact records no fit rows)"
        )
    left_out = facts.excluded_train + facts.excluded_validation
    if left_out == 0:
        return f"{everything} ({facts.defaults} defaults; {version} was fitted on none of them)"
    return (
        f"the {facts.compared} of {everything} that {version} never trained or validated on "
        f"({facts.compared_defaults} defaults; {left_out} left out: it trained on {facts.excluded_train} "
        f"and validated on {facts.excluded_validation})"
    )


def same_rows_evidence(record: RunRecord, model_name: str, rule: PromotionRule) -> SameRowsEvidence | None:
    """The champion of `model_name` against this run on the run's test rows, or None when the
    evaluation re-scored no champion of that registered model (a first run, a champion that
    could not score these rows, a run registered under another name) or its scores are gone."""
    evaluation = record.evaluation
    if evaluation is None or evaluation.champion_same_rows is None:
        return None
    facts = evaluation.champion_same_rows
    if facts.model_name != model_name:
        return None
    excluded = (
        {"train": facts.excluded_train, "validation": facts.excluded_validation}
        if facts.overlap_known
        else None
    )
    if facts.fallback is not None:
        return SameRowsEvidence(
            champion_version=facts.version, rows=rows_in_words(facts), compared=facts.compared,
            excluded=excluded, fallback=facts.fallback,
        )  # fmt: skip
    path = Path(facts.scores_path)
    if CHAMPION_ROW not in evaluation.baselines or not path.is_file():
        return None
    rows = pd.read_parquet(path)
    if FITTED_ON in rows.columns:  # leave out the rows the champion was trained or validated on
        rows = rows.loc[rows[FITTED_ON].isin(["", "unknown"])]
    y = rows["default"].to_numpy(np.int64)
    mine, theirs = rows["challenger"].to_numpy(float), rows["champion"].to_numpy(float)
    threshold = float(evaluation.test.threshold)
    comparison = paired_comparison(
        y, mine, theirs, rule.metric, threshold_challenger=threshold, threshold_champion=facts.threshold,
        seed=record.training.config.seed if record.training is not None else 0,
    )  # fmt: skip
    return SameRowsEvidence(
        champion_version=facts.version,
        rows=rows_in_words(facts),
        challenger=score_predictions(y, mine, threshold).values(),
        champion=evaluation.baselines[CHAMPION_ROW].values(),
        comparison=comparison,
        compared=len(rows),
        excluded=excluded,
    )
