"""The evaluation stage: test metrics beside the baselines, charts, lift and fairness.

Reads the raw test scores fine-tuning saved and the policy's calibration and cut-off, so an
analyst can re-run it (other baselines, a new policy) without retraining. The baselines are
fitted on the same train split, with their cut-offs chosen on validation by the same policy
objective and decline cap, and scored on the same test applications in the same order. When
the data set's registered model has a champion, it is re-scored on the same test rows at its
own cut-off and shown as the row `champion`, so a challenger trained on the newest loans is
compared like for like; both models' scores on those rows are kept
(`report/champion_same_rows.parquet`, `EvaluationFacts.champion_same_rows`) for the paired
comparison promotion decides on (`risk_app.run.same_rows`). Test rows the champion was trained
or validated on (its artifact's `fit_rows.parquet`: a different split of an overlapping book)
would favour it, so they are left out: the row `champion` is both models' comparison on the rest,
and when rows were left out and fewer than `MIN_SAME_ROWS` remain (or one class only) there is no such row and
promotion decides on the recorded metrics, saying why. An older champion without fit rows is
compared on all rows, its overlap with them unknown (the note says so).

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
from risk_app.registry.artifact import load_risk_model, read_fit_rows
from risk_app.registry.mlflow_resolve import resolve_model
from risk_app.run.dataset import structured_splits
from risk_app.run.record import ChampionRowFacts, EvaluationFacts, RunRecord
from risk_app.run.stages import baseline_policy_threshold, calibrated_scores

# Every classical model; the text-reading ones only run on a data set with text columns.
DEFAULT_BASELINES = CLASSICAL_BASELINES
# The row of `EvaluationFacts.baselines` holding the champion re-scored on the same test rows.
CHAMPION_ROW = "champion"
SAME_ROWS_FILE = "champion_same_rows.parquet"
# Fewer compared rows than this (after leaving out those the champion was fitted on) decide nothing.
MIN_SAME_ROWS = 30
# Column of SAME_ROWS_FILE: the split the champion was fitted on the row in ("train",
# "validation"), "" when it never saw the row, "unknown" when its artifact does not say.
FITTED_ON = "champion_fitted_on"
UNKNOWN = "unknown"


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
    """The champion re-scored on this run's test rows: scores on all of them (test order), which
    of them it was fitted on, and its metrics on the others (None when they cannot decide)."""

    metrics: Any
    scores: np.ndarray
    version: str
    threshold: float
    fitted_on: np.ndarray  # per test row: "train", "validation", "" (never seen) or UNKNOWN
    fallback: str | None

    @property
    def compared(self) -> np.ndarray:
        """Mask of the test rows the comparison uses: those the champion was not fitted on."""
        return np.isin(self.fitted_on, ["", UNKNOWN])

    def excluded(self, split: str) -> int:
        return int(np.sum(self.fitted_on == split))


def _fitted_on(folder: Path, test_ids: list[str]) -> np.ndarray:
    """Per test row, the split the champion in `folder` was fitted on it in ("" if none), or
    UNKNOWN throughout for an artifact that does not record its fit rows."""
    fit = read_fit_rows(folder)
    if fit is None:
        return np.full(len(test_ids), UNKNOWN, dtype=object)
    split_of = dict(zip(fit["application_id"], fit["split"], strict=True))
    return np.array([split_of.get(i, "") for i in test_ids], dtype=object)


def _why_no_comparison(y: np.ndarray, total: int, version: str, fitted_on: np.ndarray) -> str | None:
    """Why the rows the champion was not fitted on cannot decide, or None when they can.

    The `MIN_SAME_ROWS` floor applies only when rows were left out: a small test split the
    champion never saw is still the fairest comparison there is (the recorded metrics come from
    other, equally small splits), so it decides as before."""
    n, defaults = len(y), int(np.sum(y))
    if (n == total or n >= MIN_SAME_ROWS) and 0 < defaults < n:
        return None
    left_out = total - n
    trained, validated = int(np.sum(fitted_on == "train")), int(np.sum(fitted_on == "validation"))
    what = (
        f"only {n} of the challenger's {total} test rows are rows champion version {version} was never "
        f"trained or validated on ({left_out} left out: it trained on {trained} and validated on {validated})"
    )
    if n < MIN_SAME_ROWS:
        return f"{what}, fewer than the {MIN_SAME_ROWS} a same-rows comparison needs"
    return f"{what}, and they hold {'no defaults' if defaults == 0 else 'no good loans'}"


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
        fitted_on = _fitted_on(Path(resolved.local_artifact_dir), test_ids)
    except (RiskAppError, KeyError, ValueError):
        # A champion that cannot score these rows (e.g. an older spec version lacking a column)
        # leaves the comparison to the promotion rule; it must not fail the evaluation.
        return None
    version, threshold = str(resolved.version), float(champion.threshold)
    y = test["default"].to_numpy(np.int64)
    kept = np.isin(fitted_on, ["", UNKNOWN])
    fallback = _why_no_comparison(y[kept], len(y), version, fitted_on)
    metrics = score_predictions(y[kept], p[kept], threshold) if fallback is None else None
    return ChampionOnTest(metrics, p, version, threshold, fitted_on, fallback)


def champion_note(champion: ChampionOnTest, y_test: np.ndarray) -> str | None:
    """What the row `champion` is measured on, when that is not simply all test rows."""
    if champion.fallback is not None:
        return f"no same-rows comparison: {champion.fallback}; promotion decides on the recorded metrics"
    kept = champion.compared
    if np.all(champion.fitted_on == UNKNOWN):
        return (
            f"version {champion.version} on all {len(kept)} test rows; whether it trained or validated "
            "on any of them is unknown (its artifact records no fit rows)"
        )
    left_out = int(np.sum(~kept))
    if left_out == 0:
        return None
    return (
        f"version {champion.version} and this model compared on the {int(np.sum(kept))} of {len(kept)} "
        f"test rows ({int(np.sum(y_test[kept]))} defaults) it was never fitted on; {left_out} left out: it "
        f"trained on {champion.excluded('train')} and validated on {champion.excluded('validation')}"
    )


def _keep_same_rows(
    out_dir: Path, model_name: str, champion: ChampionOnTest, test_ids: list[str], y_test: np.ndarray,
    p_test: np.ndarray,
) -> ChampionRowFacts:  # fmt: skip
    """Both models' scores on all test rows, and which of them the champion was fitted on,
    written for promotion's paired comparison (on the rows it was not fitted on)."""
    frame = pd.DataFrame(
        {"application_id": test_ids, "default": y_test, "challenger": p_test, "champion": champion.scores,
         FITTED_ON: champion.fitted_on.astype(str)}
    )  # fmt: skip
    path = out_dir / SAME_ROWS_FILE
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)
    kept = champion.compared
    return ChampionRowFacts(
        model_name=model_name, version=champion.version, threshold=champion.threshold, scores_path=str(path),
        rows=len(frame), defaults=int(np.sum(y_test)), compared=int(np.sum(kept)),
        compared_defaults=int(np.sum(y_test[kept])), excluded_train=champion.excluded("train"),
        excluded_validation=champion.excluded("validation"),
        overlap_known=not np.any(champion.fitted_on == UNKNOWN), fallback=champion.fallback,
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
        # The row `champion` is what promotion decides on: the rows it was not fitted on, or
        # none at all when those cannot decide. The charts draw every model on all test rows,
        # so they show the champion only when no row was left out.
        if champion.metrics is not None:
            baseline_metrics[CHAMPION_ROW] = champion.metrics
        if champion.metrics is not None and bool(np.all(champion.compared)):
            baseline_scores[CHAMPION_ROW] = champion.scores
        note = champion_note(champion, y_test)
        if note is not None:
            notes[CHAMPION_ROW] = note
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
