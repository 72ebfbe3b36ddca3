"""PD backtesting: did the defaults predicted for a vintage come true?

For one vintage (applications of one month) and the model version that decided them, per risk
grade: applications with a known outcome `n`, defaults `d`, the mean predicted PD, the realized
default rate `d / n`, and the Jeffreys test as in Basel/ECB PD backtesting: the realized rate's
posterior is Beta(d + 0.5, n - d + 0.5), its central 95% interval is the Jeffreys interval, and
the two-sided p-value says how unlikely the predicted PD is under it.

Traffic lights (plain words beside each grade):
    green  p >= 0.05                          consistent with the prediction
    amber  0.001 <= p < 0.05, or any p when the realized rate is *below* the prediction
           (conservative PDs cost approvals, not capital)
    red    p < 0.001 and the realized rate above the prediction: PDs underestimated
A grade whose interval does not contain its mean PD is flagged (`inside_interval` False); the
Dagster check warns on it. AUC, Brier and ECE are computed on the vintage's realized outcomes
when both classes occur (AUC needs both).

    result = backtest_vintage(book, "2025-03")
    print(result.summary)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.metrics import brier_score_loss, roc_auc_score

from risk_app.errors import RiskAppError
from risk_app.evaluate.curves import expected_calibration_error
from risk_app.outcomes import store
from risk_app.policy.grades import grade_names

Light = Literal["green", "amber", "red"]
LIGHTS: tuple[Light, ...] = ("green", "amber", "red")
AMBER_P, RED_P, LEVEL = 0.05, 0.001, 0.95
# The per-grade numbers a report shows, in order.
GRADE_COLUMNS = (
    "grade", "n", "defaults", "mean_pd", "realized_rate", "jeffreys_low", "jeffreys_high", "p_value", "light",
)  # fmt: skip


@dataclass(frozen=True)
class VintageBacktest:
    """One model version's backtest on one vintage: a row per grade and the vintage's totals."""

    vintage: str
    model_version: str
    grades: pd.DataFrame
    n: int
    defaults: int
    auc: float | None
    brier: float | None
    ece: float | None
    light: Light
    summary: str

    @property
    def outside_interval(self) -> list[str]:
        return self.grades.loc[~self.grades["inside_interval"], "grade"].tolist()


def jeffreys_interval(n: int, d: int, level: float = LEVEL) -> tuple[float, float]:
    """Central `level` interval of Beta(d + 0.5, n - d + 0.5)."""
    tail = (1.0 - level) / 2.0
    a, b = d + 0.5, n - d + 0.5
    return float(beta.ppf(tail, a, b)), float(beta.ppf(1.0 - tail, a, b))


def jeffreys_p_value(n: int, d: int, pd_: float) -> float:
    """Two-sided p-value of the predicted PD under the Jeffreys posterior of the default rate."""
    below = float(beta.cdf(pd_, d + 0.5, n - d + 0.5))
    return float(min(1.0, 2.0 * min(below, 1.0 - below)))


def traffic_light(p_value: float, realized: float, predicted: float) -> Light:
    if p_value >= AMBER_P:
        return "green"
    if realized > predicted and p_value < RED_P:
        return "red"
    return "amber"


def _verdict(grade: str, n: int, d: int, mean_pd: float, low: float, high: float, light: Light) -> str:
    if light == "green":
        words = "consistent with the prediction"
    elif light == "red":
        words = "far more defaults than predicted: PDs underestimated"
    elif d / n < mean_pd:
        words = "fewer defaults than predicted (conservative PDs)"
    else:
        words = "more defaults than predicted; watch the next vintages"
    return (
        f"grade {grade}: predicted {mean_pd:.1%} on {n} loan(s), {d} defaulted ({d / n:.1%}, "
        f"Jeffreys 95% {low:.1%}-{high:.1%}): {light}, {words}"
    )


def grade_table(labelled: pd.DataFrame, grades: Sequence[str] | None = None) -> pd.DataFrame:
    """Per grade: n, defaults, mean PD, realized rate, Jeffreys interval, p-value, light, verdict."""
    rows = []
    for grade in grades or grade_names():
        part = labelled.loc[labelled["risk_grade"].astype(str) == grade]
        if part.empty:
            continue
        n, d = len(part), int(part["outcome_default"].sum())
        mean_pd = float(part["probability_of_default"].mean())
        low, high = jeffreys_interval(n, d)
        p = jeffreys_p_value(n, d, mean_pd)
        light = traffic_light(p, d / n, mean_pd)
        rows.append(
            {
                "grade": grade, "n": n, "defaults": d, "mean_pd": mean_pd, "realized_rate": d / n,
                "jeffreys_low": low, "jeffreys_high": high, "p_value": p,
                "inside_interval": bool(low <= mean_pd <= high), "light": light,
                "verdict": _verdict(grade, n, d, mean_pd, low, high, light),
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def _worst(lights: Sequence[str]) -> Light:
    return max(lights, key=LIGHTS.index) if lights else "green"  # type: ignore[return-value]


def _discrimination(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """AUC (both classes needed), Brier and ECE on realized outcomes; None where undefined."""
    if len(y) == 0:
        return None, None, None
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
    return auc, float(brier_score_loss(y, p)), float(expected_calibration_error(y, p))


def backtest_vintage(book: pd.DataFrame, vintage: str) -> list[VintageBacktest]:
    """One backtest per model version that decided applications of `vintage` with known outcomes."""
    labelled = book.loc[(book["vintage"] == vintage) & (book["status"] == "with_outcome")]
    if labelled.empty:
        raise RiskAppError(f"vintage {vintage}: no application with a known outcome to backtest yet")
    results = []
    for version, part in labelled.groupby("model_version", sort=True):
        table = grade_table(part)
        y = part["outcome_default"].to_numpy(dtype=int)
        p = part["probability_of_default"].to_numpy(dtype=float)
        auc, brier, ece = _discrimination(y, p)
        light = _worst(table["light"].tolist())
        flagged = table.loc[~table["inside_interval"], "grade"].tolist()
        summary = (
            f"Vintage {vintage}, model {version}: {len(part)} loan(s) with outcome, {int(y.sum())} defaulted "
            f"({y.mean():.1%}) against a mean predicted PD of {p.mean():.1%}. Overall {light}"
            + (
                f"; grade(s) {', '.join(flagged)} outside their Jeffreys interval."
                if flagged
                else "; every grade inside its interval."
            )
            + (f" AUC {auc:.3f}." if auc is not None else " AUC undefined (one class only).")
        )
        results.append(
            VintageBacktest(
                vintage, str(version), table, len(part), int(y.sum()), auc, brier, ece, light, summary
            )
        )
    return results


def backtest_rows(dataset: str, results: Sequence[VintageBacktest]) -> pd.DataFrame:
    """The `risk.backtests` rows of one vintage's results."""
    now = pd.Timestamp.now(tz="UTC")
    frames = []
    for result in results:
        grades = result.grades.drop(columns=["inside_interval"])
        frames.append(
            grades.assign(
                dataset=dataset, vintage=result.vintage, model_version=result.model_version,
                auc=result.auc, brier=result.brier, ece=result.ece, n_vintage=result.n,
                light_overall=result.light, summary=result.summary, computed_at=now,
            )
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def backtest_markdown(result: VintageBacktest) -> str:
    """The backtest as a markdown section: summary, then the per-grade table."""
    shown = result.grades[list(GRADE_COLUMNS)]
    table = shown.round(4).to_markdown(index=False)
    verdicts = "\n".join(f"- {v}" for v in result.grades["verdict"])
    metrics = ", ".join(
        f"{name} {value:.3f}"
        for name, value in (("AUC", result.auc), ("Brier", result.brier), ("ECE", result.ece))
        if value is not None
    )
    return (
        f"## Backtest: vintage {result.vintage}, model {result.model_version} ({result.light.upper()})\n\n"
        f"{result.summary}\n\n{metrics}\n\n{table}\n\n{verdicts}\n"
    )


def record_backtest(book: pd.DataFrame, dataset: str, vintage: str) -> list[VintageBacktest]:
    """Backtest one vintage and replace its rows in `risk.backtests` (one transaction)."""
    results = backtest_vintage(book, vintage)
    store.replace_backtest(backtest_rows(dataset, results), dataset, vintage)
    return results


def recorded_backtests(dataset: str, model_version: str | None = None) -> pd.DataFrame:
    """Backtest rows of a data set (optionally one model version), newest vintage first."""
    equals = {"dataset": dataset}
    if model_version is not None:
        equals["model_version"] = model_version
    rows = store.read_rows(store.BACKTESTS, equals)
    return rows.sort_values(["vintage", "model_version", "grade"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def latest_backtest(dataset: str, model_version: str) -> VintageBacktest | None:
    """The newest recorded vintage backtest of one model version, rebuilt from the warehouse."""
    rows = recorded_backtests(dataset, model_version)
    if rows.empty:
        return None
    newest = rows.loc[rows["vintage"] == rows["vintage"].iloc[0]]
    grades = newest[[*GRADE_COLUMNS, "verdict"]]
    grades = grades.assign(
        inside_interval=(grades["jeffreys_low"] <= grades["mean_pd"])
        & (grades["mean_pd"] <= grades["jeffreys_high"])
    )
    first = newest.iloc[0]

    def _opt(value: object) -> float | None:
        return None if pd.isna(value) else float(value)  # type: ignore[arg-type]

    return VintageBacktest(
        str(first["vintage"]), model_version, grades.reset_index(drop=True), int(first["n_vintage"]),
        int(newest["defaults"].sum()), _opt(first["auc"]), _opt(first["brier"]), _opt(first["ece"]),
        str(first["light_overall"]), str(first["summary"]),  # type: ignore[arg-type]
    )  # fmt: skip


__all__ = [
    "LIGHTS",
    "Light",
    "VintageBacktest",
    "backtest_markdown",
    "backtest_rows",
    "backtest_vintage",
    "grade_table",
    "jeffreys_interval",
    "jeffreys_p_value",
    "latest_backtest",
    "record_backtest",
    "recorded_backtests",
    "traffic_light",
]
