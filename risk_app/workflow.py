"""The stages of a training run as plain functions, shared by the CLI and the Dagster assets.

    validation = ingest_and_validate("loans.csv")
    examples = prepare_examples(validation.valid, seed=42)
    outcome = train_and_evaluate(validation.valid, examples, TrainConfig(method="lora"))
    version, decision = register_outcome(outcome)

Each function does one stage end to end and returns plain data, so the Dagster layer only
reads config, calls it and attaches metadata.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.loan_application import CATEGORICAL_COLUMNS, CONTRACT_VERSION, ID_COLUMN
from risk_app import paths
from risk_app.data.examples import build_training_examples, data_hash
from risk_app.data.load import load_applications
from risk_app.data.quality import detached_sorted_columns
from risk_app.data.validate import ValidationResult, validate_applications
from risk_app.errors import ConfigError
from risk_app.evaluate.baselines import evaluate_baselines, score_baselines
from risk_app.evaluate.calibration import fit_calibrator
from risk_app.evaluate.fairness import fairness_report
from risk_app.evaluate.metrics import credit_metrics, decision_threshold
from risk_app.evaluate.model_card import render_model_card
from risk_app.evaluate.report import EvaluationReport, build_evaluation_report
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import get_method
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainResult
from risk_app.registry.artifact import code_version, library_versions, save_risk_model

SPLITS = ("train", "validation", "test")


def ingest_and_validate(path: str | Path, require_target: bool = True) -> ValidationResult:
    """Load a CSV/Parquet file and split it into contract-valid rows and quarantined rows."""
    frame = load_applications(path)
    return validate_applications(frame, source=str(path), require_target=require_target)


def prepare_examples(valid: pd.DataFrame, seed: int = 42, exclude_fields: Sequence[str] = ()) -> pd.DataFrame:
    """Serialize each valid application to text and assign its stratified 70/15/15 split."""
    return build_training_examples(valid, seed=seed, exclude_fields=tuple(exclude_fields))


def excluded_fields(examples: pd.DataFrame) -> list[str]:
    """Fields left out of the serialized text, read off the texts themselves.

    The texts are the truth of what the model saw; deriving the exclusion from them means no
    caller (CLI, Dagster asset, notebook) can train with one set of fields and save another.
    """
    from risk_app.data.serialize import FIELD_LABELS, LABEL_TO_FIELD, clause_label, parse_clauses

    originals = examples.loc[~examples["augmented"].astype(bool), "text"]
    if originals.empty:
        return []
    present = {LABEL_TO_FIELD.get(clause_label(c)) for c in parse_clauses(str(originals.iloc[0]))}
    return [name for name in FIELD_LABELS if name not in present]


def structured_splits(valid: pd.DataFrame, examples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The original (non-augmented) structured rows of each split, for classical baselines."""
    originals = examples.loc[~examples["augmented"].astype(bool), ["application_id", "split"]]
    merged = valid.merge(originals, left_on=ID_COLUMN, right_on="application_id", how="inner")
    if ID_COLUMN != "application_id":
        merged = merged.drop(columns="application_id")
    return {name: merged.loc[merged["split"] == name].reset_index(drop=True) for name in SPLITS}


@dataclass
class TrainingOutcome:
    """Everything a finished training run produced, ready for registry and metadata."""

    run_id: str
    artifact_dir: Path
    report: EvaluationReport
    train: TrainResult
    threshold: float
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    baseline_metrics: dict[str, dict[str, Any]]
    fairness: dict[str, Any]
    data_hash: str
    train_config: TrainConfig
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Flat scalars for MLflow params/metrics, Dagster metadata and the CLI summary."""
        return {
            "run_id": self.run_id,
            "method": self.train_config.method,
            "base_model": self.train_config.base_model,
            "threshold": self.threshold,
            "artifact_dir": str(self.artifact_dir),
            **{f"test_{k}": v for k, v in self.test_metrics.items() if isinstance(v, (int, float))},
            **{f"train_{k}": v for k, v in self.train.summary().items() if isinstance(v, (int, float))},
        }


def new_run_id(method: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{method}-{secrets.token_hex(3)}"


def _texts_labels(examples: pd.DataFrame, split: str) -> tuple[list[str], np.ndarray]:
    part = examples.loc[examples["split"] == split]
    if split != "train":
        # Validation and test are judged on real applications only, never on augmented twins.
        part = part.loc[~part["augmented"].astype(bool)]
    if part.empty:
        raise ConfigError(f"the {split} split is empty; the data set is too small to train on")
    return part["text"].tolist(), part["default"].to_numpy(dtype=np.int64)


def train_and_evaluate(
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    train_config: TrainConfig,
    *,
    progress: bool = True,
    run_id: str | None = None,
    baselines: Sequence[str] = ("logistic", "lightgbm"),
    exclude_fields: Sequence[str] | None = None,
    data_source: str = "",
) -> TrainingOutcome:
    """Fine-tune, pick the threshold on validation, evaluate on test beside the baselines.

    Writes `runs/<run_id>/checkpoints/` (one per epoch), `report/` (plots, lift table) and
    `artifact/` (the self-describing risk model with its model card), each atomically.
    """
    method = get_method(train_config.method)
    method_cfg = method.parse_config(train_config.method_params)
    seen_excluded = excluded_fields(examples)
    if exclude_fields is not None and set(exclude_fields) != set(seen_excluded):
        raise ConfigError(
            f"exclude_fields {sorted(exclude_fields)} do not match the training texts, "
            f"which leave out {sorted(seen_excluded)}"
        )
    exclude_fields = seen_excluded
    run_id = run_id or new_run_id(train_config.method)
    run_dir = paths.runs_dir() / run_id
    hash_of_data = data_hash(examples)

    train_texts, y_train = _texts_labels(examples, "train")
    val_texts, y_val = _texts_labels(examples, "validation")
    test_texts, y_test = _texts_labels(examples, "test")

    result = train_classifier(
        train_texts,
        y_train,
        val_texts,
        y_val,
        train_config,
        checkpoint_dir=run_dir / "checkpoints",
        method=method,
        progress=progress,
    )
    p_val = result.best_val_proba
    if p_val is None:
        p_val = predict_proba(
            result.model, result.tokenizer, val_texts, train_config.eval_batch_size, train_config.max_length
        )
    p_test = predict_proba(
        result.model, result.tokenizer, test_texts, train_config.eval_batch_size, train_config.max_length
    )
    # Calibrate on validation (monotone: ranking and AUC unchanged), then choose the threshold
    # on the calibrated validation scores, so the saved model's PDs and threshold agree.
    calibrator = fit_calibrator(train_config.calibration, y_val, p_val)
    p_val, p_test = calibrator.transform(p_val), calibrator.transform(p_test)
    threshold = decision_threshold(
        y_val, p_val, train_config.threshold_objective, train_config.max_decline_rate
    )
    val_metrics = credit_metrics(y_val, p_val, threshold)
    test_metrics = credit_metrics(y_test, p_test, threshold)

    frames = structured_splits(valid, examples)
    fitted = score_baselines(
        frames["train"], frames["validation"], frames["test"], names=tuple(baselines), seed=train_config.seed
    )
    baseline_metrics = evaluate_baselines(
        frames["train"], frames["validation"], frames["test"], names=tuple(baselines), scores=fitted
    )
    baseline_scores = {name: p_test for name, (_, p_test) in fitted.items()}
    # The LLM's test rows and the baselines' test rows must be the same applications in the
    # same order for the side-by-side charts.
    test_ids = examples.loc[
        (examples["split"] == "test") & ~examples["augmented"].astype(bool), "application_id"
    ]
    order = pd.Index(frames["test"][ID_COLUMN]).get_indexer(test_ids)
    baseline_scores = {name: scores[order] for name, scores in baseline_scores.items()}
    report = build_evaluation_report(
        y_test,
        p_test,
        threshold,
        run_dir / "report",
        baselines=baseline_scores,
        model_name=train_config.method,
    )
    fairness = fairness_report(frames["test"].iloc[order].reset_index(drop=True), p_test, threshold).to_dict()

    train_summary = result.summary()
    metadata = {
        "name": f"credit_risk_model ({train_config.method})",
        # The registry version is assigned after the card is written; the run id links the two.
        "version": f"run {run_id}",
        "method": train_config.method,
        "method_config": method_cfg.model_dump(),
        "base_model": train_config.base_model,
        "threshold": threshold,
        "threshold_objective": (
            f"{train_config.threshold_objective} on the validation split"
            + (
                f", decline rate capped at {train_config.max_decline_rate:.0%}"
                if train_config.max_decline_rate
                else ""
            )
        ),
        "data_hash": hash_of_data,
        "data_source": data_source,
        "contract_version": CONTRACT_VERSION,
        "rows": {s: int((examples["split"] == s).sum()) for s in SPLITS},
        "augmented_rows": int(examples["augmented"].astype(bool).sum()),
        "training": train_summary,
        "train_config": train_config.model_dump(),
    }
    metadata.update(
        {
            "code_version": code_version(),
            "library_versions": library_versions(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "calibration": calibrator.describe(),
            "exclude_fields": list(exclude_fields),
        }
    )
    card_metrics = {**test_metrics, "val_roc_auc": val_metrics["roc_auc"]}
    detached = detached_sorted_columns(valid, CATEGORICAL_COLUMNS)
    warnings = [
        f"Data quality: `{column}` is sorted in contiguous blocks in the training file while the rows are "
        "not, so it has probably been detached from its rows upstream; treat it (and any fairness "
        "result grouped by it) as unreliable."
        for column in detached
    ]
    card = render_model_card(metadata, card_metrics, baseline_metrics, fairness, extra_limitations=warnings)
    artifact_dir = save_risk_model(
        run_dir / "artifact",
        method_name=train_config.method,
        method_config=method_cfg.model_dump(),
        train_config=train_config.model_dump(),
        model=result.model,
        tokenizer=result.tokenizer,
        threshold=threshold,
        metrics={"test": test_metrics, "validation": val_metrics, "baselines": baseline_metrics},
        data_hash=hash_of_data,
        contract_version=CONTRACT_VERSION,
        extra={
            "run_id": run_id,
            "data_source": data_source,
            "calibration": calibrator.to_dict(),
            # Methods that pick parameters by name (freeze) record exactly which ones trained.
            "trainable_parameter_names": list(getattr(method, "trainable_names", None) or []),
            "data_quality_warnings": warnings,
            "training": train_summary,
            "history": result.history,
            "rows": metadata["rows"],
            # Scoring must serialize new applications exactly as training did.
            "exclude_fields": list(exclude_fields),
            "ece": report.ece,
            "top_decile_lift": report.top_decile_lift,
            "fairness_flags": fairness.get("flags", []),
            # Holdout scores are the reference distribution for score drift (PSI) at scoring time.
            "reference_scores": np.concatenate([p_val, p_test]).round(6).tolist(),
        },
        extra_files={"MODEL_CARD.md": card},
    )
    return TrainingOutcome(
        run_id=run_id,
        artifact_dir=Path(artifact_dir),
        report=report,
        train=result,
        threshold=threshold,
        val_metrics=val_metrics,
        test_metrics=test_metrics,
        baseline_metrics=baseline_metrics,
        fairness=fairness,
        data_hash=hash_of_data,
        train_config=train_config,
    )


def outcome_record(outcome: TrainingOutcome) -> dict[str, Any]:
    """A picklable, JSON-friendly summary of a run (no model objects), for Dagster and the CLI."""
    card_path = outcome.artifact_dir / "MODEL_CARD.md"
    return {
        "run_id": outcome.run_id,
        "artifact_dir": str(outcome.artifact_dir),
        "method": outcome.train_config.method,
        "train_config": outcome.train_config.model_dump(),
        "threshold": outcome.threshold,
        "data_hash": outcome.data_hash,
        "val_metrics": outcome.val_metrics,
        "test_metrics": outcome.test_metrics,
        "baseline_metrics": outcome.baseline_metrics,
        "fairness": outcome.fairness,
        "report": outcome.report.to_dict(),
        "training": outcome.train.summary(),
        "model_card": card_path.read_text(encoding="utf-8") if card_path.exists() else "",
    }


METRIC_COLUMNS = ("roc_auc", "ks", "gini", "brier", "f1", "precision", "recall", "accuracy", "threshold")


def metrics_frame(record: dict[str, Any]) -> pd.DataFrame:
    """One row per model (the fine-tuned LLM first, then each baseline) on the same test split."""
    rows = [
        {"model": f"llm:{record['method']}", **{k: record["test_metrics"].get(k) for k in METRIC_COLUMNS}}
    ]
    for name, metrics in record["baseline_metrics"].items():
        rows.append({"model": name, **{k: metrics.get(k) for k in METRIC_COLUMNS}})
    return pd.DataFrame(rows)


def register_record(
    record: dict[str, Any], *, model_name: str = "credit_risk_model", rule: Any = None
) -> dict[str, Any]:
    """Register the run's artifact as a new MLflow version and record the promotion verdict.

    The version gets alias `challenger`; whether it becomes `champion` is decided by `rule`
    here and carried out by `promote_record` (in Dagster, behind a blocking asset check).
    """
    from risk_app.registry import mlflow_registry

    metrics = {f"test_{k}": v for k, v in record["test_metrics"].items()}
    metrics.update({f"val_{k}": v for k, v in record["val_metrics"].items()})
    metrics.update({f"train_{k}": v for k, v in record["training"].items()})
    for name, values in record["baseline_metrics"].items():
        metrics.update({f"{name}_{k}": v for k, v in values.items()})
    metrics.update({"ece": record["report"]["ece"], "top_decile_lift": record["report"]["top_decile_lift"]})
    info = mlflow_registry.register_model_version(
        record["artifact_dir"],
        metrics=metrics,
        params={"train": record["train_config"], "threshold": record["threshold"]},
        tags={"run_id": record["run_id"]},
        model_name=model_name,
        run_name=record["run_id"],
        extra_artifacts=[Path(p) for p in record["report"]["paths"].values()],
    )
    decision = mlflow_registry.evaluate_promotion(model_name, info.version, rule)
    mlflow_registry.record_decision(model_name, info.version, decision, rule)
    return {
        "name": model_name,
        "version": info.version,
        "run_id": info.run_id,
        "decision": decision.model_dump(),
    }


def promote_record(registered: dict[str, Any], actor: str = "risk-app") -> None:
    """Carry out a positive promotion verdict: the version becomes `champion`."""
    from risk_app.registry import mlflow_registry

    if registered["decision"]["promote"]:
        mlflow_registry.set_champion(
            registered["name"], registered["version"], reason=registered["decision"]["reason"], actor=actor
        )


def augment_examples(
    examples: pd.DataFrame, valid: pd.DataFrame, seed: int = 42, **options: Any
) -> pd.DataFrame:
    """The training split plus nlpaug-augmented copies (validation and test untouched)."""
    from risk_app.augment.config import AugmentConfig
    from risk_app.augment.pipeline import augment_training_examples

    config = AugmentConfig(enabled=True, seed=seed, **options)
    return augment_training_examples(examples, valid, config).frame
