"""The LoanApplication contract: the default data set passes, and each check fails when it should."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.scored_application import GRADES, ScoredApplication
from risk_app.data.validate import validate_applications
from risk_app.errors import DataFileError
from risk_app.paths import DEFAULT_DATASET
from tests.data.german import (
    CATEGORICAL_COLUMNS,
    CATEGORIES,
    FEATURE_COLUMNS,
    NUMERIC_COLUMNS,
    PROTECTED_COLUMNS,
    TARGET_COLUMN,
)


def test_columns_match_the_vendored_file() -> None:
    header = pd.read_csv(DEFAULT_DATASET, nrows=0).columns.tolist()
    assert header == [*FEATURE_COLUMNS, TARGET_COLUMN]
    assert len(FEATURE_COLUMNS) == 20
    assert set(CATEGORICAL_COLUMNS) | set(NUMERIC_COLUMNS) == set(FEATURE_COLUMNS)
    assert set(PROTECTED_COLUMNS) <= set(FEATURE_COLUMNS)
    data = pd.read_csv(DEFAULT_DATASET)
    for column in CATEGORICAL_COLUMNS:
        assert set(data[column]) == set(CATEGORIES[column]), column


def test_default_file_is_all_valid(raw_default: pd.DataFrame) -> None:
    result = validate_applications(raw_default, "germancredit.csv")
    assert (result.n_in, result.n_valid, result.n_quarantined) == (1000, 1000, 0)
    assert result.quarantine.empty
    valid = result.valid
    for column in NUMERIC_COLUMNS:
        assert valid[column].dtype == "int64", column
    assert valid["default"].dtype == "int64"
    assert valid["default"].sum() == 300  # UCI German credit: 300 bad, 700 good
    assert ((valid["default"] == 1) == (valid[TARGET_COLUMN] == "bad")).all()
    assert valid["source_row"].tolist() == list(range(1, 1001))


BAD_CELLS = [
    ("purpose", "spaceship", "isin"),
    ("status_of_existing_checking_account", "<0 DM", "isin"),
    ("foreign_worker", "Yes", "isin"),
    ("age_in_years", "17", "greater_than_or_equal_to(18)"),
    ("age_in_years", "101", "less_than_or_equal_to(100)"),
    ("credit_amount", "0", "greater_than_or_equal_to(1)"),
    ("credit_amount", "-5", "greater_than_or_equal_to(1)"),
    ("credit_amount", "20000000", "less_than_or_equal_to(10000000)"),
    ("duration_in_month", "0", "greater_than_or_equal_to(1)"),
    ("duration_in_month", "121", "less_than_or_equal_to(120)"),
    ("duration_in_month", "abc", "coerce_dtype('int64')"),
    ("duration_in_month", "12.5", "coerce_dtype('int64')"),
    ("installment_rate_in_percentage_of_disposable_income", "5", "less_than_or_equal_to(4)"),
    ("present_residence_since", "0", "greater_than_or_equal_to(1)"),
    ("number_of_existing_credits_at_this_bank", "11", "less_than_or_equal_to(10)"),
    ("number_of_people_being_liable_to_provide_maintenance_for", "0", "greater_than_or_equal_to(1)"),
    ("job", None, "not_nullable"),
    ("age_in_years", None, "not_nullable"),
    (TARGET_COLUMN, None, "not_nullable"),
    (TARGET_COLUMN, "Good", "isin"),
    ("application_id", "", "str_length"),
]


@pytest.mark.parametrize(("column", "value", "check"), BAD_CELLS)
def test_each_check_fails_when_it_should(small_raw: pd.DataFrame, column: str, value, check: str) -> None:
    small_raw[column] = small_raw[column].astype(object)
    small_raw.loc[7, column] = value
    result = validate_applications(small_raw, "bad.csv")
    assert result.n_quarantined == 1
    assert result.n_valid == 29
    assert len(result.quarantine) == 1
    failure = result.quarantine.iloc[0]
    assert failure["row_number"] == 8
    assert failure["column"] == column
    assert failure["check"].startswith(check)
    assert failure["failure_value"] == ("" if value is None else value)
    assert "row 8" in failure["reason"] and column in failure["reason"]
    assert failure["application_id"] not in set(result.valid["application_id"])


def test_missing_target_is_allowed_when_not_required(small_raw: pd.DataFrame) -> None:
    small_raw.loc[3, TARGET_COLUMN] = None
    strict = validate_applications(small_raw, "f.csv", require_target=True)
    assert strict.n_quarantined == 1
    relaxed = validate_applications(small_raw, "f.csv", require_target=False)
    assert relaxed.n_quarantined == 0
    assert relaxed.valid["default"].isna().sum() == 1
    # Scoring files without the column at all pass; training files do not.
    unlabelled = small_raw.drop(columns=[TARGET_COLUMN])
    assert validate_applications(unlabelled, "s.csv", require_target=False).n_valid == 30
    assert "default" not in validate_applications(unlabelled, "s.csv", require_target=False).valid
    with pytest.raises(DataFileError, match="s.csv.*creditability"):
        validate_applications(unlabelled, "s.csv", require_target=True)
    # A wrong label is wrong even when labels are optional.
    small_raw.loc[4, TARGET_COLUMN] = "maybe"
    assert validate_applications(small_raw, "f.csv", require_target=False).n_quarantined == 1


def test_duplicate_ids_quarantine_the_later_rows(small_raw: pd.DataFrame) -> None:
    small_raw.loc[[10, 20], "application_id"] = small_raw.loc[2, "application_id"]
    result = validate_applications(small_raw, "dup.csv")
    assert result.n_quarantined == 2
    assert result.quarantine["row_number"].tolist() == [11, 21]
    assert set(result.quarantine["check"]) == {"field_uniqueness"}
    assert result.valid["application_id"].is_unique
    assert 3 in set(result.valid["source_row"])  # the first occurrence is kept


def test_extra_columns_are_ignored(small_raw: pd.DataFrame) -> None:
    small_raw["broker_notes"] = "call back"
    result = validate_applications(small_raw, "extra.csv")
    assert result.n_valid == 30
    assert "broker_notes" not in result.valid.columns
    assert result.summary()["extra_columns_ignored"] == ["broker_notes"]


def test_missing_feature_column_is_a_file_error(small_raw: pd.DataFrame) -> None:
    with pytest.raises(DataFileError, match=r"m\.csv: missing required column\(s\): housing, job"):
        validate_applications(small_raw.drop(columns=["job", "housing"]), "m.csv")


def test_scored_application_contract() -> None:
    good = pd.DataFrame(
        {
            "application_id": ["a", "b"],
            "probability_of_default": [0.1, 0.9],
            "risk_grade": [GRADES[0], GRADES[-1]],
            "decision": ["approve", "decline"],
            "model_version": ["3", "3"],
            "policy_id": ["0f3c9a1b2d4e", "0f3c9a1b2d4e"],
            "policy_cutoff": [0.5, 0.5],
            "policy_objective": ["min_cost", "min_cost"],
        }
    )
    ScoredApplication.validate(good)
    import pandera.errors

    # A decision the recorded cut-off did not make is as wrong as a bad value.
    bad_values = [("probability_of_default", 1.5), ("risk_grade", "F"), ("decision", "maybe")]
    for column, value in [*bad_values, ("policy_cutoff", 0.95)]:
        bad = good.copy()
        bad[column] = bad[column].astype(object)
        bad.loc[1, column] = value
        with pytest.raises(pandera.errors.SchemaError):
            ScoredApplication.validate(bad)


def test_scored_output_accepts_the_grades_its_policy_names() -> None:
    """A policy with its own bands (PolicyConfig.grade_bands) scores into its own grade names;
    the contract checks those names, and still refuses a grade the policy did not name."""
    import pandera.errors

    from risk_app.scoring.batch import check_scored_output

    scored = pd.DataFrame(
        {
            "application_id": ["a", "b"],
            "probability_of_default": [0.1, 0.9],
            "risk_grade": ["prime", "sub"],
            "decision": ["approve", "decline"],
            "model_version": ["3", "3"],
            "policy_id": ["p", "p"],
            "policy_cutoff": [0.5, 0.5],
            "policy_objective": ["min_cost", "min_cost"],
            "scored_at": pd.Timestamp("2026-12-07", tz="UTC"),
        }
    )
    check_scored_output(scored, ["prime", "near", "sub"])
    with pytest.raises(pandera.errors.SchemaErrors):
        check_scored_output(scored)  # the default bands A-E do not include "prime"
    with pytest.raises(pandera.errors.SchemaErrors):
        check_scored_output(scored.assign(risk_grade=["prime", "X"]), ["prime", "near", "sub"])
