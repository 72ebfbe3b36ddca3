"""The Lending Club example (docs/examples/lendingclub_2014_jan.yaml) on the real file.

Lending Club's terms forbid shipping the data, so the spec names no data file and these tests
read `<repo>/../shared/data/lendingclub_2014_jan.csv`, skipping when it is absent. The spec
must validate the whole file with an honest quarantine count, clean the borrower's
description ("Borrower added on MM/DD/YY >" prefixes, <br> tags, entities) within its token
budget, and train end to end although the data set declares no protected attribute.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.data.serialize import parse_clauses, serialize_frame
from risk_app.data.text import CUT_MARK, clean_text_column, read_text, text_column_stats
from risk_app.finetune.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "docs" / "examples" / "lendingclub_2014_jan.yaml"
DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "lendingclub_2014_jan.csv"
needs_data = pytest.mark.skipif(not DATA_PATH.is_file(), reason=f"{DATA_PATH} absent (not redistributable)")


def test_the_example_spec_holds_no_data_and_declares_the_free_text() -> None:
    spec = load_spec(SPEC_PATH)
    assert spec.data is None and spec.data_path is None
    assert spec.protected == [] and spec.target.column == "bad_loans" and spec.id_column == "id"
    assert spec.text_columns == ("emp_title", "desc", "title")
    desc = spec.text_spec("desc")
    assert desc.position == "end" and desc.empty == "none given" and desc.clean.strip_html
    assert desc.max_tokens is not None and spec.columns["desc"].max_chars is not None
    assert set(spec.exclude) == {"funded_amnt", "funded_amnt_inv", "zip_code"}  # zip: a proxy for race


@needs_data
def test_the_file_validates_and_its_descriptions_are_cleaned_within_budget() -> None:
    spec = load_spec(SPEC_PATH)
    result = workflow.ingest_and_validate(DATA_PATH, spec=spec)
    assert result.n_in == 2650 == result.n_valid + result.n_quarantined
    assert result.n_quarantined == 0  # every column's type, range and categories hold on this file
    valid = result.valid
    assert valid["default"].mean() == pytest.approx(0.18, abs=0.005)
    assert str(valid["earliest_cr_line"].dtype).startswith("datetime64")
    assert valid["desc"].notna().sum() == 916

    stats = text_column_stats(spec, valid)
    assert (stats["desc"].cleaned, stats["desc"].empty, stats["desc"].cut_chars) == (916, 1734, 0)
    assert stats["desc"].tokens_max <= 128 and stats["emp_title"].empty == 181 and stats["title"].empty == 0

    cleaned = clean_text_column(spec, "desc", valid["desc"])
    assert not cleaned.str.contains("Borrower added on|<br>|&amp;|&quot;", regex=True).any()
    assert (cleaned == "").sum() == 1734

    with_desc = valid[valid["desc"].notna()].head(5)
    texts = serialize_frame(with_desc, spec=spec)
    for raw, text in zip(with_desc["desc"], texts, strict=True):
        last = parse_clauses(text)[-1]
        assert last.startswith("Borrower's description: ")
        assert "Borrower added" not in last and "<br>" not in last
        assert read_text(raw, "desc", spec).tokens <= 128
    assert serialize_frame(valid[valid["desc"].isna()].head(1), spec=spec).iloc[0].endswith(
        "Borrower's description: none given."
    )
    # The longest description is cut on a word boundary and says so.
    longest = valid.loc[valid["desc"].str.len().idxmax(), "desc"]
    done = read_text(longest, "desc", spec)
    assert done.cut_tokens and done.text.endswith(CUT_MARK)


@needs_data
def test_a_short_run_on_a_few_hundred_loans(tiny_qwen2: Path, risk_app_home: Path) -> None:
    sample = pd.read_csv(DATA_PATH, dtype=str).sample(200, random_state=0)
    path = risk_app_home / "lendingclub_sample.csv"
    sample.to_csv(path, index=False)
    config = TrainConfig(epochs=1, max_length=512, seed=7, batch_size=32)
    spec = workflow.spec_counting_tokens_of(SPEC_PATH, config.base_model)
    validation = workflow.ingest_and_validate(path, spec=spec)
    examples = workflow.prepare_examples(validation.valid, seed=7, spec=spec)
    record = workflow.train_run(
        validation.valid, examples, config, spec=spec, source=str(path),
        baselines=("logistic",), progress=False,
    )  # fmt: skip
    assert record.dataset.protected == [] and record.need("evaluation").fairness["assessable"] is False
    assert record.dataset.text_tokens == "tokenizer of tiny-qwen2"
    desc = record.dataset.text_columns["desc"]
    assert desc.rows == 200 and desc.cleaned == 200 - desc.empty and desc.tokens_max <= 128
    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text()
    assert "| `desc` | 200 |" in card and "Fairness not assessable" in card
