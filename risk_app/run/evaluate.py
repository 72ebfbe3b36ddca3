"""The evaluation stage: test metrics beside the baselines, charts, lift and fairness.

Reads the raw test scores fine-tuning saved and the policy's calibration and cut-off, so an
analyst can re-run it (other baselines, a new policy) without retraining. The baselines are
fitted on the same train split, with their cut-offs chosen on validation by the same policy
objective and decline cap, and scored on the same test applications in the same order. When
the data set's registered model has a champion, it is re-scored on the same test rows at its
own cut-off and shown as the row `champion`, so a challenger trained on the newest loans is
compared like for like; both models' scores on those rows are kept
(`report/champion_same_rows.parquet`, `EvaluationFacts.champion_same_rows`) for the paired
comparison promotion decides on (`risk_app.run.same_rows`).

On a data set with free-text columns the classical models that read the text too
(`logistic_tfidf`, `lightgbm_tfidf`, `lightgbm_embeddings`; evaluate/text_baselines.py) are
rows beside the tabular ones; one that cannot be fitted (say the sentence encoder could not be
fetched) is left out with its reason in `EvaluationFacts.baseline_notes`, never failing the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from data_contracts.spec import load_spec
from risk_app import paths
from risk_app.atomic import atomic_file
from risk_app.errors import RiskAppError
from risk_app.evaluate.baselines import score_baselines
from risk_app.evaluate.fairness import fairness_report, not_assessable
from risk_app.evaluate.metrics import score_predictions
from risk_app.evaluate.report import build_evaluation_report
from risk_app.evaluate.text_baselines import CLASSICAL_BASELINES, TEXT_BASELINE_NAMES, score_text_baselines
from risk_app.hybrid.config import LLM_ROW
from risk_app.hybrid.stage import llm_alone_on_test
from risk_app.registry.artifact import load_risk_model
from risk_app.registry.mlflow_resolve import resolve_model
from risk_app.run.dataset import structured_splits
from risk_app.run.record import ChampionRowFacts, EvaluationFacts, RunRecord
from risk_app.run.stages import baseline_policy_threshold, calibrated_scores

# Every classical model; the text-reading ones only run on a data set with text columns.
DEFAULT_BASELINES = CLASSICAL_BASELINES
# The row of `EvaluationFacts.baselines` holding the champion re-scored on the same test rows.
CHAMPION_ROW = "champion"
SAME_ROWS_FILE = "champion_same_rows.parquet"


def _baseline_metrics(
    record: RunRecord, frames: dict[str, pd.DataFrame], test_ids: list[str], names: Sequence[str], spec: Any
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """Each baseline's test Metrics, its test scores in the model's test order, and why any
    text baseline was skipped."""
    seed = record.need("training").config.seed
    train, val, test = frames["train"], frames["validation"], frames["test"]
    tabular = tuple(n for n in names if n not in TEXT_BASELINE_NAMES)
    fitted = score_baselines(train, val, test, names=tabular, seed=seed, spec=spec) if tabular else {}  # type: ignore[arg-type]
    text = tuple(n for n in names if n in TEXT_BASELINE_NAMES)
    text_scores, notes = (
        score_text_baselines(train, val, test, text, seed=seed, spec=spec) if text else ({}, {})
    )
    fitted.update(text_scores)
    y_val = val["default"].to_numpy(np.int64)
    order = pd.Index(test["application_id"].astype(str)).get_indexer(test_ids)
    y_test = test["default"].to_numpy(np.int64)[order]
    metrics, scores = {}, {}
    for name, (p_val, p_test) in fitted.items():
        threshold = baseline_policy_threshold(record, y_val, p_val)
        scores[name] = np.asarray(p_test)[order]
        metrics[name] = score_predictions(y_test, scores[name], threshold)
    return metrics, scores, notes


class ChampionOnTest(NamedTuple):
    """The champion re-scored on this run's test rows."""

    metrics: Any
    scores: np.ndarray
    version: str
    threshold: float


def _champion_on_test(
    frames: dict[str, pd.DataFrame], test_ids: list[str], model_name: str
) -> ChampionOnTest | None:
    """The current champion re-scored on this run's test rows at its own cut-off, or None when
    there is no registry or no champion yet (a first run), so challenger and champion are
    compared like for like on the newest loans."""
    uri = paths.mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None  # no registry yet: nothing to compare with (and no store to create)
    try:
        resolved = resolve_model("champion", name=model_name)
        champion = load_risk_model(resolved.local_artifact_dir)
        order = pd.Index(frames["test"]["application_id"].astype(str)).get_indexer(test_ids)
        test = frames["test"].iloc[order].reset_index(drop=True)
        p = np.asarray(champion.predict_proba(test), dtype=float)
    except (RiskAppError, KeyError, ValueError):
        # A champion that cannot score these rows (e.g. an older spec version lacking a column)
        # leaves the comparison to the promotion rule; it must not fail the evaluation.
        return None
    metrics = score_predictions(test["default"].to_numpy(np.int64), p, champion.threshold)
    return ChampionOnTest(metrics, p, str(resolved.version), float(champion.threshold))


def _keep_same_rows(
    out_dir: Path, model_name: str, champion: ChampionOnTest, test_ids: list[str], y_test: np.ndarray,
    p_test: np.ndarray,
) -> ChampionRowFacts:  # fmt: skip
    """Both models' scores on the test rows, written for promotion's paired comparison."""
    frame = pd.DataFrame(
        {"application_id": test_ids, "default": y_test, "challenger": p_test, "champion": champion.scores}
    )
    path = out_dir / SAME_ROWS_FILE
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return ChampionRowFacts(
        model_name=model_name, version=champion.version, threshold=champion.threshold, scores_path=str(path),
        rows=len(frame), defaults=int(np.sum(y_test)),
    )  # fmt: skip


def evaluate_run(
    record: RunRecord,
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    *,
    spec: Any = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    champion_model: str | None = None,
) -> RunRecord:
    """Score the test split under the run's policy, beside the baselines and the current champion
    of registered model `champion_model` (default: the data set's name); fairness; charts."""
    spec = load_spec(spec)
    policy = record.need("policy")
    y_test, p_test, test_ids = calibrated_scores(record, "test")
    test_ids = [str(i) for i in test_ids]
    frames = structured_splits(valid, examples)
    baseline_metrics, baseline_scores, notes = _baseline_metrics(record, frames, test_ids, baselines, spec)
    if record.hybrid is not None:  # the model is the LLM stacked with LightGBM: show the LLM alone too
        baseline_metrics[LLM_ROW], baseline_scores[LLM_ROW] = llm_alone_on_test(record, test_ids)
    registered = champion_model or spec.name
    champion = _champion_on_test(frames, test_ids, registered)
    if champion is not None:
        baseline_metrics[CHAMPION_ROW], baseline_scores[CHAMPION_ROW] = champion.metrics, champion.scores
    report = build_evaluation_report(
        y_test,
        p_test,
        policy.threshold,
        Path(record.run_dir) / "report",
        baselines=baseline_scores,
        model_name=record.method,
    )
    order = pd.Index(frames["test"]["application_id"].astype(str)).get_indexer(test_ids)
    test_rows = frames["test"].iloc[order].reset_index(drop=True)
    fairness = (
        fairness_report(test_rows, p_test, policy.threshold, spec=spec).to_dict()
        if spec.protected
        else not_assessable(spec)
    )
    same_rows = (
        _keep_same_rows(Path(report.out_dir), registered, champion, test_ids, y_test, p_test)
        if champion is not None
        else None
    )
    paths = {k: str(v) for k, v in report.paths.items()}
    facts = EvaluationFacts(
        test=score_predictions(y_test, p_test, policy.threshold),
        baselines=baseline_metrics,
        baseline_notes=notes,
        ece=report.ece,
        top_decile_lift=report.top_decile_lift,
        report_dir=str(report.out_dir),
        plots={k: v for k, v in paths.items() if v.endswith(".png")},
        lift_table=paths.get("lift_table", ""),
        fairness=fairness,
        fairness_flags=list(fairness.get("flags", [])),
        champion_same_rows=same_rows,
    )
    updated = record.model_copy(update={"evaluation": facts, "artifact": None})
    updated.save()
    return updated
