"""Override monitoring: how often analysts override the model, and, once outcomes arrive, who was right.

Two tables of one data set, from the labeled book (`risk_app.outcomes.book`, which already
applies accepted overrides: a low-side override is a booked loan, a high-side one is not) and
the override ledger (`risk.overrides`):

* **rates** — low-side overrides (the analyst approved a model decline) per model decline and
  high-side overrides (the analyst declined a model approval) per model approval, per risk
  grade, per reason code and per analyst reference. A row is over the limit when its rate
  exceeds `max_rate` and it rests on at least `min_decisions` model decisions (a single
  override among three declines is not a finding).
* **were the analysts right?** — the overridden approvals whose outcome is known: their realized
  default rate with its Jeffreys 95 % interval (as the backtests use) against the mean PD the
  model gave them. Below the interval's reach of the PD, the analysts saw lower risk than the
  model did and were right; inside it, the loans defaulted as the model predicted; above it,
  worse. High-side overrides have no outcome (no loan was booked).

    report = monitor_overrides("german_credit", max_rate=0.10, min_decisions=20)
    print(report.sentences())
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.outcomes.backtest import jeffreys_interval
from risk_app.outcomes.book import labeled_book
from risk_app.overrides import store
from risk_app.storage.scores import warehouse_connection

RATE_COLUMNS = ("dimension", "value", "side", "decisions", "overrides", "rate", "over_limit")
OUTCOME_COLUMNS = ("n_with_outcome", "defaults", "realized_rate", "jeffreys_low", "jeffreys_high", "mean_pd")
_SIDE_DECISION = {"low": "decline", "high": "approve"}  # the model decision each side overrides


@dataclass(frozen=True)
class OverrideMonitoring:
    """Override rates of one data set against a limit, and the outcome of overridden approvals."""

    dataset: str
    max_rate: float
    min_decisions: int
    rates: pd.DataFrame  # RATE_COLUMNS
    approvals: dict[str, float]  # OUTCOME_COLUMNS of the low-side overrides with an outcome
    verdict: str

    @property
    def over_limit(self) -> pd.DataFrame:
        return self.rates.loc[self.rates["over_limit"]]

    def sentences(self) -> list[str]:
        """What an analyst reads first: the limit's verdict and the outcome verdict."""
        over = self.over_limit
        if over.empty:
            limit = (
                f"{self.dataset}: no override rate above {self.max_rate:.0%} (per grade, reason and "
                f"analyst, on at least {self.min_decisions} model decisions)"
            )
        else:
            listed = "; ".join(
                f"{r.side}-side {r.dimension} {r.value}: {r.overrides} of {r.decisions} ({r.rate:.0%})"
                for r in over.head(5).itertuples()
            )
            more = f" and {len(over) - 5} more" if len(over) > 5 else ""
            limit = f"{self.dataset}: override rates above {self.max_rate:.0%}: {listed}{more}"
        return [limit, self.verdict]


def _rate_rows(book: pd.DataFrame, overrides: pd.DataFrame, dimension: str, column: str) -> list[dict]:
    """Rates of one dimension: per grade the grade's decisions of that side are the base; per
    reason and analyst, all the model's decisions of that side."""
    rows = []
    for side, decision in _SIDE_DECISION.items():
        made = book.loc[book["decision"] == decision]
        mine = overrides.loc[overrides["side"] == side]
        if column == "risk_grade":
            values = sorted(set(made["risk_grade"].astype(str)) | set(mine["risk_grade"].astype(str)))
            bases = made["risk_grade"].astype(str).value_counts()
        else:
            values = sorted(set(mine[column].astype(str)))
            bases = pd.Series(len(made), index=values, dtype="int64")
        counts = mine[column].astype(str).value_counts()
        for value in values:
            n, k = int(bases.get(value, 0)), int(counts.get(value, 0))
            rows.append(
                {"dimension": dimension, "value": value, "side": side, "decisions": n, "overrides": k,
                 "rate": k / n if n else float("nan")}
            )  # fmt: skip
    return rows


def override_rates(
    book: pd.DataFrame, overrides: pd.DataFrame, max_rate: float, min_decisions: int
) -> pd.DataFrame:
    """RATE_COLUMNS per grade, reason and analyst, low and high side."""
    rows: list[dict] = []
    for dimension, column in (("grade", "risk_grade"), ("reason", "reason_code"), ("analyst", "analyst")):
        rows += _rate_rows(book, overrides, dimension, column)
    rates = pd.DataFrame(rows, columns=list(RATE_COLUMNS[:-1]))
    rates["over_limit"] = (rates["rate"] > max_rate) & (rates["decisions"] >= min_decisions)
    return rates[list(RATE_COLUMNS)]


def overridden_approvals(book: pd.DataFrame) -> tuple[dict[str, float], str]:
    """(OUTCOME_COLUMNS, verdict sentence) of the low-side overrides whose outcome is known."""
    known = book.loc[(book["override_side"] == "low") & (book["status"] == "with_outcome")]
    n, d = len(known), int(known["outcome_default"].sum()) if len(known) else 0
    if n == 0:
        pending = int(((book["override_side"] == "low") & (book["status"] == "pending")).sum())
        return (
            dict.fromkeys(OUTCOME_COLUMNS, float("nan")) | {"n_with_outcome": 0.0, "defaults": 0.0},
            f"no overridden approval has an outcome yet ({pending} pending): who was right is not known",
        )
    low, high = jeffreys_interval(n, d)
    mean_pd, realized = float(known["probability_of_default"].mean()), d / n
    stats = {"n_with_outcome": float(n), "defaults": float(d), "realized_rate": realized,
             "jeffreys_low": low, "jeffreys_high": high, "mean_pd": mean_pd}  # fmt: skip
    said = (
        f"{n} overridden approval(s) with an outcome defaulted at {realized:.1%} (95% interval "
        f"{low:.1%} to {high:.1%}) against the model's mean PD of {mean_pd:.1%} for them"
    )
    if high < mean_pd:
        return stats, f"{said}: the analysts were right, these loans were safer than the model said"
    if low > mean_pd:
        return stats, f"{said}: the analysts were wrong, these loans did worse than even the model said"
    return stats, f"{said}: they defaulted as the model predicted; the overrides added the risk it priced"


def monitor_overrides(
    spec: DatasetSpec | str | None = None,
    *,
    max_rate: float = 0.10,
    min_decisions: int = 20,
    path: str | os.PathLike[str] | None = None,
) -> OverrideMonitoring:
    """Override rates against `max_rate` and the outcome of overridden approvals, for one data set."""
    spec = load_spec(spec)
    with warehouse_connection(path) as con:
        book = labeled_book(spec, con=con)
        overrides = store.read_rows(store.OVERRIDES, {"dataset": spec.name}, con=con)
    approvals, verdict = overridden_approvals(book)
    return OverrideMonitoring(
        spec.name, max_rate, min_decisions, override_rates(book, overrides, max_rate, min_decisions),
        approvals, verdict,
    )  # fmt: skip


__all__ = ["OverrideMonitoring", "monitor_overrides", "overridden_approvals", "override_rates"]
