"""Reward modeling from analyst feedback: preference pairs -> trl `RewardTrainer` -> scores.

Each feedback row becomes one preference pair over the same application text:

    chosen   = "<serialized application> Decision: <analyst's decision>."
    rejected = "<serialized application> Decision: <the other decision>."

The reward model is a sequence classifier with one output (`num_labels=1`) loaded from the
same base as the policy, trained with trl's Bradley-Terry loss `-log sigmoid(r_chosen -
r_rejected)`. We tokenize the pairs ourselves (trl accepts `chosen_ids` / `rejected_ids`):
trl drops pairs longer than `max_length` instead of truncating, and a plain right truncation
would cut off the decision, the only part that differs. So the application text is truncated
to leave room for the decision suffix, and the PPO stage scores texts with the same encoder.

    pairs = load_preference_pairs("risk_app/datasets/analyst_feedback_sample.csv")
    rm = train_reward_model(pairs, "tiny-qwen2", RewardParams(epochs=1), seed=42)
    rewards = score_decisions(rm.model, rm.tokenizer, texts, max_length=256)  # (n, 2)
    table = centered_reward_table(rewards)  # what PPO optimises: the prior taken out
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import PrinterCallback, set_seed

from data_contracts.analyst_feedback import DECISIONS, load_feedback
from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.load import load_applications
from risk_app.data.serialize import serialize_frame
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, DataFileError
from risk_app.finetune.methods.lora import LoraParams, build_peft_config
from risk_app.finetune.predict import model_device, pad_batch
from risk_app.models.loader import load_classifier
from risk_app.paths import DEFAULT_DATASET, PACKAGE_DIR

DEFAULT_FEEDBACK_PATH = PACKAGE_DIR / "datasets" / "analyst_feedback_sample.csv"
DECISION_TEMPLATE = " Decision: {decision}."


class RewardParams(BaseModel):
    """How the reward model is built and trained (the `reward` section of the `rlhf` config)."""

    model_config = ConfigDict(extra="forbid")

    base_model: str | None = Field(
        default=None, description="Base of the reward model; None = the policy's TrainConfig.base_model."
    )
    adapter: Literal["full", "lora"] = Field(
        default="full", description="Train the whole reward model ('full') or LoRA adapters on it ('lora')."
    )
    lora: LoraParams = Field(
        default_factory=LoraParams, description="LoRA parameters of the reward model when adapter='lora'."
    )
    epochs: int = Field(default=1, ge=1, le=100, description="Passes over the preference pairs.")
    learning_rate: float = Field(
        default=5e-4, gt=0, le=1.0, description="AdamW learning rate of the reward model."
    )
    batch_size: int = Field(default=8, ge=1, le=1024, description="Preference pairs per step.")
    max_length: int = Field(
        default=256, ge=16, le=32768, description="Token limit of application text + decision suffix."
    )


@dataclass
class RewardModelResult:
    """A trained reward model and how well it ranks the training pairs before / after."""

    model: Any
    tokenizer: Any
    loss_before: float
    loss_after: float
    accuracy_before: float
    accuracy_after: float
    log_history: list[dict[str, float]] = field(default_factory=list)
    wall_seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        return {
            "reward_loss_before": self.loss_before,
            "reward_loss_after": self.loss_after,
            "reward_accuracy_before": self.accuracy_before,
            "reward_accuracy_after": self.accuracy_after,
            "reward_seconds": self.wall_seconds,
        }


# ---- pairs -------------------------------------------------------------------------------
def other_decision(decision: str) -> str:
    return DECISIONS[1 - DECISIONS.index(decision)]


def build_preference_pairs(
    feedback: pd.DataFrame,
    applications: pd.DataFrame,
    source: str | Path = "<feedback>",
    spec: DatasetSpec | str | None = None,
    exclude_fields: Sequence[str] = (),
) -> pd.DataFrame:
    """Join validated feedback with validated applications into chosen/rejected texts (leaving
    `exclude_fields` out of the text, as the run whose reward this is left them out).

    Returns `application_id, text, chosen_decision, rejected_decision, chosen, rejected`.
    A feedback id with no application raises `DataFileError` naming the row.
    """
    apps = applications.drop_duplicates("application_id").set_index("application_id", drop=False)
    known = feedback["application_id"].isin(apps.index)
    if not known.all():
        first = int(np.flatnonzero(~known.to_numpy())[0])
        raise DataFileError(
            source,
            f"row {first + 1}, column 'application_id': {feedback['application_id'].iloc[first]!r} "
            f"matches no application ({int((~known).sum())} unmatched id(s) in all)",
        )
    texts = serialize_frame(
        apps.loc[feedback["application_id"]].reset_index(drop=True), exclude=tuple(exclude_fields), spec=spec
    )
    chosen_decision = feedback["analyst_decision"].astype(str).reset_index(drop=True)
    rejected_decision = chosen_decision.map(other_decision)
    return pd.DataFrame(
        {
            "application_id": feedback["application_id"].astype(str).reset_index(drop=True),
            "text": texts,
            "chosen_decision": chosen_decision,
            "rejected_decision": rejected_decision,
            "chosen": texts + chosen_decision.map(lambda d: DECISION_TEMPLATE.format(decision=d)),
            "rejected": texts + rejected_decision.map(lambda d: DECISION_TEMPLATE.format(decision=d)),
        }
    )


def load_preference_pairs(
    feedback_path: str | Path | None = None,
    applications_path: str | Path | None = None,
    max_rows: int | None = None,
    seed: int = 42,
    spec: DatasetSpec | str | None = None,
    exclude_fields: Sequence[str] = (),
) -> pd.DataFrame:
    """Feedback file (default: the bundled synthetic sample) joined with its applications.

    `spec` is the applications' data set (default german_credit): it validates the file and
    serializes the texts the way the policy's own texts were. Without `applications_path`
    the data set's own bundled file is read."""
    feedback_path = Path(feedback_path) if feedback_path is not None else DEFAULT_FEEDBACK_PATH
    feedback = load_feedback(feedback_path)
    if max_rows is not None and max_rows < len(feedback):
        feedback = feedback.sample(n=max_rows, random_state=seed).sort_index()
    spec = load_spec(spec)
    default_path = spec.data_path or DEFAULT_DATASET
    apps_path = Path(applications_path) if applications_path is not None else default_path
    frame = load_applications(apps_path, spec=spec)
    valid = validate_applications(frame, str(apps_path), require_target=False, spec=spec).valid
    return build_preference_pairs(feedback, valid, feedback_path, spec, exclude_fields)


# ---- encoding and scoring ----------------------------------------------------------------
def encode_with_decision(tokenizer: Any, text: str, decision: str, max_length: int) -> list[int]:
    """Token ids of `text` (truncated) + the decision suffix + EOS, at most `max_length` long."""
    suffix = tokenizer(DECISION_TEMPLATE.format(decision=decision), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        suffix = [*suffix, tokenizer.eos_token_id]
    budget = max_length - len(suffix)
    if budget < 1:
        raise ConfigError(f"reward max_length {max_length} leaves no room for the application text")
    body = tokenizer(text, add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
    return list(body) + suffix


@torch.no_grad()
def score_sequences(
    model: Any, tokenizer: Any, sequences: Sequence[Sequence[int]], batch_size: int = 32
) -> np.ndarray:
    """Scalar reward per token-id sequence, batched by length."""
    if not sequences:
        return np.zeros(0, dtype=np.float32)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    device = model_device(model)
    was_training = model.training
    model.eval()
    out = np.empty(len(sequences), dtype=np.float32)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in pad_batch(tokenizer, [sequences[i] for i in idx]).items()}
            out[idx] = model(**batch).logits.float().squeeze(-1).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def score_decisions(
    model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 32
) -> np.ndarray:
    """Rewards of shape (n, 2): column 0 = "approve", column 1 = "decline" after each text."""
    sequences = [encode_with_decision(tokenizer, t, d, max_length) for d in DECISIONS for t in texts]
    scores = score_sequences(model, tokenizer, sequences, batch_size)
    return scores.reshape(len(DECISIONS), len(texts)).T.copy()


def centered_reward_table(scores: np.ndarray) -> np.ndarray:
    """The (n, 2) reward table PPO optimises, from `score_decisions` scores: each application's
    margin m(x) = r(x, decline) - r(x, approve), less its mean over all the applications, split
    as (-m/2, +m/2) between approve and decline.

    Only the difference between one application's two actions moves the policy (the exact
    baseline removes the rest). The margin's mean over applications is the reward model's
    prior for one decision over the other, i.e. the analysts' approval rate: a fact about the
    book, not about any applicant, and one the credit policy sets on validation with its
    cut-off. Left in, it is a bonus for one action everywhere, which a classifier can only
    express through the applicants' features; the German credit run showed where that leads
    (docs/methods.md, "rlhf"). Centered, the KL-regularised optimum moves each application's
    log-odds of declining by (m(x) - mean m) / beta, so PPO re-ranks applicants only as far as
    the reward ranks them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(DECISIONS):
        raise ValueError(f"reward scores must be (n, {len(DECISIONS)}), got {scores.shape}")
    margin = scores[:, 1] - scores[:, 0]
    centered = margin - margin.mean()
    return np.stack([-centered / 2, centered / 2], axis=1).astype(np.float32)


def pair_metrics(model: Any, tokenizer: Any, pairs: pd.DataFrame, max_length: int) -> tuple[float, float]:
    """(Bradley-Terry loss, accuracy) of the model on `pairs`: accuracy = share with r_chosen > r_rejected."""
    chosen = [
        encode_with_decision(tokenizer, t, d, max_length)
        for t, d in zip(pairs["text"], pairs["chosen_decision"], strict=True)
    ]
    rejected = [
        encode_with_decision(tokenizer, t, d, max_length)
        for t, d in zip(pairs["text"], pairs["rejected_decision"], strict=True)
    ]
    margin = torch.from_numpy(
        score_sequences(model, tokenizer, chosen) - score_sequences(model, tokenizer, rejected)
    )
    loss = float(-torch.nn.functional.logsigmoid(margin.double()).mean())
    return loss, float((margin > 0).double().mean())


# ---- training ----------------------------------------------------------------------------
def repeated_by_weight(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` with each row repeated `weight` times (an integer column; absent = once each):
    trl's reward trainer takes no sample weights, so a pair that counts twice is seen twice."""
    if "weight" not in pairs.columns:
        return pairs
    weights = pairs["weight"].astype(int)
    if (weights < 1).any():
        raise ConfigError("reward model: pair weights must be whole numbers of at least 1")
    return pairs.loc[pairs.index.repeat(weights)].reset_index(drop=True)


def encode_pairs(tokenizer: Any, pairs: pd.DataFrame, max_length: int) -> list[dict[str, list[int]]]:
    """trl's pre-tokenized rows: `chosen_ids` / `rejected_ids`, each ending in its decision."""
    return [
        {
            "chosen_ids": encode_with_decision(tokenizer, t, c, max_length),
            "rejected_ids": encode_with_decision(tokenizer, t, r, max_length),
        }
        for t, c, r in zip(pairs["text"], pairs["chosen_decision"], pairs["rejected_decision"], strict=True)
    ]


def fit_with_trl(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, list[int]]],
    params: RewardParams,
    seed: int,
    use_cuda: bool,
) -> tuple[Any, list[dict[str, float]]]:
    """Train with trl's `RewardTrainer` (Bradley-Terry loss); (trained model, trl's log history)."""
    # trl and datasets take over a second to import and only this stage needs them.
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    with tempfile.TemporaryDirectory(prefix="risk_app_rm_") as out_dir:
        args = RewardConfig(
            output_dir=out_dir,
            num_train_epochs=params.epochs,
            per_device_train_batch_size=params.batch_size,
            learning_rate=params.learning_rate,
            max_length=None,  # encode_with_decision already bounds every pair
            seed=seed,
            data_seed=seed,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=not use_cuda,
            # trl defaults to bf16; on CPU fp32 is both faster and exact.
            bf16=use_cuda and torch.cuda.is_bf16_supported(),
            dataloader_num_workers=0,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=build_peft_config(params.lora) if params.adapter == "lora" else None,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log line to stdout
        trainer.train()
        history = [
            {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
            for record in trainer.state.log_history
        ]
        return trainer.model, history


def train_reward_model(
    pairs: pd.DataFrame,
    base_model: str,
    params: RewardParams | None = None,
    *,
    seed: int = 42,
    device: str | torch.device | None = None,
) -> RewardModelResult:
    """Train a `num_labels=1` classifier on `pairs` (`params.adapter='lora'`: adapters only).

    `seed` fixes the new head's initialisation and the data order. The loss / accuracy on the
    training pairs are measured before and after.
    """
    params = params or RewardParams()
    if len(pairs) == 0:
        raise ConfigError("reward model: no preference pairs to train on")
    started = time.perf_counter()
    set_seed(seed)  # the new one-output head is drawn from torch's RNG
    model, tokenizer = load_classifier(base_model, num_labels=1)
    if device is not None:
        model.to(device)
    use_cuda = model_device(model).type == "cuda" if device is not None else torch.cuda.is_available()
    loss_before, acc_before = pair_metrics(model, tokenizer, pairs, params.max_length)
    rows = encode_pairs(tokenizer, repeated_by_weight(pairs), params.max_length)
    model, history = fit_with_trl(model, tokenizer, rows, params, seed, use_cuda)
    model.eval()
    loss_after, acc_after = pair_metrics(model, tokenizer, pairs, params.max_length)
    return RewardModelResult(
        model=model,
        tokenizer=tokenizer,
        loss_before=loss_before,
        loss_after=loss_after,
        accuracy_before=acc_before,
        accuracy_after=acc_after,
        log_history=history,
        wall_seconds=time.perf_counter() - started,
    )
