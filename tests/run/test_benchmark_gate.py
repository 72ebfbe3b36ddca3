"""Champion by evidence: a challenger that trails the classical benchmark is not promoted."""

from risk_app.evaluate.metrics import score_predictions
from risk_app.registry.promotion import PromotionRule
from risk_app.run.benchmark_gate import benchmark_verdict
from tests.evaluate.test_model_card import make_record

Y = [0, 0, 1, 1, 0, 1, 0, 0]


def _with(test_p: list[float], benchmark_p: list[float]):  # noqa: ANN202
    record = make_record()
    evaluation = record.evaluation.model_copy(
        update={
            "test": score_predictions(Y, test_p, 0.5),
            "baselines": {"lightgbm": score_predictions(Y, benchmark_p, 0.5)},
        }
    )
    return record.model_copy(update={"evaluation": evaluation})


PERFECT = [0.1, 0.2, 0.9, 0.8, 0.1, 0.7, 0.2, 0.3]
WEAK = [0.6, 0.2, 0.3, 0.8, 0.1, 0.4, 0.7, 0.3]


def test_a_challenger_far_behind_the_benchmark_is_held_back() -> None:
    verdict = benchmark_verdict(_with(WEAK, PERFECT), PromotionRule(), margin=0.02)
    assert verdict is not None and not verdict.promote
    assert "trails the classical benchmark lightgbm" in verdict.reason and "analyst" in verdict.reason
    assert verdict.details["shortfall"] > 0.02


def test_a_challenger_level_with_the_benchmark_passes_and_the_gate_can_be_off() -> None:
    assert benchmark_verdict(_with(PERFECT, PERFECT), PromotionRule(), margin=0.02) is None
    assert benchmark_verdict(_with(WEAK, PERFECT), PromotionRule(), margin=None) is None
    # Lower-is-better metrics compare the other way round.
    assert benchmark_verdict(_with(PERFECT, WEAK), PromotionRule(metric="brier"), margin=0.0) is None
