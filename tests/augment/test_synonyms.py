"""financial_synonyms: the lexicon rule, nlpaug swapping, and category preservation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import load_spec, parse_spec
from risk_app.augment.synonyms import (
    DEFAULT_LEXICON_PATH,
    canonicalize_synonyms,
    default_lexicon,
    lexicon_for,
    load_lexicon,
    template_vocabulary,
)
from risk_app.augment.tokens import detokenize_exact, tokenize_exact, word_boundary_pattern
from risk_app.data.serialize import clause_label, format_value, parse_clauses
from risk_app.errors import DataFileError
from tests.data.german import LABEL_TO_FIELD

from .conftest import augmented_rows, source_text

# Rendered category strings per field, as they appear in the text.
GERMAN = load_spec("german_credit")
RENDERED = {
    field: {format_value(field, v) for v in GERMAN.columns[field].categories or {}}
    for field in GERMAN.categorical_columns
}


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
    alternatives = default_lexicon().alternative_to_canonical  # once: not per word (25,000 words)
    swapped = {w for text in rows["text"] for w in tokenize_exact(text) if w in alternatives}
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


def test_a_data_sets_lexicon_is_the_shipped_one_plus_its_own_groups() -> None:
    german = lexicon_for("german_credit")
    assert german.alternative_to_canonical["Deutsche Mark"] == "DM"  # from the German spec
    cards = lexicon_for("uci_credit_card")
    assert "Deutsche Mark" not in cards.alternative_to_canonical  # no DM outside German credit
    assert cards.alternative_to_canonical["loan"] == "credit"  # the financial lexicon still applies
    assert canonicalize_synonyms("Loan limit: 5000 NT dollars.", cards) == "Credit limit: 5000 NT dollars."


def test_a_spec_synonym_that_breaks_the_rule_names_the_spec() -> None:
    text = (GERMAN.spec_path or Path()).read_text(encoding="utf-8")
    bad = text.replace("alternatives: [Deutsche Mark, Deutschmark]", "alternatives: [Deutsche Mark, own]")
    spec = parse_spec(bad, "my_spec.yaml")
    with pytest.raises(DataFileError, match=r"my_spec\.yaml: .*alternative 'own' of 'DM' already occurs"):
        load_lexicon(DEFAULT_LEXICON_PATH, spec, drop_conflicts=True)
