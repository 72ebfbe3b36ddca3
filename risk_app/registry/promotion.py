"""Champion/challenger promotion rules: when does a new model replace the one in production?

The rule is data, not code: a `PromotionRule` names the metric that must improve (and by how
much) and guard metrics that must not get worse, so the Dagster launchpad and the CLI can
change it without editing Python. `decide` is pure — it compares two metric dicts and explains
its verdict with the numbers, so the audit log says *why* a model was or wasn't promoted.
`decide_rechosen_policy` judges a version that only re-chooses the champion's credit policy
(same weights): it need not beat the champion, only not rank or calibrate worse.

Like for like first: `decide_against` decides on the same rows whenever the challenger's
evaluation re-scored the current champion on its test rows (`SameRowsEvidence`, with a paired
test from `evaluate.paired`), and falls back to each version's recorded test metrics (each on
its own split) only when no such evaluation exists, saying so in the verdict. The same rows are
the challenger's test rows the champion was never fitted on (trained or validated: its
artifact's fit rows); when too few remain to decide on, the evidence says why (`fallback`) and
the verdict falls back to the recorded metrics, naming that reason.

    rule = PromotionRule(metric="roc_auc", min_margin=0.005,
                         guards=[GuardRule(metric="brier", max_worsening=0.01)])
    decision = decide(challenger_metrics, champion_metrics, rule)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk_app.evaluate.metric_table import METRICS, format_metric, metric_spec
from risk_app.evaluate.paired import PairedComparison

# Direction of every comparable metric, from the one metric table: True = higher is better.
METRIC_DIRECTIONS: dict[str, bool] = {
    spec.name: spec.higher_is_better for spec in METRICS if spec.higher_is_better is not None
}


def _resolve_direction(metric: str, higher_is_better: bool | None) -> bool:
    known = METRIC_DIRECTIONS.get(metric)
    if higher_is_better is None:
        if known is None:
            raise ValueError(
                f"metric {metric!r} has no known direction; set higher_is_better explicitly "
                f"(known: {sorted(METRIC_DIRECTIONS)})"
            )
        return known
    if known is not None and known != higher_is_better:
        # A flipped direction on a known metric would promote worse models; refuse it.
        word = "higher" if known else "lower"
        raise ValueError(
            f"metric {metric!r} is {word}-is-better; higher_is_better={higher_is_better} contradicts it"
        )
    return higher_is_better


class GuardRule(BaseModel):
    """A metric the challenger may not worsen by more than `max_worsening`."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Guard metric name, e.g. 'brier'.")
    max_worsening: float = Field(
        default=0.0, ge=0.0, description="Largest allowed worsening (in the metric's units) vs. the champion."
    )
    higher_is_better: bool | None = Field(
        default=None, description="Direction of the metric; inferred for the standard credit metrics."
    )

    @model_validator(mode="after")
    def _direction(self) -> GuardRule:
        self.higher_is_better = _resolve_direction(self.metric, self.higher_is_better)
        return self


def _default_guards() -> list[GuardRule]:
    # Better ranking must not come with clearly worse calibration: PDs feed pricing and grades.
    return [GuardRule(metric="brier", max_worsening=0.01)]


class PromotionRule(BaseModel):
    """When a challenger replaces the champion."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(
        default="roc_auc", description="Primary metric the challenger must beat the champion on."
    )
    higher_is_better: bool | None = Field(
        default=None, description="Direction of the primary metric; inferred for the standard credit metrics."
    )
    min_margin: float = Field(
        default=0.0, ge=0.0, description="The challenger must beat the champion by strictly more than this."
    )
    guards: list[GuardRule] = Field(
        default_factory=_default_guards,
        description="Metrics that must not get worse by more than their allowance.",
    )
    max_p_value: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="When set, the challenger's gain on the same rows must also be significant: the "
        "paired test's one-sided p-value at most this (e.g. 0.05). Off by default.",
    )

    @model_validator(mode="after")
    def _direction(self) -> PromotionRule:
        self.higher_is_better = _resolve_direction(self.metric, self.higher_is_better)
        return self


class PromotionDecision(BaseModel):
    """The verdict of `decide`, with the numbers behind it."""

    model_config = ConfigDict(extra="forbid")

    promote: bool = Field(description="True when the challenger should become champion.")
    reason: str = Field(description="One-line explanation with the compared numbers.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Compared values, margins and guard results."
    )


class SameRowsEvidence(BaseModel):
    """The challenger and a champion version scored on the same rows (the challenger's test
    rows), with the paired test on the rule's metric."""

    model_config = ConfigDict(extra="forbid")

    champion_version: str = Field(description="The champion version that was re-scored on the rows.")
    rows: str = Field(description='The rows in words: "the challenger\'s 150 test rows (45 defaults)".')
    challenger: dict[str, float] = Field(
        default_factory=dict, description="The challenger's metrics on the rows."
    )
    champion: dict[str, float] = Field(
        default_factory=dict, description="The champion's metrics on the same rows."
    )
    comparison: PairedComparison | None = Field(
        default=None, description="Paired test of the rule's metric on the rows (None with `fallback`)."
    )
    compared: int | None = Field(default=None, description="How many rows were compared.")
    excluded: dict[str, int] | None = Field(
        default=None,
        description="Test rows left out because the champion was fitted on them, by split (train, "
        "validation); None when its artifact does not record its fit rows (overlap unknown).",
    )
    fallback: str | None = Field(
        default=None,
        description="Why the rows left cannot decide (too few, one class only): the verdict is then "
        "made on the recorded metrics, naming this reason.",
    )

    @model_validator(mode="after")
    def _compared_or_fallback(self) -> SameRowsEvidence:
        if self.comparison is None and self.fallback is None:
            raise ValueError("same-rows evidence needs a paired comparison or the reason it has none")
        return self


def _number(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def improvement(challenger: float, champion: float, higher_is_better: bool) -> float:
    """How much better `challenger` is than `champion` on a metric (negative: worse)."""
    return challenger - champion if higher_is_better else champion - challenger


def _compare_primary(
    challenger_value: float | None,
    champion_metrics: Mapping[str, Any],
    rule: PromotionRule,
    details: dict[str, Any],
) -> tuple[PromotionDecision | None, str]:
    """Compare the primary metric: a refusal (or None when the challenger wins) and the numbers as text.

    Fills `details` with the champion's value and the improvement as they become known, so a
    refusal carries exactly the numbers it was based on."""
    if challenger_value is None:
        refusal = PromotionDecision(
            promote=False,
            reason=f"challenger has no {rule.metric} recorded; cannot compare with the champion",
            details=details,
        )
        return refusal, ""
    champion_value = _number(champion_metrics, rule.metric)
    details["champion"] = champion_value
    if champion_value is None:
        refusal = PromotionDecision(
            promote=False,
            reason=f"champion has no {rule.metric} recorded; promote manually if intended",
            details=details,
        )
        return refusal, ""

    gain = improvement(challenger_value, champion_value, bool(rule.higher_is_better))
    details["improvement"] = gain
    compared = f"{rule.metric} {challenger_value:.4f} vs champion {champion_value:.4f} (change {gain:+.4f})"
    if gain <= rule.min_margin:
        verdict = (
            "is not better"
            if gain <= 0
            else f"does not beat it by more than the margin {rule.min_margin:.4f}"
        )
        reason = f"challenger {verdict}: {compared}"
        return PromotionDecision(promote=False, reason=reason, details=details), compared
    return None, compared


def _check_guard(
    guard: GuardRule, challenger_metrics: Mapping[str, Any], champion_metrics: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """One guard's result (for the audit details) and its violation message, if it is violated."""
    c, h = _number(challenger_metrics, guard.metric), _number(champion_metrics, guard.metric)
    result: dict[str, Any] = {
        "metric": guard.metric,
        "challenger": c,
        "champion": h,
        "max_worsening": guard.max_worsening,
    }
    if h is None:
        # Nothing to compare against (e.g. a manually registered champion): the guard is moot.
        result.update(holds=True, note="champion has no value")
        return result, None
    if c is None:
        result.update(holds=False, note="challenger has no value")
        return result, f"{guard.metric} missing for challenger"
    worsening = -improvement(c, h, bool(guard.higher_is_better))
    holds = worsening <= guard.max_worsening
    result.update(worsening=worsening, holds=holds)
    if holds:
        return result, None
    violation = (
        f"{guard.metric} worsened by {worsening:.4f} ({h:.4f} -> {c:.4f}), allowed {guard.max_worsening:.4f}"
    )
    return result, violation


def _guard_violations(
    rule: PromotionRule,
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any],
    details: dict[str, Any],
) -> list[str]:
    """Check every guard of `rule`, record each result in `details["guards"]`, return the violations."""
    results = [_check_guard(guard, challenger_metrics, champion_metrics) for guard in rule.guards]
    details["guards"] = [result for result, _ in results]
    return [violation for _, violation in results if violation is not None]


def decide(
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None,
    rule: PromotionRule | None = None,
) -> PromotionDecision:
    """Promote the challenger iff it beats the champion by more than the margin and every guard holds."""
    rule = rule or PromotionRule()
    challenger_value = _number(challenger_metrics, rule.metric)
    details: dict[str, Any] = {
        "metric": rule.metric,
        "challenger": challenger_value,
        "min_margin": rule.min_margin,
    }
    if champion_metrics is None:
        return PromotionDecision(promote=True, reason="no current champion", details=details)

    # The primary metric first: guards only matter for a challenger that is better.
    refusal, compared = _compare_primary(challenger_value, champion_metrics, rule, details)
    if refusal is not None:
        return refusal

    violations = _guard_violations(rule, challenger_metrics, champion_metrics, details)

    if violations:
        return PromotionDecision(
            promote=False,
            reason=f"guard violated: {'; '.join(violations)} (although {compared})",
            details=details,
        )
    return PromotionDecision(promote=True, reason=f"challenger is better: {compared}", details=details)


# Float noise only: the same weights under the same calibration give the very same ranking.
_SAME = 1e-12


def decide_rechosen_policy(
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any],
    rule: PromotionRule | None = None,
    *,
    champion_version: str,
) -> PromotionDecision:
    """The verdict on a version that re-chooses the policy of the champion's own weights (the same
    training run: another cut-off, calibration, grade bands or stacker, chosen on validation).

    There is no better model to prove: the weights are the champion's and the policy is the
    analyst's choice, so it replaces the champion unless it ranks worse on the rule's metric or a
    guard (calibration) worsens beyond its allowance. The reason names both cut-offs."""
    rule = rule or PromotionRule()
    mine, theirs = _number(challenger_metrics, rule.metric), _number(champion_metrics, rule.metric)
    new_cut, old_cut = _number(challenger_metrics, "threshold"), _number(champion_metrics, "threshold")
    known = new_cut is not None and old_cut is not None
    change = f"cut-off {old_cut:.4f} -> {new_cut:.4f}" if known else "cut-off re-chosen"
    what = f"policy re-chosen on the weights of champion version {champion_version} ({change})"
    details: dict[str, Any] = {
        "metric": rule.metric, "challenger": mine, "champion": theirs, "rechosen_from": champion_version,
        "cutoff": new_cut, "champion_cutoff": old_cut,
    }  # fmt: skip
    if mine is None or theirs is None:
        reason = f"{what}, but {rule.metric} is missing on one of them; promote manually if intended"
        return PromotionDecision(promote=False, reason=reason, details=details)
    gain = improvement(mine, theirs, bool(rule.higher_is_better))
    details["improvement"] = gain
    if gain < -_SAME:
        reason = f"{what}, but {rule.metric} falls {theirs:.4f} -> {mine:.4f}; the champion stays"
        return PromotionDecision(promote=False, reason=reason, details=details)
    violations = _guard_violations(rule, challenger_metrics, champion_metrics, details)
    if violations:
        reason = f"{what}, but guard violated: {'; '.join(violations)}; the champion stays"
        return PromotionDecision(promote=False, reason=reason, details=details)
    reason = f"{what}; {rule.metric} {mine:.4f} (change {gain:+.4f}), guards hold"
    return PromotionDecision(promote=True, reason=reason, details=details)


def decide_on_same_rows(evidence: SameRowsEvidence, rule: PromotionRule | None = None) -> PromotionDecision:
    """Promote iff the challenger beats the champion on the same rows by more than the margin
    (and, with `rule.max_p_value`, significantly) and every guard holds on those rows."""
    rule = rule or PromotionRule()
    c = evidence.comparison
    if c is None:
        raise ValueError(f"no comparison on the same rows: {evidence.fallback}")
    label, fmt = metric_spec(rule.metric).label, lambda v: format_metric(rule.metric, v)
    compared = (
        f"on {evidence.rows} the challenger's {label} is {fmt(c.challenger)} and champion version "
        f"{evidence.champion_version}'s {fmt(c.champion)} (change {c.improvement:+.4f}, 95% CI "
        f"{c.ci_low:+.4f} to {c.ci_high:+.4f}, {c.method} one-sided p = {c.p_value:.3f})"
    )
    details: dict[str, Any] = {
        "metric": rule.metric, "basis": "same_rows", "rows": evidence.rows,
        "challenger": c.challenger, "champion": c.champion, "improvement": c.improvement,
        "min_margin": rule.min_margin, "max_p_value": rule.max_p_value, "comparison": c.model_dump(),
        "rows_compared": evidence.compared, "excluded_fit_rows": evidence.excluded,
    }  # fmt: skip
    if c.improvement <= rule.min_margin:
        verdict = (
            "is not better"
            if c.improvement <= 0
            else f"does not beat it by more than the margin {rule.min_margin:.4f}"
        )
        reason = f"challenger {verdict} on the same rows: {compared}; the champion stays"
        return PromotionDecision(promote=False, reason=reason, details=details)
    if rule.max_p_value is not None and c.p_value > rule.max_p_value:
        reason = (
            f"challenger's gain is not significant on the same rows: {compared}, above the allowed "
            f"p = {rule.max_p_value:.3f}; the champion stays"
        )
        return PromotionDecision(promote=False, reason=reason, details=details)
    violations = _guard_violations(rule, evidence.challenger, evidence.champion, details)
    if violations:
        reason = f"guard violated on the same rows: {'; '.join(violations)}, although {compared}"
        return PromotionDecision(promote=False, reason=reason, details=details)
    reason = f"challenger is better on the same rows: {compared}"
    return PromotionDecision(promote=True, reason=reason, details=details)


def gated(decision: PromotionDecision, gate: PromotionDecision | None) -> PromotionDecision:
    """`decision`, unless it promotes and `gate` refuses: then the gate's refusal.

    A gate is a refusal that does not depend on the champion (the benchmark gate:
    `run.benchmark_gate`), so every verdict against a champion, first or made again because the
    champion moved, passes through it. The champion verdict it overrode stays in the details and,
    when there was a champion to compare with, in the reason, so an analyst deciding on a manual
    promotion reads both: "<gate's sentence>; against the champion alone: <verdict>"."""
    if gate is None or gate.promote or not decision.promote:
        return decision
    overridden = {"reason": decision.reason, **decision.details}
    compared = "champion" in decision.details  # not "no current champion"
    reason = f"{gate.reason}; against the champion alone: {decision.reason}" if compared else gate.reason
    details = {**gate.details, "champion_verdict": overridden}
    return gate.model_copy(update={"reason": reason, "details": details})


def decide_against(
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None,
    rule: PromotionRule | None = None,
    *,
    champion_version: str | None,
    same_rows: SameRowsEvidence | None,
) -> PromotionDecision:
    """The promotion verdict against champion `champion_version`: on the same rows when
    `same_rows` re-scored that very champion on the rule's metric, else on the recorded test
    metrics of each version (each on its own split), and the verdict says which and why."""
    rule = rule or PromotionRule()
    if champion_metrics is None:
        return decide(challenger_metrics, None, rule)
    if same_rows is None:
        why = "no same-rows evaluation of the champion exists for this version"
    elif same_rows.champion_version != champion_version:
        why = (
            f"the same-rows evaluation scored champion version {same_rows.champion_version}, "
            f"but the champion is now version {champion_version}"
        )
    elif same_rows.fallback is not None:
        why = same_rows.fallback
    elif same_rows.comparison is None or same_rows.comparison.metric != rule.metric:
        compared = same_rows.comparison.metric if same_rows.comparison is not None else "nothing"
        why = f"the same-rows evaluation compared {compared}, not {rule.metric}"
    else:
        return decide_on_same_rows(same_rows, rule)
    recorded = decide(challenger_metrics, champion_metrics, rule)
    reason = (
        f"{recorded.reason}, by the recorded test {rule.metric} of each version, each measured on "
        f"its own test split ({why})"
    )
    details = {**recorded.details, "basis": "recorded", "why_recorded": why}
    return recorded.model_copy(update={"reason": reason, "details": details})
