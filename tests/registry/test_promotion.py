"""Champion/challenger rules: every branch of `decide` (and of `decide_rechosen_policy`, the
verdict on the champion's weights with a policy chosen again), with the reason it gives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from risk_app.evaluate.paired import PairedComparison
from risk_app.registry.promotion import (
    GuardRule,
    PromotionDecision,
    PromotionRule,
    SameRowsEvidence,
    decide,
    decide_against,
    decide_rechosen_policy,
    gated,
)

CHAMPION = {"roc_auc": 0.780, "brier": 0.170, "f1": 0.60}


def test_no_champion_promotes() -> None:
    d = decide({"roc_auc": 0.5}, None, PromotionRule())
    assert d.promote and d.reason == "no current champion"


def test_better_challenger_promotes_with_numbers() -> None:
    d = decide({"roc_auc": 0.800, "brier": 0.165}, CHAMPION, PromotionRule())
    assert d.promote
    assert "0.8000" in d.reason and "0.7800" in d.reason and "+0.0200" in d.reason
    assert d.details["improvement"] == pytest.approx(0.02)
    assert d.details["guards"][0]["holds"]


def test_worse_challenger_rejected() -> None:
    d = decide({"roc_auc": 0.770, "brier": 0.160}, CHAMPION, PromotionRule())
    assert not d.promote
    assert "not better" in d.reason and "0.7700" in d.reason and "-0.0100" in d.reason


def test_equal_challenger_rejected() -> None:
    assert not decide(dict(CHAMPION), CHAMPION, PromotionRule()).promote


def test_within_margin_rejected_beyond_margin_promoted() -> None:
    rule = PromotionRule(min_margin=0.01)
    d = decide({"roc_auc": 0.785, "brier": 0.17}, CHAMPION, rule)
    assert not d.promote and "margin 0.0100" in d.reason and "+0.0050" in d.reason
    assert decide({"roc_auc": 0.795, "brier": 0.17}, CHAMPION, rule).promote


def test_guard_violated_rejects_even_if_better() -> None:
    rule = PromotionRule(guards=[GuardRule(metric="brier", max_worsening=0.0)])
    d = decide({"roc_auc": 0.90, "brier": 0.171}, CHAMPION, rule)
    assert not d.promote
    assert d.reason.startswith("guard violated: brier worsened by 0.0010")
    assert "0.1700 -> 0.1710" in d.reason and "roc_auc 0.9000" in d.reason
    assert d.details["guards"][0]["holds"] is False
    # Within the allowance the same challenger passes.
    loose = PromotionRule(guards=[GuardRule(metric="brier", max_worsening=0.005)])
    assert decide({"roc_auc": 0.90, "brier": 0.171}, CHAMPION, loose).promote


def test_higher_is_better_guard_and_lower_is_better_primary() -> None:
    rule = PromotionRule(metric="brier", guards=[GuardRule(metric="f1", max_worsening=0.02)])
    assert rule.higher_is_better is False
    assert decide({"brier": 0.15, "f1": 0.59}, CHAMPION, rule).promote
    d = decide({"brier": 0.15, "f1": 0.50}, CHAMPION, rule)
    assert not d.promote and "f1 worsened by 0.1000" in d.reason
    assert not decide({"brier": 0.18, "f1": 0.7}, CHAMPION, rule).promote


def test_missing_metrics_explained() -> None:
    d = decide({"brier": 0.1}, CHAMPION, PromotionRule())
    assert not d.promote and "challenger has no roc_auc" in d.reason
    d = decide({"roc_auc": 0.9, "brier": 0.1}, {"brier": 0.2}, PromotionRule())
    assert not d.promote and "champion has no roc_auc" in d.reason
    # A guard the champion never recorded cannot be checked, so it does not block.
    d = decide({"roc_auc": 0.9, "brier": 0.1}, {"roc_auc": 0.8}, PromotionRule())
    assert d.promote and d.details["guards"][0]["note"] == "champion has no value"
    d = decide({"roc_auc": 0.9}, CHAMPION, PromotionRule())
    assert not d.promote and "brier missing for challenger" in d.reason


def test_rule_validation() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PromotionRule(metric="roc_auc", typo=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="lower-is-better"):
        PromotionRule(metric="brier", higher_is_better=True)
    with pytest.raises(ValidationError, match="no known direction"):
        GuardRule(metric="profit")
    with pytest.raises(ValidationError):
        PromotionRule(min_margin=-0.1)
    assert GuardRule(metric="profit", higher_is_better=True).higher_is_better is True
    assert PromotionRule.model_validate({"metric": "ks", "min_margin": 0.01}).higher_is_better is True


def test_rechosen_policy_need_not_beat_the_champion_but_may_not_calibrate_worse() -> None:
    champion = {**CHAMPION, "threshold": 0.17}
    same = {**CHAMPION, "threshold": 0.26}
    assert not decide(same, champion, PromotionRule()).promote  # a tie is no win for a new model
    kept = decide_rechosen_policy(same, champion, PromotionRule(), champion_version="1")
    assert kept.promote and "cut-off 0.1700 -> 0.2600" in kept.reason and kept.details["rechosen_from"] == "1"
    worse_brier = {**same, "brier": 0.19}
    refused = decide_rechosen_policy(worse_brier, champion, PromotionRule(), champion_version="1")
    assert not refused.promote and "brier worsened" in refused.reason and "champion stays" in refused.reason


def _evidence(champion_version: str = "4", metric: str = "roc_auc", brier: float = 0.180) -> SameRowsEvidence:
    comparison = PairedComparison(
        metric=metric, method="DeLong", challenger=0.7100, champion=0.6800, improvement=0.03, ci_low=-0.01,
        ci_high=0.07, p_value=0.07, rows=150, defaults=45,
    )  # fmt: skip
    return SameRowsEvidence(
        champion_version=champion_version, rows="the challenger's 150 test rows (45 defaults)",
        challenger={"roc_auc": 0.71, "brier": brier}, champion={"roc_auc": 0.68, "brier": 0.175},
        comparison=comparison,
    )  # fmt: skip


def test_the_same_rows_decide_when_they_scored_the_champion_of_now() -> None:
    # Recorded: 0.70 against the champion's own 0.78, not better; on the same rows it is.
    d = decide_against({"roc_auc": 0.70}, CHAMPION, champion_version="4", same_rows=_evidence())
    assert d.promote and d.details["basis"] == "same_rows"
    assert d.reason == (
        "challenger is better on the same rows: on the challenger's 150 test rows (45 defaults) the "
        "challenger's AUC is 0.7100 and champion version 4's 0.6800 (change +0.0300, 95% CI -0.0100 to "
        "+0.0700, DeLong one-sided p = 0.070)"
    )
    # The guards are judged on the same rows too, and a significance level can be asked for.
    worse = decide_against({}, CHAMPION, champion_version="4", same_rows=_evidence(brier=0.20))
    assert not worse.promote and worse.reason.startswith("guard violated on the same rows: brier worsened")
    strict = PromotionRule(max_p_value=0.05)
    unsure = decide_against({}, CHAMPION, strict, champion_version="4", same_rows=_evidence())
    assert not unsure.promote and "not significant" in unsure.reason and "p = 0.050" in unsure.reason


def test_the_recorded_metrics_decide_only_without_matching_same_rows_and_the_verdict_says_why() -> None:
    cases = [
        (None, "no same-rows evaluation of the champion exists for this version"),
        (
            _evidence("3"),
            "the same-rows evaluation scored champion version 3, but the champion is now version 4",
        ),
        (_evidence(metric="ks"), "the same-rows evaluation compared ks, not roc_auc"),
    ]
    for evidence, why in cases:
        d = decide_against({"roc_auc": 0.70}, CHAMPION, champion_version="4", same_rows=evidence)
        assert not d.promote and d.details["basis"] == "recorded"
        assert d.reason == (
            "challenger is not better: roc_auc 0.7000 vs champion 0.7800 (change -0.0800), by the recorded "
            f"test roc_auc of each version, each measured on its own test split ({why})"
        )
    first = decide_against({"roc_auc": 0.5}, None, champion_version=None, same_rows=None)
    assert first.promote and first.reason == "no current champion"


def test_a_gate_refusal_overrides_only_a_verdict_that_promotes() -> None:
    wins = decide({"roc_auc": 0.80, "brier": 0.2}, {"roc_auc": 0.70, "brier": 0.2})
    loses = decide({"roc_auc": 0.60, "brier": 0.2}, {"roc_auc": 0.70, "brier": 0.2})
    gate = PromotionDecision(promote=False, reason="trails the benchmark", details={"shortfall": 0.1})
    held = gated(wins, gate)
    assert not held.promote
    assert held.reason == f"trails the benchmark; against the champion alone: {wins.reason}"
    assert held.details["shortfall"] == 0.1 and held.details["champion_verdict"]["reason"] == wins.reason
    assert gated(loses, gate) == loses and gated(wins, None) == wins
    # A first version (no champion to compare with) reads the gate's sentence alone.
    assert gated(decide({"roc_auc": 0.8}, None), gate).reason == "trails the benchmark"
