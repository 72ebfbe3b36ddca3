"""Batch scoring: validated applications in, PD + risk grade + decision out.

`score_applications` scores a DataFrame with a loaded risk model; `score_file` is the whole
production path for one file: resolve the model (registry alias, version or folder), load and
validate the file, quarantine invalid rows (never scored, always reported), score the rest,
check the output against `data_contracts/scored_application.py` and write it atomically.

    from risk_app.scoring.batch import score_file
    report = score_file("landing/batch_017.csv", "outputs/batch_017.scored.parquet")
    print(report.n_scored, report.n_quarantined, report.grade_counts)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from risk_app.data.validate import ID_COLUMN
from risk_app.errors import ConfigError, RiskAppError
from risk_app.scoring.grades import GRADE_BANDS, assign_grades, grade_names

OUTPUT_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
OUTPUT_COLUMNS: tuple[str, ...] = (
    ID_COLUMN,
    "probability_of_default",
    "risk_grade",
    "decision",
    "model_version",
    "scored_at",
)


class RiskModelLike(Protocol):
    """What scoring needs from `risk_app.registry.artifact.RiskModel`."""

    threshold: float
    version: str

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray: ...


@dataclass
class ScoreReport:
    """What happened to one input file."""

    input_path: str
    output_path: str
    quarantine_path: str | None
    model_ref: str
    model_version: str
    registry_version: str | None
    threshold: float
    n_in: int
    n_scored: int
    n_quarantined: int
    grade_counts: dict[str, int] = field(default_factory=dict)
    decline_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _predict(risk_model: RiskModelLike, df: pd.DataFrame, batch_size: int) -> np.ndarray:
    predict = risk_model.predict_proba
    # The artifact's predictor groups rows by token length into batches itself; pass the batch
    # size through when it takes one (a plain sklearn-like model does not).
    try:
        takes_batch = "batch_size" in inspect.signature(predict).parameters
    except (TypeError, ValueError):
        takes_batch = False
    raw = predict(df, batch_size=batch_size) if takes_batch else predict(df)
    p = np.asarray(raw, dtype=float).reshape(-1)
    version = getattr(risk_model, "version", "?")
    if p.shape[0] != len(df):
        raise RiskAppError(f"model {version}: returned {p.shape[0]} probabilities for {len(df)} applications")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise RiskAppError(f"model {version}: returned probabilities outside [0, 1] or NaN")
    return p


def score_applications(
    df: pd.DataFrame,
    risk_model: RiskModelLike,
    batch_size: int = 64,
    bands: Sequence[tuple[str, float]] | None = None,
) -> pd.DataFrame:
    """Score contract-valid applications: application_id, probability_of_default, risk_grade,
    decision ("decline" when PD >= the model's threshold), model_version, scored_at (UTC).

    Grades use `bands`, else the bands the model's credit policy named, else `GRADE_BANDS`."""
    bands = bands or getattr(risk_model, "grade_bands", None) or GRADE_BANDS
    if ID_COLUMN not in df.columns:
        raise ConfigError(f"score_applications: input has no `{ID_COLUMN}` column")
    if batch_size < 1:
        raise ConfigError(f"score_applications: batch_size must be >= 1, got {batch_size}")
    threshold = float(risk_model.threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"model {risk_model.version}: threshold {threshold} is not a probability")
    p = _predict(risk_model, df, batch_size) if len(df) else np.zeros(0, dtype=float)
    scored_at = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame(
        {
            ID_COLUMN: df[ID_COLUMN].astype(str).to_numpy(),
            "probability_of_default": p,
            "risk_grade": pd.Series(assign_grades(p, bands), dtype=object),
            "decision": np.where(p >= threshold, "decline", "approve").astype(object),
            "model_version": str(risk_model.version),
            "scored_at": pd.Series([scored_at] * len(p), dtype="datetime64[ns, UTC]"),
        },
        columns=list(OUTPUT_COLUMNS),
    )


def check_scored_output(scored: pd.DataFrame) -> None:
    """Validate against the ScoredApplication contract (its columns; `scored_at` is ours)."""
    from data_contracts.scored_application import SCORED_COLUMNS, ScoredApplication

    # The contract is strict on its own columns; scored_at is run metadata it does not list.
    ScoredApplication.validate(scored[list(SCORED_COLUMNS)], lazy=True)


def check_output_suffix(path: str | os.PathLike[str], what: str = "output") -> str:
    """The lower-case suffix of an output path; `ConfigError` unless it is .parquet or .csv."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"{path}: unsupported {what} format '{suffix or '(no suffix)'}'; "
            f"use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    return suffix


def write_frame(df: pd.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write a frame atomically as Parquet or CSV, chosen by suffix.

    CSV text cells that a spreadsheet would run as formulas are neutralized (see
    `risk_app.scoring.output`); with `overwrite=False` an existing file is refused.
    """
    from risk_app.scoring.output import write_output

    return write_output(df, path, overwrite=overwrite)


def default_quarantine_path(output_path: Path) -> Path:
    return output_path.with_name(f"{output_path.stem}.quarantine.parquet")


def score_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    model_ref: str = "champion",
    quarantine_path: str | os.PathLike[str] | None = None,
    *,
    model_name: str = "credit_risk_model",
    risk_model: RiskModelLike | None = None,
    batch_size: int = 64,
) -> ScoreReport:
    """Validate, quarantine, score and write one file. Returns the accounting.

    `risk_model`, when given, is used instead of resolving `model_ref` (a caller that already
    holds the model, e.g. a long-running sensor, saves reloading it per file).
    """
    source, target = Path(input_path), Path(output_path)
    check_output_suffix(target, "output")  # fail before any model loading
    q_path = Path(quarantine_path) if quarantine_path is not None else default_quarantine_path(target)
    check_output_suffix(q_path, "quarantine")

    from risk_app.data.load import load_applications
    from risk_app.data.validate import validate_applications

    registry_version: str | None = None
    if risk_model is None:
        from risk_app.registry.artifact import load_risk_model
        from risk_app.registry.mlflow_registry import resolve_model

        resolved = resolve_model(model_ref, name=model_name)
        registry_version = resolved.version if resolved.name else None
        risk_model = load_risk_model(resolved.local_artifact_dir)

    # The model's own data set (artifacts record their spec); older artifacts: the default one.
    spec = getattr(risk_model, "dataset_spec", None)
    result = validate_applications(
        load_applications(source, spec=spec), source=str(source), require_target=False, spec=spec
    )
    written_quarantine: str | None = None
    if result.n_quarantined:
        write_frame(result.quarantine, q_path)
        written_quarantine = str(q_path)

    scored = score_applications(result.valid, risk_model, batch_size=batch_size)
    check_scored_output(scored)
    write_frame(scored, target)

    counts = scored["risk_grade"].value_counts()
    n_scored = len(scored)
    if result.n_in != n_scored + result.n_quarantined:
        raise RuntimeError(
            f"{source}: scored {n_scored} + quarantined {result.n_quarantined} != {result.n_in} rows"
        )
    return ScoreReport(
        input_path=str(source),
        output_path=str(target),
        quarantine_path=written_quarantine,
        model_ref=str(model_ref),
        model_version=str(risk_model.version),
        registry_version=registry_version,
        threshold=float(risk_model.threshold),
        n_in=result.n_in,
        n_scored=n_scored,
        n_quarantined=result.n_quarantined,
        grade_counts={g: int(counts.get(g, 0)) for g in grade_names()},
        decline_rate=float((scored["decision"] == "decline").mean()) if n_scored else 0.0,
    )
