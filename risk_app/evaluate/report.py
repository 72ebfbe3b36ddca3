"""Evaluation report: lift table, calibration, KS curve and the files a validator reads.

`build_evaluation_report` turns test-set labels and scores (plus optional baseline scores on the
same rows) into a folder of PNG charts, `lift_table.csv` and `report.json`. Each file is written
atomically and `report.json` last, so its presence means the folder is complete.

    from risk_app.evaluate.report import build_evaluation_report
    report = build_evaluation_report(y_test, p_test, threshold=0.4, out_dir="var/outputs/eval",
                                     baselines={"logistic": p_logistic})
    print(report.ece, report.top_decile_lift, report.paths["roc"])

The numbers behind the charts (`lift_table`, `expected_calibration_error`, ...) come from
`risk_app.evaluate.curves`, which `plots` draws from too; this module depends on both, and
neither depends on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risk_app.atomic import atomic_write_json, atomic_write_text
from risk_app.errors import RiskAppError
from risk_app.evaluate import plots
from risk_app.evaluate.curves import check_scores, lift_table, require_both_classes, score_summary
from risk_app.evaluate.metrics import credit_metrics


@dataclass(frozen=True)
class EvaluationReport:
    """What `build_evaluation_report` wrote and the headline numbers, for metadata and cards."""

    out_dir: Path
    paths: dict[str, Path]
    ece: float
    top_decile_lift: float
    auc: float
    ks: float
    threshold: float
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "paths": {k: str(v) for k, v in self.paths.items()},
            "ece": self.ece,
            "top_decile_lift": self.top_decile_lift,
            "auc": self.auc,
            "ks": self.ks,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "baselines": self.baselines,
        }


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays from metrics dicts -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


_PNG_NAMES = {
    "roc": "roc_curve.png",
    "ks": "ks_curve.png",
    "reliability": "reliability.png",
    "score_distribution": "score_distribution.png",
    "confusion_matrix": "confusion_matrix.png",
}


def _checked_inputs(
    y_test: Any, p_test: Any, threshold: float, baselines: dict[str, np.ndarray] | None, model_name: str
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels, model scores and baseline scores as checked arrays; refuse what cannot be judged."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise RiskAppError(f"threshold={threshold!r} must be a probability in [0, 1]")
    y_arr, p_arr = check_scores(y_test, p_test)
    require_both_classes(y_arr, "an evaluation report")
    baselines = dict(baselines or {})
    if model_name in baselines:
        raise RiskAppError(f"baseline name {model_name!r} clashes with the model's own name")
    baseline_arrays = {
        name: check_scores(y_arr, s, name=f"baseline {name!r}")[1] for name, s in baselines.items()
    }
    return y_arr, p_arr, baseline_arrays


def _write_charts_and_lift(
    out: Path,
    y_arr: np.ndarray,
    p_arr: np.ndarray,
    all_scores: dict[str, np.ndarray],
    threshold: float,
    n_bins: int,
) -> tuple[dict[str, Path], pd.DataFrame]:
    """The five PNGs and lift_table.csv under `out`; returns their paths and the lift table."""
    paths = {key: out / name for key, name in _PNG_NAMES.items()}
    # ROC and reliability show the baselines beside the model; the others are the model's alone.
    plots.roc_curve_png(y_arr, all_scores, path=paths["roc"])
    plots.ks_curve_png(y_arr, p_arr, path=paths["ks"])
    plots.reliability_png(y_arr, all_scores, n_bins=n_bins, path=paths["reliability"])
    plots.score_distribution_png(y_arr, p_arr, threshold=threshold, path=paths["score_distribution"])
    plots.confusion_matrix_png(y_arr, p_arr, threshold, path=paths["confusion_matrix"])
    lift = lift_table(y_arr, p_arr, n_bins)
    paths["lift_table"] = atomic_write_text(out / "lift_table.csv", lift.to_csv(index=False))
    return paths, lift


def build_evaluation_report(
    y_test: Any,
    p_test: Any,
    threshold: float,
    out_dir: str | os.PathLike[str],
    baselines: dict[str, np.ndarray] | None = None,
    *,
    model_name: str = "model",
    n_bins: int = 10,
) -> EvaluationReport:
    """Write roc/ks/reliability/score-distribution/confusion PNGs, lift_table.csv, report.json.

    `baselines` maps a name (e.g. "logistic") to scores on the same test rows; they appear on
    the ROC and reliability charts and in `report.json` so the model is judged beside them.
    """
    # Setup: checked arrays and a clean output folder.
    y_arr, p_arr, baseline_arrays = _checked_inputs(y_test, p_test, threshold, baselines, model_name)
    all_scores = {model_name: p_arr, **baseline_arrays}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A stale report.json from an earlier run must not vouch for files this run may not finish.
    (out / "report.json").unlink(missing_ok=True)

    # Steps: charts and lift table, then the numbers for the model and each baseline.
    paths, lift = _write_charts_and_lift(out, y_arr, p_arr, all_scores, threshold, n_bins)
    summary = score_summary(y_arr, p_arr, n_bins)
    metrics = _jsonable(credit_metrics(y_arr, p_arr, threshold))
    baseline_numbers = {
        name: score_summary(y_arr, scores, n_bins)
        | {"metrics": _jsonable(credit_metrics(y_arr, scores, threshold))}
        for name, scores in baseline_arrays.items()
    }

    # Result: the report object, and report.json written from it.
    report = EvaluationReport(
        out_dir=out,
        paths=paths | {"report": out / "report.json"},
        ece=summary["ece"],
        top_decile_lift=summary["top_decile_lift"],
        auc=summary["auc"],
        ks=summary["ks"],
        threshold=float(threshold),
        metrics=metrics,
        baselines=baseline_numbers,
    )
    payload = report.to_dict() | {
        "model_name": model_name,
        "n": int(y_arr.size),
        "n_defaults": int(y_arr.sum()),
        "top_decile_capture_pct": summary["top_decile_capture_pct"],
        "lift_table": lift.to_dict(orient="records"),
    }
    # Written last: a report.json on disk means every file it lists is complete.
    atomic_write_json(out / "report.json", _jsonable(payload))
    return report
