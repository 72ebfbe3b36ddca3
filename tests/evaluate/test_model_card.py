"""The model card is one function of the run record: every section comes from it."""

from typing import Any

import pytest

from risk_app.errors import RiskAppError
from risk_app.evaluate.metrics import score_predictions
from risk_app.evaluate.model_card import QUANTUM_LIMITATION, render_model_card
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.types import PpoGuardVerdict
from risk_app.policy.credit import PolicyConfig
from risk_app.run.record import (
    ArtifactFacts,
    DatasetFacts,
    EvaluationFacts,
    PolicyFacts,
    RunRecord,
    StrategyRow,
    TrainingFacts,
)

Y = [0, 0, 1, 1, 0, 1, 0, 0]
P = [0.1, 0.4, 0.8, 0.35, 0.2, 0.9, 0.6, 0.15]


def make_record(method: str = "lora", fairness: dict[str, Any] | None = None) -> RunRecord:
    metrics = score_predictions(Y, P, 0.5)
    dataset = DatasetFacts(
        name="acme_book", spec_version="2.1", spec_hash="ab" * 32, description="ACME's consumer loans.",
        origin="ACME data warehouse", licence="internal", limitations=["Only 2019-2021 vintages."],
        target="`default` (1 = default = 1)", protected=["age"], source="acme.csv", data_hash="cd" * 32,
        rows={"train": 6, "validation": 1, "test": 1}, excluded_fields=["age"],
        quality_warnings=["Data quality: `region` is sorted in contiguous blocks."],
    )  # fmt: skip
    training = TrainingFacts(
        config=TrainConfig(method=method, epochs=2),
        method_params={"r": 8, "alpha": 16} if method == "lora" else {}, best_epoch=2, best_val_auc=0.7,
        epochs_run=2, stopped_early=False, trainable_params=10, total_params=1000,
        trainable_percent=1.0, wall_seconds=1.0, peak_memory_mb=1.0, tokens_per_second=1.0, device="cpu",
        trained_dir="/x", predictions_path="/x.parquet",
    )  # fmt: skip
    policy = PolicyFacts(
        config=PolicyConfig(max_decline_rate=0.3), calibration={"kind": "platt", "a": 1.5, "b": -0.2},
        threshold=0.5, validation=metrics, costs=(5.0, 1.0), expected_cost=0.625,
        strategy=[StrategyRow(cutoff=0.5, approval_rate=0.5, bad_rate_approved=0.25, defaults_caught=0.67,
                              expected_cost=0.625)],
    )  # fmt: skip
    evaluation = EvaluationFacts(
        test=metrics, baselines={"logistic": score_predictions(Y, [0.2] * 4 + [0.7] * 4, 0.5)}, ece=0.05,
        top_decile_lift=2.0, report_dir="/r", fairness=fairness or {},
    )  # fmt: skip
    artifact = ArtifactFacts(
        path="/a", version=f"{method}-0123456789ab", weights_sha256="ef" * 32, code_version="0.1.0+gabc",
        library_versions={"torch": "2.13.0"}, created_at="2026-12-01T00:00:00+00:00",
    )  # fmt: skip
    return RunRecord(
        run_id="run-1", run_dir="/tmp/run-1", dataset=dataset, training=training, policy=policy,
        evaluation=evaluation, artifact=artifact,
    )  # fmt: skip


def test_card_renders_every_section_from_the_record() -> None:
    card = render_model_card(make_record())
    for text in (
        "# Model card: credit-risk model (lora) on acme_book",
        "acme_book (spec v2.1",
        "ACME's consumer loans.",
        "ACME data warehouse (licence: internal)",
        "Only 2019-2021 vintages.",
        "`region` is sorted",
        "r=8, alpha=16",
        "lora-0123456789ab",
        "platt (a=1.5, b=-0.2)",
        "| baseline: logistic |",
        "decline rate capped at 30%",
        "least expected cost on the validation split",
        "a missed default costing 5 and a wrongly declined good applicant 1",
        "| 0.5000 | 50.0% | 25.0% | 67.0% | 0.625 |",
        "A < 5%, B < 10%, C < 20%, D < 35%, E above",
        "Fields left out of the text:** `age`",
        "Protected attributes are present in the data (`age`)",
        "No fairness assessment was made",
    ):
        assert text in card, text
    assert QUANTUM_LIMITATION not in card


def test_quantum_method_adds_the_simulation_limitation() -> None:
    assert QUANTUM_LIMITATION in render_model_card(make_record(method="quantum"))


def test_fairness_rows_and_flags_are_shown() -> None:
    fairness = {
        "air_limit": 0.8,
        "rows": [
            {"group": "age_band", "value": "<25", "n": 40, "approval_rate": 0.5, "adverse_impact_ratio": 0.62,
             "decline_rate_diff_vs_reference": 0.3, "flagged": True, "air_ci_low": 0.45, "air_ci_high": 0.85},
            {"group": "age_band", "value": "50+", "n": 4, "approval_rate": 0.8, "adverse_impact_ratio": 1.0,
             "decline_rate_diff_vs_reference": 0.0, "flagged": False, "air_ci_low": None,
             "air_ci_high": None},
        ],
        "flags": ["age_band <25: AIR 0.62 below 0.80"],
        "notes": ["age_band=50+, the most favoured group, has only 4 applicants"],
    }  # fmt: skip
    card = render_model_card(make_record(fairness=fairness))
    assert "| age_band | <25 | 40 | 50.0% | 0.620 | 0.45 to 0.85 | +30.0% | **yes** |" in card
    assert "| age_band | 50+ | 4 | 80.0% | 1.000 | n/a | +0.0% | no |" in card
    assert "**Small groups:**\n- age_band=50+, the most favoured group, has only 4 applicants" in card
    assert "- age_band <25: AIR 0.62 below 0.80" in card


def test_a_record_without_evaluation_cannot_make_a_card() -> None:
    record = make_record().model_copy(update={"evaluation": None})
    with pytest.raises(RiskAppError, match="evaluation stage has not run"):
        render_model_card(record)


@pytest.mark.parametrize(
    ("reason", "kept", "ppo_auc", "says"),
    [
        ("ppo_within_tolerance", "ppo", 0.7412, "PPO kept: validation AUC 0.7412 after PPO against 0.7378"),
        (
            "ppo_lowered_validation",
            "supervised",
            0.2315,
            "PPO discarded: it lowered validation AUC from 0.7378",
        ),
        ("reward_without_evidence", "supervised", None, "PPO not run: the reward model's preferences rank"),
    ],
)
def test_the_rlhf_guard_verdict_is_on_the_card(
    reason: str, kept: str, ppo_auc: float | None, says: str
) -> None:
    verdict = PpoGuardVerdict(
        kept=kept, reason=reason, supervised_val_auc=0.7378, supervised_epoch=3, ppo_val_auc=ppo_auc,
        max_drop=0.005, reward_rank_auc=0.519, reward_rank_p_value=0.21, max_reward_p_value=0.05,
    )  # type: ignore[arg-type]  # fmt: skip
    record = make_record("rlhf")
    record.training.ppo_guard = verdict  # type: ignore[union-attr]
    card = render_model_card(record)
    assert f"- **RLHF guard:** {verdict.sentence()}" in card and says in verdict.sentence()
    assert "**RLHF guard:**" not in render_model_card(make_record("lora"))
