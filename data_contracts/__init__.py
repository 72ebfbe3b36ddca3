"""Data contracts: pandera schemas for every table that crosses a package boundary.

- `loan_application`: incoming applications (training and scoring input).
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

__all__ = [
    "CATEGORICAL_COLUMNS",
    "CATEGORIES",
    "CONTRACT_VERSION",
    "DECISIONS",
    "FEATURE_COLUMNS",
    "GRADES",
    "ID_COLUMN",
    "LoanApplication",
    "NUMERIC_COLUMNS",
    "PROTECTED_COLUMNS",
    "SCORED_COLUMNS",
    "SCORED_CONTRACT_VERSION",
    "ScoredApplication",
    "TARGET_COLUMN",
    "TARGET_VALUES",
]
