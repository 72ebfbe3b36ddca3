"""Data contract for one loan application (German-credit style).

`LoanApplication` is the pandera schema every application must pass before it is used for
training or scoring. Column names and category strings are exactly those of the vendored
`risk_app/datasets/germancredit.csv` (UCI Statlog German credit, decoded), so the default
data set passes unchanged; ranges are wider than that sample (it has ages 19-75), because they
describe what a plausible application looks like, not what one sample happened to contain.

Validate with `risk_app.data.validate.validate_applications`, which runs this schema lazily
and turns failures into a per-row quarantine table. Bump `CONTRACT_VERSION` whenever a column,
category or range changes: artifacts record the version they were trained against.
"""

from __future__ import annotations

from typing import Optional

import pandera.pandas as pa
from pandera.typing import Series

CONTRACT_VERSION = "1.0.0"

ID_COLUMN = "application_id"
TARGET_COLUMN = "creditability"
TARGET_VALUES: tuple[str, ...] = ("good", "bad")
# Attributes that must not drive a credit decision on their own (fair-lending review, optional
# exclusion from the serialized text).
PROTECTED_COLUMNS: tuple[str, ...] = ("personal_status_and_sex", "age_in_years", "foreign_worker")

# Allowed category strings, copied verbatim from the vendored data set.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "status_of_existing_checking_account": (
        "... < 0 DM",
        "0 <= ... < 200 DM",
        "... >= 200 DM / salary assignments for at least 1 year",
        "no checking account",
    ),
    "credit_history": (
        "no credits taken/ all credits paid back duly",
        "all credits at this bank paid back duly",
        "existing credits paid back duly till now",
        "delay in paying off in the past",
        "critical account/ other credits existing (not at this bank)",
    ),
    "purpose": (
        "car (new)",
        "car (used)",
        "furniture/equipment",
        "radio/television",
        "domestic appliances",
        "repairs",
        "education",
        "retraining",
        "business",
        "others",
    ),
    "savings_account_and_bonds": (
        "... < 100 DM",
        "100 <= ... < 500 DM",
        "500 <= ... < 1000 DM",
        "... >= 1000 DM",
        "unknown/ no savings account",
    ),
    "present_employment_since": (
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    ),
    "personal_status_and_sex": (
        "male : divorced/separated",
        "female : divorced/separated/married",
        "male : single",
        "male : married/widowed",
    ),
    "other_debtors_or_guarantors": ("none", "co-applicant", "guarantor"),
    "property": (
        "real estate",
        "building society savings agreement/ life insurance",
        "car or other, not in attribute Savings account/bonds",
        "unknown / no property",
    ),
    "other_installment_plans": ("bank", "stores", "none"),
    "housing": ("rent", "own", "for free"),
    "job": (
        "unemployed/ unskilled - non-resident",
        "unskilled - resident",
        "skilled employee / official",
        "management/ self-employed/ highly qualified employee/ officer",
    ),
    "telephone": ("none", "yes, registered under the customers name"),
    "foreign_worker": ("yes", "no"),
}


class LoanApplication(pa.DataFrameModel):
    """One row per application: an id, 20 applicant attributes and (for training) the label.

    Numeric fields are whole numbers (the source data are integer DM amounts, months, years and
    1-4 codes); `coerce=True` turns CSV strings into int64 and reports text such as "abc" as a
    per-row `coerce_dtype` failure instead of failing the whole file.
    """

    application_id: Series[str] = pa.Field(
        nullable=False, unique=True, str_length={"min_value": 1}, description="Unique application id."
    )
    status_of_existing_checking_account: Series[str] = pa.Field(
        isin=CATEGORIES["status_of_existing_checking_account"], description="Checking account balance band."
    )
    duration_in_month: Series[int] = pa.Field(ge=1, le=120, description="Loan duration in months.")
    credit_history: Series[str] = pa.Field(isin=CATEGORIES["credit_history"], description="Credit history.")
    purpose: Series[str] = pa.Field(isin=CATEGORIES["purpose"], description="Purpose of the loan.")
    credit_amount: Series[int] = pa.Field(gt=0, le=10_000_000, description="Requested amount in DM.")
    savings_account_and_bonds: Series[str] = pa.Field(
        isin=CATEGORIES["savings_account_and_bonds"], description="Savings band."
    )
    present_employment_since: Series[str] = pa.Field(
        isin=CATEGORIES["present_employment_since"], description="Time in current employment."
    )
    installment_rate_in_percentage_of_disposable_income: Series[int] = pa.Field(
        ge=1, le=4, description="Installment rate code 1-4 (share of disposable income)."
    )
    personal_status_and_sex: Series[str] = pa.Field(
        isin=CATEGORIES["personal_status_and_sex"], description="Personal status and sex (protected)."
    )
    other_debtors_or_guarantors: Series[str] = pa.Field(
        isin=CATEGORIES["other_debtors_or_guarantors"], description="Other debtors or guarantors."
    )
    present_residence_since: Series[int] = pa.Field(ge=1, le=4, description="Residence duration code 1-4.")
    property: Series[str] = pa.Field(isin=CATEGORIES["property"], description="Most valuable property.")
    age_in_years: Series[int] = pa.Field(ge=18, le=100, description="Applicant age (protected).")
    other_installment_plans: Series[str] = pa.Field(
        isin=CATEGORIES["other_installment_plans"], description="Other installment plans."
    )
    housing: Series[str] = pa.Field(isin=CATEGORIES["housing"], description="Housing situation.")
    number_of_existing_credits_at_this_bank: Series[int] = pa.Field(
        ge=1, le=10, description="Existing credits at this bank."
    )
    job: Series[str] = pa.Field(isin=CATEGORIES["job"], description="Job category.")
    number_of_people_being_liable_to_provide_maintenance_for: Series[int] = pa.Field(
        ge=1, le=10, description="Number of dependants."
    )
    telephone: Series[str] = pa.Field(isin=CATEGORIES["telephone"], description="Registered telephone.")
    foreign_worker: Series[str] = pa.Field(
        isin=CATEGORIES["foreign_worker"], description="Foreign worker (protected)."
    )
    # Optional so that scoring files without a label pass; `validate_applications` tightens it to
    # required and non-null when a training file must carry the target.
    creditability: Optional[Series[str]] = pa.Field(  # noqa: UP045 - pandera needs typing.Optional
        isin=TARGET_VALUES, nullable=True, description="Label: good or bad (training data only)."
    )

    class Config:
        # Unknown extra columns (a vendor's notes, `source_row` from the loader) are allowed,
        # not rejected: a file should not be refused for carrying more than we need. They are
        # ignored, never silently used as features: the model reads only FEATURE_COLUMNS and
        # `validate_applications` keeps only contract columns in its output. `strict="filter"`
        # would drop them inside pandera, but we need `source_row` to report quarantined rows.
        strict = False
        coerce = True
        name = "LoanApplication"
        description = f"German-credit-style loan application, contract v{CONTRACT_VERSION}."


FEATURE_COLUMNS: tuple[str, ...] = tuple(
    name for name in LoanApplication.to_schema().columns if name not in (ID_COLUMN, TARGET_COLUMN)
)
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c in CATEGORIES)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in CATEGORIES)

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
