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


def _with_champion(test_p: list[float], champion_p: list[float]):  # noqa: ANN202
    record = _with(test_p, test_p)
    baselines = {**record.evaluation.baselines, "champion": score_predictions(Y, champion_p, 0.5)}
    return record.model_copy(
        update={"evaluation": record.evaluation.model_copy(update={"baselines": baselines})}
    )


def test_the_champion_on_the_same_rows_decides_like_for_like() -> None:
    from risk_app.run.benchmark_gate import same_rows_verdict

    held = same_rows_verdict(_with_champion(WEAK, PERFECT), PromotionRule())
    assert held is not None and not held.promote
    assert "on this run's test rows the champion" in held.reason and held.details["improvement"] < 0
    # A tie keeps the champion; a clear win passes; no champion row (a first run) passes.
    assert same_rows_verdict(_with_champion(PERFECT, PERFECT), PromotionRule()) is not None
    assert same_rows_verdict(_with_champion(PERFECT, WEAK), PromotionRule()) is None
    assert same_rows_verdict(_with(PERFECT, PERFECT), PromotionRule()) is None
