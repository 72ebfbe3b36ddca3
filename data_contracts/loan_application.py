"""Compatibility names for the default data set, all derived from its spec (no second copy).

Older code imported German-credit constants from here. Every value below is computed from
`risk_app/datasets/german_credit/spec.yaml` via `data_contracts.spec.load_spec`; new code
takes a `DatasetSpec` and reads `spec.feature_columns`, `build_schema(spec, ...)` etc. instead,
so that it works for any data set. Remove this module once no caller imports it.
"""

from __future__ import annotations

import pandera.pandas as pa

from data_contracts.spec import DEFAULT_DATASET, load_spec
from data_contracts.spec_schema import build_schema

_SPEC = load_spec(DEFAULT_DATASET)

CONTRACT_VERSION: str = _SPEC.contract_version
ID_COLUMN: str = _SPEC.id_column
TARGET_COLUMN: str = _SPEC.target.column
TARGET_VALUES: tuple[str, ...] = tuple(_SPEC.columns[TARGET_COLUMN].categories or ())
PROTECTED_COLUMNS: tuple[str, ...] = _SPEC.protected_columns
FEATURE_COLUMNS: tuple[str, ...] = _SPEC.feature_columns
CATEGORICAL_COLUMNS: tuple[str, ...] = _SPEC.categorical_columns
NUMERIC_COLUMNS: tuple[str, ...] = _SPEC.numeric_columns
CATEGORIES: dict[str, tuple[str, ...]] = {
    name: tuple(col.categories)
    for name, col in _SPEC.columns.items()
    if col.categories and name in FEATURE_COLUMNS
}
# The default data set's schema with an optional label (scoring files may lack it).
LoanApplication: pa.DataFrameSchema = build_schema(_SPEC, require_target=False)

__all__ = [
    "CATEGORICAL_COLUMNS",
    "CATEGORIES",
    "CONTRACT_VERSION",
    "FEATURE_COLUMNS",
    "ID_COLUMN",
    "LoanApplication",
    "NUMERIC_COLUMNS",
    "PROTECTED_COLUMNS",
    "TARGET_COLUMN",
    "TARGET_VALUES",
]
