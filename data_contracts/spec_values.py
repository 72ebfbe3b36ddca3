"""The values a dataset spec compares by: boolean spellings, reserved column names, canonical labels.

The lowest module of the spec: `spec_model` (the pydantic classes), `spec_rules` (the
cross-field rules) and `spec_draft` read these, so none of them needs another for a constant.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

# Columns the library adds to frames; a data set may not use these names for its own columns.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {"source_row", "text", "split", "augmented", "source_application_id", "default", "application_id"}
)
# Spellings accepted for a boolean column (case-insensitive), and what each means.
BOOLEAN_VALUES: dict[str, bool] = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "1": True,
    "0": False,
    "1.0": True,
    "0.0": False,
}


def canonical_value(value: Any) -> str:
    """The one text form of a cell or label, the same whether it came from CSV text or Parquet
    types: labels compare by it (`DatasetSpec.default_flag`, the spec's rules and drafts) and
    application ids hash it (`risk_app.data.load`).

    Missing (None, NA, NaN) is ""; a numpy scalar counts as its Python value; 1, 1.0, "1" and
    "1.0" are "1"; a boolean is "true"/"false", and so is the text "True"/"FALSE"/... (pandas
    writes a boolean column to CSV as "True"); any other text is kept, stripped."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if hasattr(value, "item"):  # numpy scalar (np.bool_ is no bool, np.int64 no int)
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text


__all__ = ["BOOLEAN_VALUES", "RESERVED_COLUMNS", "canonical_value"]
