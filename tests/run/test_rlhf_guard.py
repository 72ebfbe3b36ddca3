"""In production, a PPO stage that makes validation worse is undone, and every report says so.

A whole `rlhf` training run (fine-tune -> policy -> evaluate -> package) with a reward that
pays for the wrong decisions: the run must keep the supervised weights, and the run record,
the model card, MLflow's tags and the CLI's notes must say that PPO was discarded and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from risk_app import workflow
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives import rlhf as rlhf_objective
from risk_app.finetune.types import TrainData
from risk_app.run.record import RunRecord
from risk_app.run.render import mlflow_payload, training_notes


def _reversed_reward(
    cfg: Any, train_cfg: TrainConfig, data: TrainData, device: torch.device, pairs: Any, **_: Any
) -> tuple[np.ndarray, dict[str, float]]:
    """Pays for approving the applicants who defaulted and declining the others; reported to
    the evidence gate as a perfect ranker, so PPO runs and only the guard stands in its way."""
    bad = data.train_labels.astype(np.float32)
    wrong = np.stack([3.0 * (2 * bad - 1), 3.0 * (1 - 2 * bad)], axis=1)
    return wrong, {"reward_rank_auc": 1.0, "reward_rank_p_value": 0.0}


def test_a_run_whose_ppo_lowers_validation_keeps_the_supervised_model(
    small_file: Path, tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rlhf_objective, "reward_stage", _reversed_reward)
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    params = {
        "policy_params": {"r": 4},
        # The reward is replaced below; the demo feedback only has to be there.
        "feedback_source": "synthetic_demo",
        "max_feedback_rows": 8,
        "min_feedback_pairs": 8,
        "ppo": {"epochs": 2, "updates_per_batch": 4, "learning_rate": 5e-3, "kl_coef": 0.0},
    }
    config = TrainConfig(
        method="rlhf", method_params=params, epochs=2, max_length=96, learning_rate=5e-3, seed=7, patience=0
    )
    record = workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False)

    training = record.need("training")
    sft = [e for e in training.history if "ppo_epoch" not in (e.model_extra or {})]
    ppo = [e for e in training.history if "ppo_epoch" in (e.model_extra or {})]
    best_sft = max(sft, key=lambda e: e.val_auc)
    aucs = [round(e.val_auc, 4) for e in training.history]
    assert len(ppo) == 2 and max(e.val_auc for e in ppo) < best_sft.val_auc - 0.005, aucs  # PPO did harm
    verdict = training.ppo_guard
    assert verdict is not None and (verdict.kept, verdict.reason) == ("supervised", "ppo_lowered_validation")
    assert (training.best_epoch, training.best_val_auc) == (best_sft.epoch, best_sft.val_auc)
    assert RunRecord.load(record.run_dir).need("training").ppo_guard == verdict

    # The weights that were saved and packaged are the supervised epoch's, not PPO's.
    run_dir = Path(record.run_dir)
    trained = load_file(run_dir / "trained" / "weights.safetensors")
    sft_state = load_file(run_dir / "checkpoints" / "sft" / f"epoch-{best_sft.epoch}" / "state.safetensors")
    assert trained.keys() == sft_state.keys()
    for name, tensor in sft_state.items():
        torch.testing.assert_close(trained[name], tensor)

    # And every report says so.
    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text()
    assert f"**RLHF guard:** {verdict.sentence()}" in card
    assert "PPO discarded" in card and f"{best_sft.val_auc:.4f}" in card
    # The synthetic demo feedback is labelled as such wherever the verdict goes.
    assert "Feedback: SYNTHETIC demo sample (8 simulated analyst decisions on German credit)" in card
    assert training_notes(record) == [verdict.sentence()]
    assert mlflow_payload(record).tags["ppo_guard_kept"] == "supervised"
