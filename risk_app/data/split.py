"""Assign each application to train / validation / test: at random, or out of time.

The split is over *groups* (by default `application_id`; augmented copies carry their source
id), so every copy of an application lands in the same split and augmentation cannot leak a
test applicant into training. Groups are split with scikit-learn's `train_test_split` twice,
stratified by their `default` label, so each split has about the file's bad rate. The groups
are sorted first: the result depends on the seed and the data, never on row order.

`out_of_time_split` is what a lender validates a scorecard with: sort by application date,
the oldest `fractions[0]` train, the next `fractions[1]` validate, the newest test. Rows of one
date never straddle two splits, so the test period starts strictly after training ends.
`latest_vintage_fractions` picks the fractions that test on the newest month and validate on
the month before (a retrain on the labeled book).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from risk_app.errors import ConfigError

SPLITS: tuple[str, str, str] = ("train", "validation", "test")
SplitKind = Literal["random", "out_of_time"]
LABEL_COLUMN = "default"


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Return (train, validation, test) fractions, or raise ConfigError naming the problem."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3:
        raise ConfigError(f"split fractions must be three numbers (train, validation, test), got {values}")
    if any(not math.isfinite(f) or f <= 0 for f in values):
        raise ConfigError(f"every split fraction must be > 0, got {values}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split fractions must sum to 1, got {values} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


def _split_groups(
    groups: np.ndarray, labels: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        a, b = train_test_split(groups, test_size=test_size, random_state=seed, stratify=labels)
    except ValueError:
        # Too few groups of one class to stratify (tiny samples): a seeded plain split still
        # gives every split some rows, which beats refusing to split at all.
        a, b = train_test_split(groups, test_size=test_size, random_state=seed)
    return np.asarray(a), np.asarray(b)


def assign_split(
    df: pd.DataFrame,
    seed: int = 42,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    group_column: str = "application_id",
) -> pd.Series:
    """A Series (index of `df`, name "split") of "train" / "validation" / "test"."""
    train_frac, val_frac, test_frac = check_fractions(fractions)
    for column in (group_column, LABEL_COLUMN):
        if column not in df.columns:
            raise ConfigError(f"cannot split: column '{column}' is missing (have {list(df.columns)})")
    if df[group_column].isna().any() or df[LABEL_COLUMN].isna().any():
        raise ConfigError(f"cannot split: '{group_column}' and '{LABEL_COLUMN}' must have no missing values")

    # A group's label: bad if any of its rows is bad (copies of one application share a label).
    group_labels = df.groupby(group_column, sort=True)[LABEL_COLUMN].max()
    if len(group_labels) < 3:
        raise ConfigError(f"cannot split {len(group_labels)} group(s) into train/validation/test; need >= 3")
    groups = group_labels.index.to_numpy()
    labels = group_labels.to_numpy()

    train_groups, rest = _split_groups(groups, labels, test_size=val_frac + test_frac, seed=seed)
    rest_labels = group_labels.loc[rest].to_numpy()
    val_groups, test_groups = _split_groups(
        rest, rest_labels, test_size=test_frac / (val_frac + test_frac), seed=seed
    )
    assert len(train_groups) and len(val_groups) and len(test_groups), (
        "train_test_split returned an empty side"
    )

    lookup = {g: "train" for g in train_groups}
    lookup.update({g: "validation" for g in val_groups})
    lookup.update({g: "test" for g in test_groups})
    return df[group_column].map(lookup).rename("split")


def out_of_time_split(dates: pd.Series, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> pd.Series:
    """ "train" for the oldest rows, "validation" next, "test" for the newest (index of `dates`).

    Cut points are the dates at the cumulative fractions; every row of one date goes to the same
    (earlier) split, so the periods do not overlap. Missing or unreadable dates are an error.
    """
    train_frac, val_frac, _ = check_fractions(fractions)
    parsed = pd.to_datetime(dates, errors="coerce")
    if parsed.isna().any():
        row = parsed.index[parsed.isna()][0]
        raise ConfigError(f"out-of-time split: row {row} has no readable date ({dates.loc[row]!r})")
    ordered = np.sort(parsed.to_numpy())
    n = len(ordered)
    if pd.Series(ordered).nunique() < 3:
        raise ConfigError(
            f"out-of-time split needs at least 3 distinct dates, got {pd.Series(ordered).nunique()}"
        )
    train_end = ordered[max(0, math.ceil(n * train_frac) - 1)]
    val_end = ordered[max(0, math.ceil(n * (train_frac + val_frac)) - 1)]
    split = np.where(parsed <= train_end, "train", np.where(parsed <= val_end, "validation", "test"))
    result = pd.Series(split, index=dates.index, name="split", dtype=object)
    if set(result) != set(SPLITS):
        counts = result.value_counts().to_dict()
        raise ConfigError(f"out-of-time split left a split empty (dates too concentrated): {counts}")
    return result


def latest_vintage_fractions(dates: pd.Series) -> tuple[float, float, float]:
    """Split fractions that make `out_of_time_split` test on the newest month and validate on the
    month before: (train, validation, test) from the row counts per month.

    Half a row is moved between the fractions so the cumulative cut points fall strictly inside
    a month boundary (the split rounds cut points up).
    """
    months = pd.to_datetime(dates).dt.strftime("%Y-%m")
    per_month = months.value_counts().sort_index()
    if len(per_month) < 3:
        raise ConfigError(
            "an out-of-time split on the latest vintage needs at least 3 months of data, "
            f"got {len(per_month)}"
        )
    n = float(len(months))
    test, validation = float(per_month.iloc[-1]), float(per_month.iloc[-2])
    train = n - test - validation
    fractions = ((train - 0.5) / n, validation / n, (test + 0.5) / n)
    assert math.isclose(sum(fractions), 1.0)
    return fractions


__all__ = [
    "SPLITS",
    "SplitKind",
    "assign_split",
    "check_fractions",
    "latest_vintage_fractions",
    "out_of_time_split",
]
