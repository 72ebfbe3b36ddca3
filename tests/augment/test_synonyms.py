"""financial_synonyms: the lexicon rule, nlpaug swapping, and category preservation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.loan_application import CATEGORIES
from risk_app.augment.synonyms import (
    DEFAULT_LEXICON_PATH,
    canonicalize_synonyms,
    default_lexicon,
    load_lexicon,
    template_vocabulary,
)
from risk_app.augment.tokens import detokenize_exact, tokenize_exact, word_boundary_pattern
from risk_app.data.serialize import LABEL_TO_FIELD, clause_label, format_value, parse_clauses
from risk_app.errors import DataFileError

from .conftest import augmented_rows, source_text

# Rendered category strings per field, as they appear in the text.
RENDERED = {field: {format_value(field, v) for v in values} for field, values in CATEGORIES.items()}


def clause_values(text: str) -> dict[str, str]:
    """field -> value text, reading labels through the canonical lexicon."""
    values = {}
    for clause in parse_clauses(text):
        label = canonicalize_synonyms(clause_label(clause))
        values[LABEL_TO_FIELD[label]] = clause.split(":", 1)[1].strip().removesuffix(".")
    return values


def test_tokenizer_round_trips_every_template_string() -> None:
    for text in template_vocabulary() + ["Job: self-employed/ x.  a,b ;c", ""]:
        assert detokenize_exact(tokenize_exact(text)) == text
    assert "self-employed" in tokenize_exact("management/ self-employed/ highly")


def test_every_canonical_word_occurs_in_the_template() -> None:
    # A canonical word that no longer occurs (template renamed) is dead lexicon: fail loudly.
    vocabulary = " | ".join(template_vocabulary())
    entries = json.loads(DEFAULT_LEXICON_PATH.read_text())["groups"]
    dead = [
        entry["canonical"]
        for entry in entries
        if not any(
            re.search(word_boundary_pattern(form), vocabulary)
            for form in (entry["canonical"], entry["canonical"][0].upper() + entry["canonical"][1:])
        )
    ]
    assert dead == []


def test_lexicon_rejects_an_alternative_that_is_a_category_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"groups": [{"canonical": "rent", "alternatives": ["own"]}]}))
    with pytest.raises(DataFileError, match=r"bad\.json: .*alternative 'own' of 'rent' already occurs"):
        load_lexicon(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"groups": []}), "non-empty list 'groups'"),
        (
            json.dumps({"groups": [{"canonical": "year", "alternatives": ["yr."]}]}),
            r"groups\[0\].alternatives",
        ),
        (json.dumps({"groups": [{"canonical": "real estate", "alternatives": ["realty"]}]}), "one word"),
    ],
)
def test_lexicon_file_problems_name_the_file_and_entry(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "lexicon.json"
    path.write_text(content)
    with pytest.raises(DataFileError, match=expected) as excinfo:
        load_lexicon(path)
    assert str(path) in str(excinfo.value)
    with pytest.raises(DataFileError, match="cannot read"):
        load_lexicon(tmp_path / "missing.json")


def test_synonyms_change_texts_and_map_back_exactly(run_augment, examples_df: pd.DataFrame) -> None:
    result = run_augment(augmenters=["financial_synonyms"])
    rows = augmented_rows(result)
    sources = source_text(examples_df)
    n_train = int((examples_df["split"] == "train").sum())
    assert len(rows) == n_train  # every train text has lexicon words, so every copy changed
    changed = sum(
        text != sources[sid] for sid, text in zip(rows["source_application_id"], rows["text"], strict=True)
    )
    assert changed == n_train
    assert (rows["augmenters"] == "financial_synonyms").all()
    # The lexicon is the exact inverse: no information but wording changed.
    for sid, text in zip(rows["source_application_id"], rows["text"], strict=True):
        assert canonicalize_synonyms(text) == sources[sid]
    # Several different words were swapped across the set, not one fixed substitution.
    swapped = {
        w
        for text in rows["text"]
        for w in tokenize_exact(text)
        if w in default_lexicon().alternative_to_canonical
    }
    assert len(swapped) >= 15


def test_synonyms_never_turn_a_category_into_another(run_augment, examples_df: pd.DataFrame) -> None:
    result = run_augment(augmenters=["financial_synonyms"])
    sources = source_text(examples_df)
    n_touched_values = 0
    rows = augmented_rows(result)
    for sid, text in zip(rows["source_application_id"], rows["text"], strict=True):
        before = clause_values(sources[sid])
        after = clause_values(text)
        assert after.keys() == before.keys()
        for field, original in before.items():
            if field not in RENDERED:
                continue
            value = after[field]
            # Not another category string of the same field ...
            assert value not in RENDERED[field] - {original}, (sid, field, value)
            # ... and the same category once the wording is canonical again.
            assert canonicalize_synonyms(value) == original
            n_touched_values += value != original
    assert n_touched_values > 50  # category values themselves were reworded, not only labels
