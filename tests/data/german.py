"""The German credit data set's names, read from its spec, for tests that check its file.

What `data_contracts/loan_application.py` and `risk_app.data.serialize.FIELD_LABELS` held for
every importer (loading the German spec on import); tests take them from here instead.
"""

from __future__ import annotations

from data_contracts.spec import load_spec
from risk_app.data.serialize import field_labels, label_to_field

GERMAN = load_spec("german_credit")
FEATURE_COLUMNS: tuple[str, ...] = GERMAN.feature_columns
CATEGORICAL_COLUMNS: tuple[str, ...] = GERMAN.categorical_columns
NUMERIC_COLUMNS: tuple[str, ...] = GERMAN.numeric_columns
PROTECTED_COLUMNS: tuple[str, ...] = GERMAN.protected_columns
TARGET_COLUMN: str = GERMAN.target.column
CATEGORIES: dict[str, tuple[str, ...]] = {
    name: tuple(cats) for name in FEATURE_COLUMNS if (cats := GERMAN.columns[name].categories)
}
FIELD_LABELS: dict[str, str] = field_labels(GERMAN)
LABEL_TO_FIELD: dict[str, str] = label_to_field(GERMAN)
