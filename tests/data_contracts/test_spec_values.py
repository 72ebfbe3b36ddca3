"""One canonical text form of a cell (`data_contracts.spec_values.canonical_value`), shared by the
application ids (`risk_app.data.load`) and the label comparisons of a spec.

There were two copies, and they differed on booleans and missing cells: the id hash wrote a
Parquet `True` as "True" (so a CSV spelling "true" gave the same applicant another id), the
spec wrote it as "true"; a missing cell was "" for one and "None"/"nan" for the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from data_contracts.spec_values import canonical_value
from risk_app.data.load import generate_application_ids
from risk_app.errors import ConfigError

SPEC = """
name: flags
version: 1.0.0
description: A data set with a boolean feature and a True/False category target.
source: tests
licence: none
columns:
  application_id: {{type: text, label: Application}}
  amount: {{type: integer, label: Amount, min: 0, max: 100000}}
  homeowner: {{type: boolean, label: Homeowner}}
  outcome: {target}
target: {{column: outcome, positive: {positive}}}
"""


def _spec(tmp_path: Path, target: str, positive: str) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(SPEC.format(target=target, positive=positive))
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (np.bool_(True), "true"),
        (np.False_, "false"),
        ("True", "true"),
        (" FALSE ", "false"),
        (None, ""),
        (float("nan"), ""),
        (pd.NA, ""),
        (6.0, "6"),
        ("6.0", "6"),
        (np.int64(6), "6"),
        ("2.5", "2.5"),
        (" north ", "north"),
    ],
)
def test_one_text_form_for_booleans_missing_cells_and_numbers(value: object, expected: str) -> None:
    assert canonical_value(value) == expected


def test_a_boolean_feature_gives_the_same_id_from_parquet_types_and_csv_text(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{type: integer, label: Outcome, min: 0, max: 1}", "1"))
    typed = pd.DataFrame({"amount": [500, 900], "homeowner": [True, False]})  # as Parquet gives it
    text = pd.DataFrame({"amount": ["500", "900"], "homeowner": ["true", "false"]})  # a CSV's cells
    capitalised = pd.DataFrame({"amount": ["500.0", "900"], "homeowner": ["True", "False"]})  # pandas' CSV
    ids = generate_application_ids(typed, spec).tolist()
    assert generate_application_ids(text, spec).tolist() == ids
    assert generate_application_ids(capitalised, spec).tolist() == ids
    assert ids[0] != ids[1]


def test_a_true_false_category_target_accepts_a_boolean_positive_label(tmp_path: Path) -> None:
    # YAML reads `positive: true` as a boolean; the categories are written "True" / "False".
    path = _spec(tmp_path, "{type: category, label: Outcome, categories: ['True', 'False']}", "true")
    spec = load_spec(path)
    flags = spec.default_flag(pd.Series(["True", "False", True, None], dtype=object))
    assert flags.tolist() == [1, 0, 1, pd.NA]


def test_a_boolean_target_still_refuses_a_label_that_is_no_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a boolean value"):
        load_spec(_spec(tmp_path, "{type: boolean, label: Outcome}", "maybe"))
