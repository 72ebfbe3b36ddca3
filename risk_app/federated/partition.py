"""Cut one data set's validated applications into N virtual lenders (the simulation's consortium).

Real consortia are not identically distributed: one lender finances cars, another pays for
education; one serves a region where defaults are rare. Two ways to reproduce that from one file:

* **by a spec column** (`Partition(kind="column", column=...)`): each value of a category or
  boolean column goes whole to one lender, the largest value first to the lender with the
  fewest rows so far (lenders come out of similar size but with different portfolios); a
  numeric column is cut into N quantile bands, one per lender;
* **by Dirichlet label skew** (`kind="dirichlet"`, the usual federated-learning benchmark
  split): for each label, the shares of the N lenders are drawn from Dirichlet(alpha); small
  alpha gives lenders very different default rates.

Every row goes to exactly one lender (rows in = the sum of the lenders' rows), seeded. A
split that would leave a lender too few rows, or with one label only, to train and evaluate
is refused with a sentence naming the lender.

    parts = partition_applications(valid, spec, lenders=5, partition=Partition.parse("purpose"))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec
from risk_app.errors import ConfigError
from risk_app.federated.config import Partition

TARGET = "default"  # the validated frame's 0/1 label column (data.validate adds it)
# Fewest rows a lender needs: a 70/15/15 split with both labels in validation and test.
MIN_ROWS_PER_LENDER = 20
MIN_ROWS_PER_LABEL = 4


def partition_applications(
    valid: pd.DataFrame, spec: DatasetSpec, lenders: int, partition: Partition, seed: int = 42
) -> list[pd.DataFrame]:
    """The rows of each of `lenders` virtual lenders, in lender order, each reindexed from 0."""
    if lenders < 2:
        raise ConfigError(f"a consortium needs at least 2 lenders, got {lenders}")
    if TARGET not in valid.columns:
        raise ConfigError(f"partitioning needs labelled rows: the validated data has no '{TARGET}' column")
    if partition.kind == "dirichlet":
        assert partition.alpha is not None
        owner = dirichlet_owners(valid[TARGET].to_numpy(), lenders, partition.alpha, seed)
    else:
        assert partition.column is not None
        owner = column_owners(valid, spec, partition.column, lenders)
    parts = [valid.loc[owner == k].reset_index(drop=True) for k in range(lenders)]
    for k, part in enumerate(parts):
        _check_trainable(part, k, partition)
    return parts


def column_owners(valid: pd.DataFrame, spec: DatasetSpec, column: str, lenders: int) -> np.ndarray:
    """Lender index per row when the lenders differ by `column` (a spec feature column)."""
    if column not in spec.columns:
        raise ConfigError(
            f"--partition-by {column!r}: data set {spec.name} has no such column; "
            f"its columns: {', '.join(spec.feature_columns)}"
        )
    if column not in spec.feature_columns:
        raise ConfigError(
            f"--partition-by {column!r}: it is not a feature column of data set {spec.name} "
            "(the id, the target and excluded columns cannot split lenders)"
        )
    values = valid[column]
    if spec.columns[column].is_numeric:
        # Quantile bands: lender k holds the k-th band of the column (ties stay together).
        ranks = values.rank(method="min", na_option="bottom").to_numpy()
        return np.minimum(((ranks - 1) * lenders / len(values)).astype(int), lenders - 1)
    keys = values.astype("string").fillna("<missing>")
    counts = keys.value_counts()
    if len(counts) < lenders:
        raise ConfigError(
            f"--partition-by {column!r}: the column has {len(counts)} distinct values, fewer than the "
            f"{lenders} lenders; choose a column with more values or fewer lenders"
        )
    sizes = np.zeros(lenders, dtype=np.int64)
    assignment: dict[str, int] = {}
    # Largest value first, to the lender with the fewest rows (ties: the lowest index).
    for value, count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))):
        k = int(np.argmin(sizes))
        assignment[str(value)] = k
        sizes[k] += int(count)
    return keys.map(assignment).to_numpy(dtype=np.int64)


def dirichlet_owners(labels: np.ndarray, lenders: int, alpha: float, seed: int) -> np.ndarray:
    """Lender index per row: each label's rows shared among lenders by Dirichlet(alpha) proportions.

    Every lender is first given MIN_ROWS_PER_LABEL rows of each label (so each can train and
    compute an AUC); the rest follow the drawn proportions."""
    rng = np.random.default_rng(seed)
    owner = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        floor = min(MIN_ROWS_PER_LABEL, len(idx) // lenders)
        owner[idx[: floor * lenders]] = np.repeat(np.arange(lenders), floor)
        rest = idx[floor * lenders :]
        shares = rng.dirichlet(np.full(lenders, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rest)).round().astype(int)
        for k, chunk in enumerate(np.split(rest, cuts)):
            owner[chunk] = k
    return owner


def _check_trainable(part: pd.DataFrame, k: int, partition: Partition) -> None:
    labels = part[TARGET]
    counts = labels.value_counts()
    if len(part) < MIN_ROWS_PER_LENDER or counts.size < 2 or int(counts.min()) < MIN_ROWS_PER_LABEL:
        raise ConfigError(
            f"partition by {partition.describe()}: lender {k + 1} gets {len(part)} rows "
            f"({int(counts.get(1, 0))} defaults, {int(counts.get(0, 0))} repaid); each lender needs at "
            f"least {MIN_ROWS_PER_LENDER} rows and {MIN_ROWS_PER_LABEL} of each label to train and be "
            "evaluated; use fewer lenders or another split"
        )


def describe_partition(parts: list[pd.DataFrame]) -> list[dict[str, float]]:
    """Rows and default rate of each lender (the simulation's report and the bench table)."""
    return [
        {"lender": k + 1, "rows": len(part), "default_rate": float(part[TARGET].mean())}
        for k, part in enumerate(parts)
    ]
