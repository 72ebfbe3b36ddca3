"""The stages of a training run, each a function from the run record to the next record.

    record = start_run(valid, examples, source="loans.csv", spec=spec)
    record, trained = fine_tune(record, examples, plan_training(TrainConfig(method="lora")))  # run.plan
    record = choose_credit_policy(record, PolicyConfig(max_decline_rate=0.3))
    record = evaluate_run(record, valid, examples, spec=spec)
    record = package_run(record)                 # risk_app.run.package
    record = register_run(record, model_name)    # risk_app.run.register

Each stage writes its files under the run folder, adds its section to the record and saves the
record, so the next stage (or a re-run of this one from the Dagster UI) needs nothing held in
memory: policy and evaluation read the raw scores fine-tuning saved, packaging reads the
trained weights. The CLI and the Dagster assets call these same functions in the same order.
"""

from __future__ import annotations

import datetime as dt
import secrets
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import save_file

from data_contracts.spec import load_spec
from risk_app import paths
from risk_app.atomic import atomic_dir, atomic_write_text
from risk_app.data.examples import data_hash
from risk_app.errors import ConfigError
from risk_app.evaluate.calibration import Calibrator
from risk_app.evaluate.metrics import score_predictions
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.events import on_epoch_end
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import MethodChoice
from risk_app.finetune.resume import resuming
from risk_app.finetune.trainer import train_classifier
from risk_app.finetune.types import TrainResult
from risk_app.hybrid.config import HybridConfig
from risk_app.policy.credit import PolicyConfig, choose_cutoff, choose_policy, strategy_table
from risk_app.run.dataset import dataset_facts
from risk_app.run.plan import TrainingPlan
from risk_app.run.record import RECORD_FILE, EpochRecord, PolicyFacts, RunRecord, StrategyRow, TrainingFacts
from risk_app.run.tracking import training_run

SPLITS = ("train", "validation", "test")
TRAINED_DIR = "trained"
WEIGHTS_FILE = "weights.safetensors"
TOKENIZER_DIR = "tokenizer"
PREDICTIONS_FILE = "predictions.parquet"
REFERENCE_FILE = "reference_features.parquet"
VALID_FILE = "valid_applications.parquet"
EXAMPLES_FILE = "examples.parquet"
SPEC_COPY = "dataset_spec.yaml"
REFERENCE_ROWS = 5000  # enough to bin every input; small enough to travel inside the artifact


def new_run_id(method: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{method}-{secrets.token_hex(3)}"


def start_run(
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    *,
    source: str = "",
    spec: Any = None,
    method: str = "run",
    run_id: str | None = None,
    split_strategy: str = "stratified",
    split_seed: int = 42,
    hybrid: HybridConfig | None = None,
) -> RunRecord:
    """A new run folder and its record, holding the facts about the data it trains on (and the
    hybrid option, so a resumed run stacks the LLM as the killed one would have)."""
    run_id = run_id or new_run_id(method)
    run_dir = paths.runs_dir() / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_reference_sample(valid, examples, run_dir / REFERENCE_FILE)
    # What a resumed run needs to train on exactly the same data: the rows, the texts and splits,
    # and the spec they were validated and serialized with.
    valid.to_parquet(run_dir / VALID_FILE, index=False)
    examples.to_parquet(run_dir / EXAMPLES_FILE, index=False)
    atomic_write_text(run_dir / SPEC_COPY, load_spec(spec).to_yaml())
    facts = dataset_facts(
        valid,
        examples,
        source=source,
        spec=spec,
        data_hash=data_hash(examples),
        split_strategy=split_strategy,
        split_seed=split_seed,
    )
    record = RunRecord(run_id=run_id, run_dir=str(run_dir), dataset=facts, planned_hybrid=hybrid)
    record.save()
    return record


def _save_reference_sample(valid: pd.DataFrame, examples: pd.DataFrame, path: Path) -> None:
    """The training split's structured rows (a seeded sample): drift at scoring time is
    measured against these, so a model carries its own reference population."""
    train_ids = set(examples.loc[examples["split"] == "train", "source_application_id"].astype(str))
    rows = valid.loc[valid["application_id"].astype(str).isin(train_ids)]
    rows = rows.sample(min(len(rows), REFERENCE_ROWS), random_state=0) if len(rows) > REFERENCE_ROWS else rows
    rows.drop(columns=["default", "source_row"], errors="ignore").to_parquet(path, index=False)


def resumable_run(run_id: str) -> RunRecord | None:
    """The record of run `run_id` if it started training and did not finish, else None."""
    run_dir = paths.runs_dir() / run_id
    if not (run_dir / RECORD_FILE).is_file():
        return None
    record = RunRecord.load(run_dir)
    return record if record.planned_training is not None and record.training is None else None


def texts_and_labels(examples: pd.DataFrame, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, 0/1 labels and ids of one split; validation and test hold real applications only."""
    part = examples.loc[examples["split"] == split]
    if split != "train":
        part = part.loc[~part["augmented"].astype(bool)]
    if part.empty:
        raise ConfigError(f"the {split} split is empty; the data set is too small to train on")
    return part["text"].tolist(), part["default"].to_numpy(dtype=np.int64), part["application_id"].tolist()


def _save_trained(result: TrainResult, choice: MethodChoice, out_dir: Path) -> Path:
    """The trained part of the model (the parameter method's saved state) and the tokenizer, atomically."""
    saved = choice.method.state_to_save(result.model)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in saved.items()}
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"method": choice.name})
        result.tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
    return out_dir


def _save_predictions(result: TrainResult, examples: pd.DataFrame, config: TrainConfig, path: Path) -> None:
    """Raw P(default) on validation (best epoch) and test, so later stages need no model."""
    frames = []
    for split in ("validation", "test"):
        texts, labels, ids = texts_and_labels(examples, split)
        if split == "validation" and result.best_val_proba is not None:
            raw = result.best_val_proba
        else:
            raw = predict_proba(
                result.model, result.tokenizer, texts, config.eval_batch_size, config.max_length
            )
        frames.append(pd.DataFrame({"application_id": ids, "split": split, "default": labels, "p_raw": raw}))
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)


def _token_lengths(tokenizer: Any, texts: pd.Series, slice_rows: int = 1024) -> np.ndarray:
    """Tokens of each text as the model encodes it (untruncated), counted slice by slice."""
    lengths: list[int] = []
    for start in range(0, len(texts), slice_rows):
        piece = texts.iloc[start : start + slice_rows].tolist()
        lengths += [len(ids) for ids in tokenizer(piece, padding=False, verbose=False)["input_ids"]]
    return np.asarray(lengths, dtype=np.int64)


def fine_tune(
    record: RunRecord,
    examples: pd.DataFrame,
    plan: TrainingPlan,
    *,
    progress: bool = True,
    resume: bool = False,
) -> tuple[RunRecord, TrainResult]:
    """Train the model `plan` describes (`run.plan.plan_training`); save its weights and raw
    validation/test scores; record what happened.

    With `resume`, training continues from the run's newest complete epoch checkpoint."""
    config = plan.config
    record = record.model_copy(update={"planned_training": config})
    record.save()
    train_texts, y_train, _ = texts_and_labels(examples, "train")
    val_texts, y_val, _ = texts_and_labels(examples, "validation")
    run_dir = Path(record.run_dir)
    tracked = training_run(record, config, plan.method_params, resume=resume)
    with tracked as tracker, on_epoch_end(tracker.log_epoch), resuming() if resume else nullcontext():
        result = train_classifier(
            train_texts,
            y_train,
            val_texts,
            y_val,
            config,
            checkpoint_dir=run_dir / "checkpoints",
            choice=plan.choice,
            progress=progress,
            dataset=run_dataset(record),
            exclude_fields=record.dataset.excluded_fields,
        )
    return record_training(record, result, examples, plan, tracker.mlflow_run_id), result


def record_training(
    record: RunRecord,
    result: TrainResult,
    examples: pd.DataFrame,
    plan: TrainingPlan,
    mlflow_run_id: str = "",
) -> RunRecord:
    """Save a trained model's weights and raw validation/test scores under the run, and record them.

    `fine_tune` ends here; a model trained elsewhere (a federated consortium's) enters the run
    here too, and the later stages treat it like any other."""
    config = plan.config
    run_dir = Path(record.run_dir)
    trained_dir = _save_trained(result, plan.choice, run_dir / TRAINED_DIR)
    _save_predictions(result, examples, config, run_dir / PREDICTIONS_FILE)
    lengths = _token_lengths(result.tokenizer, examples.loc[~examples["augmented"].astype(bool), "text"])
    facts = TrainingFacts(
        config=config,
        method_params=plan.method_config,
        **result.numbers(),
        epochs_run=len(result.history),
        texts_over_max_length=int((lengths > config.max_length).sum()),
        longest_text_tokens=int(lengths.max(initial=0)),
        history=[EpochRecord(**epoch) for epoch in result.history],
        trained_dir=str(trained_dir),
        mlflow_run_id=mlflow_run_id,
        predictions_path=str(run_dir / PREDICTIONS_FILE),
    )
    later = ("hybrid", "policy", "evaluation", "artifact", "registration")  # stale once retrained
    updated = record.model_copy(update={"training": facts, **dict.fromkeys(later)})
    updated.save()
    return updated


def run_dataset(record: RunRecord) -> str:
    """The run's data set for the trainer: its spec as the run recorded it (the copy in the run
    folder), else its name."""
    copy = Path(record.run_dir) / SPEC_COPY
    return str(copy) if copy.is_file() else record.dataset.name


def read_predictions(record: RunRecord, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, raw scores, ids) of one split from the fine-tuning stage (or, when the run
    stacks a hybrid, the hybrid stage's stacked scores)."""
    source = record.hybrid.predictions_path if record.hybrid else record.need("training").predictions_path
    frame = pd.read_parquet(source)
    part = frame.loc[frame["split"] == split]
    return part["default"].to_numpy(np.int64), part["p_raw"].to_numpy(float), part["application_id"].tolist()


def choose_credit_policy(record: RunRecord, config: PolicyConfig | None = None) -> RunRecord:
    """Fit calibration and choose the cut-off on validation; record the policy and its trade-off."""
    config = config or PolicyConfig()
    y_val, raw_val, _ = read_predictions(record, "validation")
    chosen = choose_policy(y_val, raw_val, config, record.dataset.costs)
    p_val = chosen.calibrator.transform(raw_val)
    table = strategy_table(y_val, p_val, chosen.costs)
    at_cutoff = strategy_table(y_val, p_val, chosen.costs, cutoffs=[chosen.threshold]).iloc[0]
    facts = PolicyFacts(
        config=config,
        calibration=chosen.calibrator.to_dict(),
        threshold=chosen.threshold,
        costs=chosen.costs,
        validation=score_predictions(y_val, p_val, chosen.threshold),
        expected_cost=float(at_cutoff["expected_cost"]),
        strategy=[StrategyRow(**row) for row in table.to_dict("records")],
    )
    # A registration belongs to the artifact of the policy it was made with, not to this one.
    stale = {"evaluation": None, "artifact": None, "registration": None}
    updated = record.model_copy(update={"policy": facts, **stale})
    updated.save()
    return updated


def calibrated_scores(record: RunRecord, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, calibrated PDs, ids) of one split under the run's chosen policy."""
    y, raw, ids = read_predictions(record, split)
    return y, Calibrator.from_dict(record.need("policy").calibration).transform(raw), ids


def baseline_policy_threshold(record: RunRecord, y_val: np.ndarray, p_val: np.ndarray) -> float:
    """A baseline's cut-off, chosen on validation by the run's own policy (objective, costs, cap)."""
    policy = record.need("policy")
    return choose_cutoff(y_val, np.asarray(p_val, dtype=float), policy.config, policy.costs)
