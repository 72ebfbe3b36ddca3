"""The text baselines on the real Lending Club file (2,650 loans with free text), where it is.

The file may not be copied into this repository: it is read from `<repo>/../shared/data/` and
the test skips when it is absent. Its spec here is `datasets init`'s draft with the three free
texts (job title, loan title, the borrower's description) kept as text and the columns that are
not model inputs left out; the documented spec of the data set is in docs/datasets.md.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from data_contracts.spec import DatasetSpec, parse_spec
from data_contracts.spec_draft import draft_spec
from risk_app.data.load import load_applications
from risk_app.data.split import assign_split
from risk_app.data.validate import validate_applications
from risk_app.evaluate.text_baselines import TextBaseline, score_text_baselines
from risk_app.paths import REPO_ROOT

DATA = REPO_ROOT.parent / "shared" / "data" / "lendingclub_2014_jan.csv"
TEXTS = ("emp_title", "desc", "title")
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"{DATA} is absent (not shipped: licence)")


@pytest.fixture(scope="module")
def book() -> tuple[DatasetSpec, pd.DataFrame]:
    frame = pd.read_csv(DATA, dtype=str, keep_default_na=True)
    raw = draft_spec(frame, name="lendingclub", target="bad_loans", positive="1", source_file=DATA).spec
    spec = raw.model_dump(mode="json", exclude_defaults=True)
    for name, column in spec["columns"].items():
        column.pop("inferred", None)
        if name in TEXTS:
            column.update(type="text", nullable=True, max_chars=2000)
    spec["exclude"] = ["issue_d", "earliest_cr_line", "zip_code"]
    parsed = parse_spec(json.dumps(spec), "lendingclub.yaml")
    valid = validate_applications(load_applications(DATA, parsed), str(DATA), spec=parsed).valid
    return parsed, valid


def test_the_text_baselines_read_the_real_file(book: tuple[DatasetSpec, pd.DataFrame]) -> None:
    """Fitted on a training split of the real texts (HTML tags, "Borrower added on" prefixes,
    missing descriptions), each reads words of all three columns and ranks test loans at least
    as well as LightGBM on the tables does there (0.68 on this split; docs/accuracy.md)."""
    spec, valid = book
    assert set(spec.text_columns) == set(TEXTS) and len(valid) == 2650
    split = assign_split(valid, seed=0)
    train, val, test = (valid[split == s].reset_index(drop=True) for s in ("train", "validation", "test"))
    scores, notes = score_text_baselines(train, val, test, ("logistic_tfidf", "lightgbm_tfidf"), spec=spec)
    assert notes == {}
    for name, (_, p_test) in scores.items():
        assert roc_auc_score(test["default"], p_test) > 0.64, name
    vocabulary = set(TextBaseline("lightgbm_tfidf", spec).fit(train).text.vocabulary_)  # type: ignore[union-attr]
    assert {"consolidation", "manager", "desc", "emp title"} <= vocabulary  # words and labels
