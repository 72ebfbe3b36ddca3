"""Preference pairs from analyst overrides: the feedback the `rlhf` reward model learns from.

Each accepted override (`risk.overrides`) is one decision the model and an analyst disagreed
on, about an application whose text the labeled book can rebuild (the features the model saw,
serialized with the data set's spec). The pair prefers one decision over the other:

* outcome known (an analyst-approved loan that repaid or defaulted): the outcome decides which
  decision was right — approve if it repaid, decline if it defaulted — whoever made it, and the
  pair counts `OUTCOME_WEIGHT` (2) times;
* outcome not known (pending, or an analyst decline, which never gets one): the analyst's
  decision is preferred, once.

So analysts teach the reward model where the outcomes have not spoken yet, and the outcomes
correct them where they have.

`decisions="overrides"` (the default) takes the overrides alone. They are chosen by
disagreement: every low-side override is an application the model found risky, every high-side
one an application it found safe. A reward model fitted to them alone learns "prefer the opposite
of what the model's features say" and carries that to every applicant: in the simulated-analyst
benchmark (docs/rlhf-goals.md) its margin ranked validation outcomes at AUC 0.34, worse than a
coin. `decisions="book"` adds every decision that stood (side "none"): decided by the outcome
where a loan was booked and its outcome is known (counted `OUTCOME_WEIGHT` times), else the
standing decision once (`decided_by` "standing"), so the overrides correct the book's decisions
instead of standing for all of them. `weight` is an integer repeat count (trl's reward trainer takes no
sample weights).

    pairs = override_preference_pairs("german_credit")
    pairs[["application_id", "chosen_decision", "rejected_decision", "weight", "decided_by"]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.outcomes.book import labeled_book
from risk_app.storage.scores import warehouse_connection

OUTCOME_WEIGHT = 2
PairDecisions = Literal["overrides", "book"]
PAIR_COLUMNS = (
    "application_id", "text", "chosen_decision", "rejected_decision", "weight", "decided_by", "side",
)  # fmt: skip


def override_preference_pairs(
    spec: DatasetSpec | str | None = None,
    *,
    exclude_fields: Sequence[str] = (),
    path: str | os.PathLike[str] | None = None,
    decisions: PairDecisions = "overrides",
) -> pd.DataFrame:
    """One pair per accepted override of data set `spec` (PAIR_COLUMNS), oriented and weighted
    as the module docstring says, and with `decisions="book"` one per decision that stood too;
    `decided_by` is "outcome", "analyst" or "standing"."""
    spec = load_spec(spec)
    with warehouse_connection(path) as con:
        book = labeled_book(spec, con=con)
    return pairs_from_book(book, spec, exclude_fields=exclude_fields, decisions=decisions)


def pairs_from_book(
    book: pd.DataFrame,
    spec: DatasetSpec,
    *,
    exclude_fields: Sequence[str] = (),
    decisions: PairDecisions = "overrides",
) -> pd.DataFrame:
    """The pairs of a labeled book's overridden rows (`decisions="book"`: of all its rows)
    (`risk_app.outcomes.book`: the application's columns, `override_side`, `booked_decision`,
    `status`, `outcome_default`)."""
    if decisions == "overrides":
        overridden = book.loc[book["override_side"].notna()].reset_index(drop=True)
    else:
        overridden = book.reset_index(drop=True)
    if overridden.empty:
        return pd.DataFrame(columns=list(PAIR_COLUMNS))
    texts = serialize_frame(overridden, exclude=exclude_fields, spec=spec)
    known = overridden["status"].eq("with_outcome").to_numpy()
    was_overridden = overridden["override_side"].notna().to_numpy()
    defaulted = overridden["outcome_default"].fillna(0).astype(int).eq(1).to_numpy()
    by_outcome = np.where(defaulted, "decline", "approve")
    chosen = np.where(known, by_outcome, overridden["booked_decision"].astype(str).to_numpy())
    return pd.DataFrame(
        {
            "application_id": overridden["application_id"].astype(str),
            "text": texts.to_numpy(),
            "chosen_decision": chosen,
            "rejected_decision": np.where(chosen == "approve", "decline", "approve"),
            "weight": np.where(known, OUTCOME_WEIGHT, 1).astype(int),
            "decided_by": np.where(known, "outcome", np.where(was_overridden, "analyst", "standing")),
            "side": overridden["override_side"].where(was_overridden, "none").astype(str),
        },
        columns=list(PAIR_COLUMNS),
    )


__all__ = ["OUTCOME_WEIGHT", "PAIR_COLUMNS", "PairDecisions", "override_preference_pairs", "pairs_from_book"]
