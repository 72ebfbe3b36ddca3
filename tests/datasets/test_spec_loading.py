"""Dataset specs: loading, derived views, YAML round trip, and one clear message per mistake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import (
    DEFAULT_DATASET,
    DatasetSpec,
    SpecError,
    builtin_spec_path,
    list_datasets,
    load_spec,
    parse_spec,
)
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, DataFileError

MINIMAL = """
name: tiny_book
version: 1.0.0
description: A tiny loan book.
source: made up for tests
licence: CC0
columns:
  loan_id: {type: text, label: Loan id}
  amount: {type: float, label: Amount, unit: EUR, min: 0, max: 100000}
  term: {type: integer, label: Term, unit: {singular: month, plural: months}, min: 1, max: 120}
  age: {type: integer, label: Age, min: 18, max: 100}
  purpose: {type: category, label: Purpose, categories: [car, home]}
  note: {type: text, label: Note, max_chars: 20}
  applied_on: {type: date, label: Applied on}
  defaulted: {type: category, label: Defaulted, categories: ["yes", "no"]}
id_column: loan_id
target: {column: defaulted, positive: "yes"}
protected:
  - {column: age, name: age_band, edges: [30, 50]}
date_column: applied_on
"""


def test_builtins_load_and_expose_their_columns() -> None:
    assert DEFAULT_DATASET == "german_credit"
    assert set(list_datasets()) >= {"german_credit", "uci_credit_card"}
    german = load_spec("german_credit")
    assert german is load_spec(None) is load_spec(builtin_spec_path("german_credit"))  # cached per file
    assert load_spec(german) is german
    assert len(german.feature_columns) == 20 and german.id_column == "application_id"
    assert german.protected_columns == ("age_in_years", "personal_status_and_sex", "foreign_worker")
    assert german.label("credit_amount") == "Credit amount"
    assert german.contract_version == "german_credit@2.0.0"
    assert german.costs is not None and german.costs.cost_missed_default == 5
    assert german.data_path is not None and german.data_path.is_file()
    cards = load_spec("uci_credit_card")
    assert cards.numeric_columns == ("LIMIT_BAL", "BILL_AMT1")
    assert cards.categorical_columns == ("EDUCATION", "MARRIAGE")
    assert cards.target.column == "default" and cards.target.positive == 1


def test_roles_and_views_of_a_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL)
    spec = load_spec(path)
    assert spec.spec_path == path.resolve()
    assert spec.feature_columns == ("amount", "term", "age", "purpose", "note")  # no id, target, date
    assert spec.numeric_columns == ("amount", "term", "age")
    assert spec.text_columns == ("note",)
    assert spec.columns["amount"].unit is not None and spec.columns["amount"].unit.plural == "EUR"
    flags = spec.default_flag(pd.Series(["yes", "no", None, "no"]))
    assert flags.tolist()[:2] == [1, 0] and pd.isna(flags.iloc[2]) and str(flags.dtype) == "Int64"


def test_yaml_round_trip_keeps_the_hash() -> None:
    for name in list_datasets():
        spec = load_spec(name)
        again = parse_spec(spec.to_yaml(), f"{name}-copy.yaml")
        assert again.hash == spec.hash
        assert again.model_dump() == spec.model_dump()


def test_the_hash_changes_with_the_content() -> None:
    spec = parse_spec(MINIMAL, "a.yaml")
    assert spec.hash == parse_spec(MINIMAL + "\n# a comment\n", "b.yaml").hash  # file name and comments: no
    assert spec.hash != parse_spec(MINIMAL.replace("max: 100000", "max: 200000"), "a.yaml").hash


def _mistake(old: str, new: str) -> str:
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new)


MISTAKES = [
    (
        "unknown type",
        "amount: {type: float,",
        "amount: {type: money,",
        r"columns\.amount\.type: unknown type 'money'",
    ),
    (
        "target not a column",
        "column: defaulted, positive",
        "column: bad_flag, positive",
        r"target\.column: 'bad_flag' is not a column",
    ),
    (
        "protected non-column",
        "{column: age, name",
        "{column: birth_year, name",
        r"protected\[0\]\.column: 'birth_year' is not a column",
    ),
    (
        "exclude non-column",
        "date_column: applied_on",
        "date_column: applied_on\nexclude: [branch]",
        r"exclude\[0\]: 'branch' is not a column",
    ),
    (
        "date non-column",
        "date_column: applied_on",
        "date_column: opened",
        r"date_column: 'opened' is not a column",
    ),
    (
        "date not a date",
        "date_column: applied_on",
        "date_column: amount",
        r"date_column: 'amount' must be of type date",
    ),
    (
        "id non-column",
        "id_column: loan_id",
        "id_column: contract_no",
        r"id_column: 'contract_no' is not a column",
    ),
    (
        "categories on a number",
        "unit: EUR, min: 0",
        "unit: EUR, categories: [a, b], min: 0",
        r"columns\.amount\.categories: categories are only for category columns, not float",
    ),
    (
        "min above max",
        "min: 1, max: 120",
        "min: 121, max: 120",
        r"columns\.term: min 121 is greater than max 120",
    ),
    (
        "duplicate labels",
        "{type: integer, label: Age,",
        "{type: integer, label: Amount,",
        r"columns\.age\.label: 'Amount' is also the label of 'amount'",
    ),
    (
        "positive not a category",
        'positive: "yes"',
        "positive: bad",
        r"target\.positive: 'bad' is not one of the target's categories",
    ),
    ("unknown key", "version: 1.0.0", "version: 1.0.0\nowner: me", r"owner: unknown key"),
    ("missing field", "licence: CC0\n", "", r"licence: required field is missing"),
    (
        "category without values",
        "{type: category, label: Purpose, categories: [car, home]}",
        "{type: category, label: Purpose}",
        r"columns\.purpose\.categories: a category column needs its allowed values",
    ),
    (
        "text without max_chars",
        "label: Note, max_chars: 20",
        "label: Note",
        r"columns\.note\.max_chars: a free-text column needs max_chars",
    ),
    (
        "bands on a category",
        "{column: age, name: age_band, edges: [30, 50]}",
        "{column: purpose, edges: [1, 2]}",
        r"protected\[0\]\.edges: bands need a numeric column",
    ),
    (
        "label with a colon",
        "label: Purpose,",
        "label: 'Purpose: main',",
        r"columns\.purpose\.label: 'Purpose: main' may not contain",
    ),
    (
        "reserved name",
        "  note: {type: text",
        "  split: {type: text",
        r"columns\.split: the name 'split' is reserved",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_spec_mistake_has_one_clear_message(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "lender_spec.yaml"
    path.write_text(_mistake(old, new))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    text = str(caught.value)
    assert text.startswith(str(path.resolve()) + ": "), text  # names the spec file
    assert len(caught.value.problems) == 1, caught.value.problems  # one message per mistake
    assert pytest.importorskip("re").search(message, text), text
    assert isinstance(caught.value, ConfigError)


def test_several_mistakes_are_reported_together() -> None:
    text = MINIMAL.replace("type: money", "").replace("min: 1, max: 120", "min: 121, max: 120")
    text = text.replace("column: defaulted, positive", "column: nope, positive")
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "two.yaml")
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith("two.yaml: 2 problems: ")


def test_not_yaml_and_not_found_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"bad\.yaml: <spec>: not valid YAML \(line"):
        parse_spec("name: [unclosed", "bad.yaml")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="no built-in data set 'nope'; built in: german_credit"):
        load_spec("nope")


def test_a_positive_label_that_never_occurs_is_caught_at_validate_time() -> None:
    spec = parse_spec(MINIMAL, "tiny.yaml")
    frame = pd.DataFrame(
        {
            "loan_id": ["a", "b", "c"],
            "amount": ["100", "200", "300"],
            "term": ["12", "24", "36"],
            "age": ["30", "40", "50"],
            "purpose": ["car", "home", "car"],
            "note": ["x", "y", "z"],
            "applied_on": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "defaulted": ["no", "no", "no"],
        }
    )
    with pytest.raises(
        DataFileError, match=r"positive label 'yes' of target 'defaulted' never occurs .*tiny\.yaml"
    ):
        validate_applications(frame, "book.csv", spec=spec)
    # Scoring files carry no labels: nothing to check there.
    assert validate_applications(frame, "book.csv", require_target=False, spec=spec).n_valid == 3


def test_a_spec_built_in_code_is_checked_like_a_file() -> None:
    with pytest.raises(Exception, match="is not a column"):
        DatasetSpec.model_validate({**parse_spec(MINIMAL, "x").model_dump(), "date_column": "nope"})


def test_a_yes_no_target_may_not_be_called_default() -> None:
    # The library writes 0/1 into `default`; a yes/no column of that name would be overwritten.
    with pytest.raises(
        SpecError, match=r"t\.yaml: target\.column: a target named 'default' must be an integer 0/1"
    ):
        parse_spec(MINIMAL.replace("defaulted", "default"), "t.yaml")
