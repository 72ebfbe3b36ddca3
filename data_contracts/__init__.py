"""Data contracts: pandera schemas for every table that crosses a package boundary.

- `spec`: dataset specs (one YAML file per data set) and the pandera schema built from each;
  incoming applications (training and scoring input) are validated against their data set's spec.
- `loan_application`: compatibility names for the default data set, derived from its spec.
- `scored_application`: scoring output.
- `analyst_feedback`: analysts' feedback on scored applications (RLHF).

A contract carries a version; artifacts record the version of the data they were built from.
"""

from data_contracts.loan_application import (
    CATEGORICAL_COLUMNS,
    CATEGORIES,
    CONTRACT_VERSION,
    FEATURE_COLUMNS,
    ID_COLUMN,
    NUMERIC_COLUMNS,
    PROTECTED_COLUMNS,
    TARGET_COLUMN,
    TARGET_VALUES,
    LoanApplication,
)
from data_contracts.scored_application import (
    DECISIONS,
    GRADES,
    SCORED_COLUMNS,
    SCORED_CONTRACT_VERSION,
    ScoredApplication,
)
from data_contracts.spec import DEFAULT_DATASET, DatasetSpec, SpecError, list_datasets, load_spec

__all__ = [
    "CATEGORICAL_COLUMNS",
    "CATEGORIES",
    "CONTRACT_VERSION",
    "DEFAULT_DATASET",
    "DECISIONS",
    "DatasetSpec",
    "FEATURE_COLUMNS",
    "GRADES",
    "ID_COLUMN",
    "LoanApplication",
    "NUMERIC_COLUMNS",
    "PROTECTED_COLUMNS",
    "SCORED_COLUMNS",
    "SCORED_CONTRACT_VERSION",
    "SpecError",
    "ScoredApplication",
    "TARGET_COLUMN",
    "TARGET_VALUES",
    "list_datasets",
    "load_spec",
]
