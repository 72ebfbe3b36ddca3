"""The one serialization template: content, determinism, options and round trip to clauses."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from risk_app.data.serialize import (
    clause_label,
    parse_clauses,
    serialize_application,
    serialize_frame,
)
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from tests.data.german import FEATURE_COLUMNS, FIELD_LABELS, LABEL_TO_FIELD, PROTECTED_COLUMNS


@pytest.fixture
def valid(raw_default: pd.DataFrame) -> pd.DataFrame:
    return validate_applications(raw_default, "germancredit.csv").valid


def test_first_application_text(valid: pd.DataFrame) -> None:
    text = serialize_application(valid.iloc[0])
    assert text.startswith(
        "Checking account: < 0 DM. Duration: 6 months. "
        "Credit history: critical account/other credits existing (not at this bank). "
        "Purpose: radio/television. Credit amount: 1169 DM."
    )
    assert "Age: 67 years." in text
    assert "Personal status and sex: male, single." in text  # UCI row 1 is A93
    assert text.endswith("Foreign worker: yes.")
    assert "good" not in text and "creditability" not in text and "app-" not in text
    assert "..." not in text and "  " not in text


def test_every_field_once_in_contract_order(valid: pd.DataFrame) -> None:
    assert list(FIELD_LABELS) == list(FEATURE_COLUMNS)
    clauses = parse_clauses(serialize_application(valid.iloc[1]))
    assert [LABEL_TO_FIELD[clause_label(c)] for c in clauses] == list(FEATURE_COLUMNS)
    assert all(c.endswith(".") for c in clauses)


def test_frame_matches_rows_and_is_deterministic(valid: pd.DataFrame) -> None:
    texts = serialize_frame(valid)
    assert texts.name == "text" and texts.index.equals(valid.index)
    assert texts.equals(serialize_frame(valid.copy()))
    for i in (0, 1, 500, 999):
        assert texts[i] == serialize_application(valid.iloc[i])
    # Raw text values (straight from a CSV) give the same text as contract-typed ones.
    assert serialize_application(valid.astype(str).iloc[3]) == texts[3]
    assert texts.nunique() == 1000
    assert serialize_application(valid.iloc[0].to_dict()) == texts[0]


def test_singular_units(valid: pd.DataFrame) -> None:
    row = valid.iloc[0].copy()
    row["duration_in_month"] = 1
    assert "Duration: 1 month." in serialize_application(row)


def test_field_order_and_exclude(valid: pd.DataFrame) -> None:
    order = list(FEATURE_COLUMNS)
    random.Random(0).shuffle(order)
    text = serialize_application(valid.iloc[0], field_order=order)
    assert [LABEL_TO_FIELD[clause_label(c)] for c in parse_clauses(text)] == order
    assert sorted(parse_clauses(text)) == sorted(parse_clauses(serialize_application(valid.iloc[0])))

    fair = serialize_frame(valid, exclude=PROTECTED_COLUMNS)
    for label in ("Age:", "Personal status and sex:", "Foreign worker:"):
        assert not fair.str.contains(label, regex=False).any()
    assert len(parse_clauses(fair[0])) == 17


def test_bad_options_and_rows(valid: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        serialize_application(valid.iloc[0], exclude=["salary"])
    with pytest.raises(ConfigError, match="never serialized"):
        serialize_application(valid.iloc[0], field_order=["age_in_years", "creditability"])
    row = valid.iloc[0].copy()
    row["purpose"] = None
    with pytest.raises(RiskAppError, match=r"application app-\w+: field 'purpose' is missing"):
        serialize_application(row)
    broken = valid.head(3).copy()
    broken.loc[2, "job"] = None
    with pytest.raises(RiskAppError, match="field 'job' is missing"):
        serialize_frame(broken)


def test_parse_clauses_keeps_periods_inside_values() -> None:
    text = "Purpose: approx. a car. Age: 30 years."
    assert parse_clauses(text) == ["Purpose: approx. a car.", "Age: 30 years."]
    assert parse_clauses("  ") == []
