"""Champion by evidence: a challenger must also hold its own against the classical benchmark.

The promotion rule compares a challenger with the champion; this gate compares it with the
best classical model trained on the same split and scored on the same test rows in the same
run: logistic regression and LightGBM on the tabular columns and, on a data set with free
text, the ones that read the text too (TF-IDF, sentence embeddings;
evaluate/text_baselines.py). Other rows of the evaluation (the champion re-scored, a hybrid's
LLM alone) are not classical benchmarks and are not compared here (the champion on the same
rows is what the promotion rule itself decides on: `run.same_rows`). A challenger that loses to
the best of them by more than `margin` on the rule's metric is not promoted automatically,
however it compares with the champion; an analyst can still promote it with a reason
(`risk-app models promote`, the `promote_version_job`), which the audit log keeps.
"""

from __future__ import annotations

import os

from risk_app.errors import ConfigError
from risk_app.evaluate.metric_table import format_metric
from risk_app.evaluate.text_baselines import CLASSICAL_BASELINES
from risk_app.registry.promotion import PromotionDecision, PromotionRule, improvement
from risk_app.run.record import RunRecord

DEFAULT_BENCHMARK_MARGIN = 0.02
MARGIN_ENV = "RISK_APP_BENCHMARK_MARGIN"


def configured_margin() -> float | None:
    """The deployment's margin: `$RISK_APP_BENCHMARK_MARGIN` (a number, or `off`), else 0.02."""
    raw = os.environ.get(MARGIN_ENV, "").strip().lower()
    if not raw:
        return DEFAULT_BENCHMARK_MARGIN
    if raw in ("off", "none"):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"${MARGIN_ENV}={raw!r}: expected a number such as 0.02, or 'off'") from None


def benchmark_verdict(
    record: RunRecord, rule: PromotionRule, margin: float | None
) -> PromotionDecision | None:
    """A rejection when the challenger trails the best classical model (tabular or text-reading)
    by more than `margin`, else None (the champion comparison stands). `margin=None` turns the
    gate off."""
    evaluation = record.need("evaluation")
    benchmarks = {name: m for name, m in evaluation.baselines.items() if name in CLASSICAL_BASELINES}
    if margin is None or not benchmarks:
        return None
    higher = bool(rule.higher_is_better)
    values = {name: float(m[rule.metric]) for name, m in benchmarks.items()}
    best_name = max(values, key=values.get) if higher else min(values, key=values.get)  # type: ignore[arg-type]
    best, mine = values[best_name], float(evaluation.test[rule.metric])
    shortfall = -improvement(mine, best, higher)
    if shortfall <= margin:
        return None
    reason = (
        f"challenger {rule.metric} {format_metric(rule.metric, mine)} trails the classical benchmark "
        f"{best_name} ({format_metric(rule.metric, best)}) on the same test rows by {shortfall:.4f}, more "
        f"than the allowed {margin:.4f}; not promoted automatically (an analyst may promote it with a reason)"
    )
    details = {"metric": rule.metric, "challenger": mine, "benchmark": best_name, "benchmark_value": best,
               "shortfall": shortfall, "benchmark_margin": margin}  # fmt: skip
    return PromotionDecision(promote=False, reason=reason, details=details)
