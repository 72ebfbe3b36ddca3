"""Reward from decisions: override pairs from the labeled book, oriented and weighted by outcomes,
and `rlhf` learning from them or refusing, in one sentence, when there are too few."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app import paths, workflow
from risk_app.data.serialize import serialize_frame
from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives.feedback import load_feedback
from risk_app.finetune.objectives.reward_model import repeated_by_weight
from risk_app.finetune.objectives.rlhf import RlhfParams
from risk_app.finetune.trainer import train_classifier
from risk_app.outcomes.ingest import add_outcome_file
from risk_app.overrides.ingest import add_override_file
from risk_app.overrides.pairs import OUTCOME_WEIGHT, override_preference_pairs
from tests.finetune.helpers import credit_texts
from tests.outcomes.conftest import SPEC, german_rows, record_batch

BATCH = "a" * 64


def _ledger(tmp_path: Path, n: int = 10) -> pd.DataFrame:
    """`n` scored applications (every 3rd declined) and overrides: app-0 and app-3 approved by
    an analyst (outcomes: app-0 repaid, app-3 defaulted), app-6 approved (no outcome yet),
    app-1 declined by an analyst."""
    valid = german_rows(n)
    record_batch(valid, "2025-03-15", [0.4] * n, [i % 3 == 0 for i in range(n)], batch_id=BATCH)
    rows = [("app-0", "decline", "approve"), ("app-3", "decline", "approve"), ("app-6", "decline", "approve"),
            ("app-1", "approve", "decline")]  # fmt: skip
    frame = pd.DataFrame(
        [{"application_id": a, "batch_id": BATCH, "model_decision": m, "analyst_decision": d,
          "reason_code": "other", "analyst": "AN-1", "decided_at": "2025-03-16"} for a, m, d in rows]
    )  # fmt: skip
    frame.to_csv(tmp_path / "overrides.csv", index=False)
    add_override_file(tmp_path / "overrides.csv", "german_credit")
    outcomes = pd.DataFrame(
        {
            "application_id": ["app-0", "app-3"],
            SPEC.target.column: ["good", "bad"],
            "observation_date": "2025-09-30",
        }
    )
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    assert add_outcome_file(tmp_path / "outcomes.csv", "german_credit").n_accepted == 2
    return valid


def test_pairs_follow_the_outcome_where_known_and_the_analyst_elsewhere(tmp_path: Path) -> None:
    valid = _ledger(tmp_path)
    pairs = override_preference_pairs("german_credit").set_index("application_id")
    assert pairs.loc["app-0", ["chosen_decision", "weight", "decided_by"]].tolist() == [
        "approve", OUTCOME_WEIGHT, "outcome",
    ]  # the analyst approved and the loan repaid  # fmt: skip
    assert pairs.loc["app-3", ["chosen_decision", "rejected_decision", "weight", "decided_by"]].tolist() == [
        "decline", "approve", OUTCOME_WEIGHT, "outcome",
    ]  # the analyst approved and the loan defaulted: the model's decline was right  # fmt: skip
    assert pairs.loc["app-6", ["chosen_decision", "weight", "decided_by"]].tolist() == [
        "approve",
        1,
        "analyst",
    ]
    assert pairs.loc["app-1", ["chosen_decision", "weight", "side"]].tolist() == ["decline", 1, "high"]
    # The text is the application as the model read it, serialized with the data set's spec.
    expected = serialize_frame(
        valid.set_index("application_id", drop=False).loc[["app-0"]], spec=load_spec("german_credit")
    )
    assert pairs.loc["app-0", "text"] == expected.iloc[0]
    assert len(repeated_by_weight(pairs.reset_index())) == 2 * OUTCOME_WEIGHT + 2


def test_rlhf_refuses_to_start_with_too_little_feedback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as empty:
        load_feedback(RlhfParams(), "german_credit", seed=0)
    assert str(empty.value) == (
        "method 'rlhf' needs at least 50 feedback pairs (min_feedback_pairs) and the override ledger of "
        "german_credit has 0: add analysts' overrides with `risk-app overrides add FILE` (or the override "
        "landing folder), or set feedback_source 'synthetic_demo' for the labelled synthetic demo"
    )
    _ledger(tmp_path)
    with pytest.raises(ConfigError, match="override ledger of german_credit has 4: add analysts"):
        load_feedback(RlhfParams(), "german_credit", seed=0)
    enough = load_feedback(RlhfParams(min_feedback_pairs=4), "german_credit", seed=0)
    assert (
        enough.description
        == "override ledger of german_credit, 4 override pair(s), 2 of them decided by outcomes"
    )
    with pytest.raises(ConfigError, match="needs the run's data set"):
        load_feedback(RlhfParams(min_feedback_pairs=4), None, seed=0)
    with pytest.raises(ConfigError, match="a path is read only with feedback_source 'file'"):
        load_feedback(RlhfParams(feedback_source="synthetic_demo", feedback_path="x.csv"), None, seed=0)


def test_rlhf_learns_from_the_override_ledger_and_says_so(tmp_path: Path, tiny_qwen2: Path) -> None:
    _ledger(tmp_path)
    texts, labels = credit_texts(32)
    val_texts, val_labels = credit_texts(16, offset=32)
    params = {
        "policy_params": {"r": 4}, "sft_epochs": 1, "min_feedback_pairs": 4, "reward": {"max_length": 64},
        "ppo": {"epochs": 1, "updates_per_batch": 1},
    }  # fmt: skip
    config = TrainConfig(
        method="rlhf", method_params=params, batch_size=16, max_length=48, seed=0, device="cpu"
    )
    result = train_classifier(
        texts, labels, val_texts, val_labels, config, None, progress=False, dataset="german_credit"
    )
    verdict = result.ppo_guard
    assert verdict is not None
    assert (
        verdict.feedback
        == "override ledger of german_credit, 4 override pair(s), 2 of them decided by outcomes"
    )
    assert verdict.sentence().endswith(f"Feedback: {verdict.feedback}.")


def test_rlhf_with_too_little_feedback_is_refused_before_a_run_folder_or_mlflow_run(
    risk_app_home: Path,
) -> None:
    # The refusal used to come from inside the trainer, after `start_run` had made the run
    # folder and the fine-tune stage had opened an MLflow run for a run that never trained.
    config = TrainConfig(method="rlhf", method_params={"policy_params": {"r": 4}})
    refused = "needs at least 50 feedback pairs .* override ledger of german_credit has 0"
    with pytest.raises(ConfigError, match=refused):
        workflow.plan_run(config, spec=load_spec("german_credit"))
    valid = german_rows(12)
    examples = workflow.prepare_examples(valid, spec="german_credit")
    with pytest.raises(ConfigError, match="needs at least 50 feedback pairs"):
        workflow.train_run(valid, examples, config, spec="german_credit", progress=False)
    runs = paths.runs_dir()
    assert not runs.exists() or not any(runs.iterdir())
    with sqlite3.connect(risk_app_home / "mlflow" / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone() == (0,)


def test_override_pairs_leave_out_the_fields_the_run_left_out(tmp_path: Path) -> None:
    _ledger(tmp_path)
    spec = load_spec("german_credit")
    left_out = list(spec.protected_columns)
    settings = RlhfParams(min_feedback_pairs=4)
    full = load_feedback(settings, "german_credit", seed=0).pairs
    lean = load_feedback(settings, "german_credit", seed=0, exclude_fields=left_out).pairs
    labels = [spec.label(c) for c in left_out]
    assert all(any(f"{label}:" in text for label in labels) for text in full["text"])
    assert not any(f"{label}:" in text for label in labels for text in lean["text"])
    # ... and so the reward model reads the texts the policy reads.
    valid = german_rows(10).set_index("application_id", drop=False)
    expected = serialize_frame(valid.loc[["app-0"]], exclude=left_out, spec=spec)
    assert lean.set_index("application_id").loc["app-0", "text"] == expected.iloc[0]


def test_book_pairs_add_the_decisions_that_stood(tmp_path: Path) -> None:
    # Overrides are chosen by disagreement with the model; alone they teach the reward model the
    # opposite of the model's features. With decisions="book" every decision of the book is a
    # pair: the overrides as before, the rest by the outcome where known, else as they stood.
    _ledger(tmp_path)
    only = override_preference_pairs("german_credit")
    book = override_preference_pairs("german_credit", decisions="book").set_index("application_id")
    assert len(only) == 4 and len(book) == 10
    pd.testing.assert_frame_equal(
        book.loc[only["application_id"]].reset_index(), only, check_like=True, check_dtype=False
    )
    standing = book.loc[book["side"] == "none"]
    assert set(standing["decided_by"]) == {"standing"}  # no outcome came for them in _ledger
    assert (standing["chosen_decision"] == ["decline" if int(i.split("-")[1]) % 3 == 0 else "approve"
                                             for i in standing.index]).all()  # fmt: skip
    settings = RlhfParams(min_feedback_pairs=10, ledger_decisions="book")
    assert load_feedback(settings, "german_credit", seed=0).description == (
        "override ledger of german_credit with the book's standing decisions, 10 pair(s) (4 overrides), "
        "2 of them decided by outcomes"
    )
