"""Drift of one scoring batch, judged with its sample size in mind, in one plain sentence.

PSI on a small batch is mostly noise: 60 rows drawn from the training data itself can show an
age PSI above 0.25. So each feature's PSI is compared with a noise band: the 95th percentile of
the PSI between the training data and bootstrap samples of the batch's size drawn from the
training data itself (what PSI looks like when nothing moved). A feature drifts only when its
PSI is above both the threshold and that band; below `min_rows` scored rows the batch is "too
few rows to judge" (a warning, never a failure).

    report = batch_drift(train_df, batch_df, spec, reference_scores, batch_scores, DriftThresholds())
    print(report.sentence, report.status)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from risk_app.evaluate.drift import DriftThresholds, drift_features, feature_psi, psi, score_psi

BatchStatus = Literal["ok", "warn", "fail", "too_few_rows"]


class BatchDriftThresholds(DriftThresholds):
    """PSI thresholds plus what it takes to judge a batch at all."""

    min_rows: int = Field(
        default=200, ge=1, description="Fewer scored rows than this: too few to judge drift."
    )
    bootstrap_samples: int = Field(default=100, ge=10, le=2000, description="Resamples for each noise band.")


@dataclass(frozen=True)
class BatchDrift:
    """Per-feature PSI with its noise band and verdict, the batch's status and one sentence."""

    table: pd.DataFrame
    status: BatchStatus
    sentence: str
    rows: int


def noise_band(train: pd.Series, n: int, kind: str, samples: int, seed: int = 0) -> float:
    """95th percentile of PSI(train, a size-n resample of train): drift that is only chance."""
    rng = np.random.default_rng(seed)
    values = train.to_numpy()
    draws = [
        psi(values, values[rng.integers(0, len(values), size=n)], kind=kind, name=str(train.name))  # type: ignore[arg-type]
        for _ in range(samples)
    ]
    return float(np.quantile(draws, 0.95))


def _verdict(value: float, band: float, thresholds: DriftThresholds) -> str:
    if value <= band:
        return "ok" if value < thresholds.warn else "within noise"
    return "fail" if value >= thresholds.fail else "warn" if value >= thresholds.warn else "ok"


def _features(
    train: pd.DataFrame, batch: pd.DataFrame, spec: Any, thresholds: BatchDriftThresholds
) -> pd.DataFrame:
    columns, categorical = drift_features(spec)
    table = feature_psi(train, batch, columns, thresholds=thresholds, categorical_columns=categorical)
    bands = [
        noise_band(train[c], len(batch), kind, thresholds.bootstrap_samples, seed=i)
        for i, (c, kind) in enumerate(zip(table["column"], table["kind"], strict=True))
    ]
    table["noise_band"] = bands
    table["status"] = [_verdict(v, b, thresholds) for v, b in zip(table["psi"], bands, strict=True)]
    return table


def _sentence(table: pd.DataFrame, rows: int, status: BatchStatus) -> str:
    """One sentence: how many of the model's inputs moved beyond chance, and whether its score did
    (the score's own PSI is reported beside the inputs, not counted among them)."""
    if status == "too_few_rows":
        return ""
    if table.empty:
        return f"No reference population to compare {rows} scored rows with (model packaged without one)."
    moving = table["status"].isin(["warn", "fail"])
    is_score = table["kind"] == "score"
    moved, score_moved = table[moving & ~is_score], table[moving & is_score]
    if moved.empty and score_moved.empty:
        noisy = int((table["status"] == "within noise").sum())
        extra = f" ({noisy} above the warning level but within the noise of {rows} rows)" if noisy else ""
        return f"No drift beyond chance in {rows} scored rows{extra}."
    n_inputs = int((~is_score).sum())
    parts = []
    if not moved.empty:
        named = ", ".join(f"{r.column} PSI {r.psi:.2f} ({r.status})" for r in moved.head(4).itertuples())
        parts.append(f"{len(moved)} of {n_inputs} inputs moved beyond chance ({named})")
    elif n_inputs:
        parts.append(f"none of {n_inputs} inputs moved beyond chance")
    for r in score_moved.itertuples():
        parts.append(f"the score's distribution moved (PSI {r.psi:.2f}, {r.status})")
    return f"In {rows} scored rows " + " and ".join(parts) + "."


def batch_drift(
    train: pd.DataFrame | None,
    batch: pd.DataFrame,
    spec: Any,
    reference_scores: Sequence[float],
    batch_scores: Sequence[float],
    thresholds: BatchDriftThresholds | None = None,
) -> BatchDrift:
    """Judge one batch against the training data (features) and the model's holdout PDs (score)."""
    thresholds = thresholds or BatchDriftThresholds()
    rows = len(batch)
    if rows < thresholds.min_rows:
        sentence = (
            f"Too few rows to judge drift: {rows} scored, at least {thresholds.min_rows} needed "
            "(PSI on a small batch is mostly chance)."
        )
        return BatchDrift(pd.DataFrame(columns=["column", "kind", "psi", "noise_band", "status"]),
                          "too_few_rows", sentence, rows)  # fmt: skip
    # Artifacts packaged before models carried their training rows: the score alone is checked.
    columns = ["column", "kind", "psi", "noise_band", "status"]
    table = _features(train, batch, spec, thresholds) if train is not None else pd.DataFrame(columns=columns)
    if len(reference_scores) and len(batch_scores):
        value = score_psi(reference_scores, batch_scores)
        band = noise_band(
            pd.Series(reference_scores, name="score"), rows, "numeric", thresholds.bootstrap_samples
        )
        row = {"column": "probability_of_default", "kind": "score", "psi": value, "noise_band": band}
        table = pd.concat([table, pd.DataFrame([{**row, "status": _verdict(value, band, thresholds)}])])
    statuses = set(table["status"])
    status: BatchStatus = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"
    table = table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    return BatchDrift(table, status, _sentence(table, rows, status), rows)
