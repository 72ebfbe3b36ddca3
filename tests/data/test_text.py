"""Free text as the model reads it: cleaned, capped, budgeted in tokens, placed, or the empty text.

And the bad inputs of issue 22: a text column empty on every row, a 100,000-character cell,
HTML, control, bidi and zero-width characters, other scripts: a cleaned text or one clear
message, never a crash and never a silent cut.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import DatasetSpec, parse_spec
from risk_app.data.examples import build_training_examples
from risk_app.data.serialize import (
    field_labels,
    format_value,
    parse_clauses,
    serialize_application,
    serialize_frame,
)
from risk_app.data.text import (
    CUT_MARK,
    clean_text_column,
    estimate_tokens,
    fit_tokens,
    read_text,
    read_text_column,
    text_column_stats,
    text_warnings,
    tokenizer_counter,
)
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError

SPEC = r"""
name: notes_book
version: 1.0.0
description: Loans with an officer's note and a job title.
source: made up for tests
licence: CC0
columns:
  loan_id: {type: text, label: Loan id}
  note:
    type: text
    label: Officer's note
    nullable: true
    max_chars: 300
    text:
      clean: {remove: ['Borrower added on \d{2}/\d{2}/\d{2} >'], strip_html: true}
      max_tokens: 24
      position: end
      empty: none given
  amount: {type: float, label: Amount, unit: EUR, min: 0, max: 100000}
  job: {type: text, label: Job title, nullable: true, max_chars: 40}
  term: {type: integer, label: Term, unit: [month, months], min: 1, max: 120}
  defaulted: {type: integer, label: Defaulted, min: 0, max: 1}
id_column: loan_id
target: {column: defaulted, positive: 1}
"""

LC_NOTE = (
    "  Borrower added on 01/22/14 > Pay off my deat&quot;s &amp; credit cards.<br><br> "
    "Borrower added on 01/22/14 > The loan is for credit cards.<br>"
)


@pytest.fixture
def spec() -> DatasetSpec:
    return parse_spec(SPEC, "notes_book.yaml")


def _frame(notes: list[object], jobs: list[object] | None = None) -> pd.DataFrame:
    n = len(notes)
    return pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(n)],
            "note": notes,
            "amount": [1000.0 + i for i in range(n)],
            "job": jobs if jobs is not None else ["Nurse"] * n,
            "term": [12] * n,
            "defaulted": [i % 2 for i in range(n)],
        }
    )


def test_prefixes_and_html_are_cleaned_and_the_text_goes_last(spec: DatasetSpec) -> None:
    text = serialize_application(_frame([LC_NOTE]).iloc[0], spec=spec)
    assert text == (
        "Amount: 1000 EUR. Job title: Nurse. Term: 12 months. "
        "Officer's note: Pay off my deat\"s & credit cards. The loan is for credit cards."
    )
    assert list(field_labels(spec)) == ["amount", "job", "term", "note"]  # template order
    assert [c.split(":")[0] for c in parse_clauses(text)] == ["Amount", "Job title", "Term", "Officer's note"]
    # `position: end` holds whatever order a caller (an augmenter, reason codes) asks for.
    shuffled = serialize_application(
        _frame([LC_NOTE]).iloc[0], field_order=["note", "term", "amount", "job"], spec=spec
    )
    assert shuffled.startswith("Term: 12 months. Amount") and shuffled.endswith("for credit cards.")
    done = read_text(LC_NOTE, "note", spec)
    assert (
        done.cleaned and not done.cut_tokens and not done.empty and done.tokens == estimate_tokens(done.text)
    )


def test_a_missing_or_emptied_text_reads_the_spec_empty_text(spec: DatasetSpec) -> None:
    frame = _frame(
        [None, "   ", "<br><br>", "Borrower added on 01/30/14 > <br>", "fine"], jobs=[None, "", "x", "y", "z"]
    )
    texts = serialize_frame(frame, spec=spec)
    assert [t.rsplit("Officer's note: ", 1)[1] for t in texts] == ["none given."] * 4 + ["fine."]
    assert "Job title: unknown." in texts[0]  # a column without a text block keeps "unknown"
    assert format_value("note", None, spec) == "none given"
    for i in range(len(frame)):  # the row-wise path agrees with the column-wise one
        assert serialize_application(frame.iloc[i], spec=spec) == texts[i]


def test_the_token_budget_cuts_on_a_word_boundary_and_marks_the_cut(spec: DatasetSpec) -> None:
    long_note = " ".join(f"word{i}" for i in range(40))  # 270 characters: under max_chars
    done = read_text(long_note, "note", spec)
    assert done.cut_tokens and not done.cut_chars
    assert done.text.endswith(CUT_MARK) and done.tokens <= 24
    kept = done.text.removesuffix(CUT_MARK)
    assert long_note.startswith(kept) and long_note[len(kept)] == " "  # a whole word, then the mark
    # The longest such prefix: one more word would not fit.
    next_word = long_note[: long_note.index(" ", len(kept) + 1)]
    assert estimate_tokens(next_word + CUT_MARK) > 24
    # A budget in the tokens of a real tokenizer when the spec is bound to one.
    bound = spec.counting_tokens_with(lambda text: len(text.split()), "words")
    by_words = read_text(long_note, "note", bound)
    assert by_words.text == " ".join(f"word{i}" for i in range(24)) + CUT_MARK and by_words.tokens == 24
    assert bound.hash == spec.hash and bound.token_counter_name == "words" and spec.token_counter is None


def test_a_text_of_100000_characters_is_capped_and_marked_not_silently_cut(spec: DatasetSpec) -> None:
    huge = ("Please consider my application. " * 3200)[:100_000]
    frame = _frame([huge, "short note"])
    texts = serialize_frame(frame, spec=spec)
    note = texts[0].rsplit("Officer's note: ", 1)[1]
    assert note.endswith(CUT_MARK + ".") and note.startswith("Please consider my application")
    done = read_text(huge, "note", spec)
    assert done.cut_chars and done.cut_tokens and done.tokens <= 24
    stats = text_column_stats(spec, frame)["note"]
    assert (stats.rows, stats.cut_chars, stats.cut_tokens, stats.empty) == (2, 1, 1, 0)
    assert clean_text_column(spec, "note", frame["note"])[0].endswith(CUT_MARK)
    assert len(clean_text_column(spec, "note", frame["note"])[0]) <= 300 + 1  # max_chars and the mark


def test_control_bidi_and_zero_width_characters_are_removed_or_quarantined(spec: DatasetSpec) -> None:
    dirty = "pay\u200b off\u00ad cards\tnow\r\nplease \u202eevil\u202c end\x07"
    done = read_text(dirty, "note", spec)
    assert done.text == "pay off cards now please evil end" and done.cleaned
    assert read_text("tabs\tand\nlines", "note", spec).cleaned is False  # whitespace is no cleaning
    # Validation quarantines the bidi override and the bell with one reason per row: nothing lost.
    frame = _frame([dirty, "zero\u200bwidth", "plain"])
    result = validate_applications(frame, source="notes.csv", spec=spec)
    assert result.n_in == result.n_valid + result.n_quarantined == 3 and result.n_quarantined == 1
    row = result.quarantine.iloc[0]
    assert row["column"] == "note" and "control or bidirectional-override" in row["reason"]
    assert serialize_frame(result.valid, spec=spec)[0].endswith("Officer's note: zerowidth.")


def test_other_scripts_stay_readable_and_are_cut_on_characters_when_they_have_no_spaces(
    spec: DatasetSpec,
) -> None:
    assert read_text("Ремонт квартиры", "note", spec).text == "Ремонт квартиры"  # 15 estimated tokens
    cyrillic = "Ремонт квартиры и погашение кредитной карты"  # 39 estimated tokens: cut between words
    assert read_text(cyrillic, "note", spec).text == "Ремонт квартиры и" + CUT_MARK
    chinese = "我需要这笔贷款来偿还信用卡债务并支付孩子的学费和医疗费用" * 2
    done = read_text(chinese, "note", spec)
    assert done.cut_tokens and done.text == chinese[:23] + CUT_MARK and done.tokens == 24
    decomposed = "Cafe\u0301 owner"
    assert read_text(decomposed, "note", spec).text == "Caf\u00e9 owner"  # NFC


def test_a_text_column_empty_on_every_row_reads_the_empty_text_and_says_so(spec: DatasetSpec) -> None:
    frame = _frame([None] * 6)
    texts = serialize_frame(frame, spec=spec)
    assert all(t.endswith("Officer's note: none given.") for t in texts)
    stats = text_column_stats(spec, frame)
    assert stats["note"].empty == 6 and stats["note"].tokens_mean == 0.0 and stats["note"].tokens_max == 0
    (warning,) = text_warnings(stats, spec)
    assert "`note` is empty on every row (6)" in warning and "'none given'" in warning
    # Validating and building examples work: the column reads the same everywhere.
    result = validate_applications(frame, source="notes.csv", spec=spec)
    assert result.n_valid == 6
    examples = build_training_examples(result.valid, seed=1, spec=spec)
    assert len(examples) == 6 and examples["text"].str.endswith("Officer's note: none given.").all()
    # Declared not nullable, the same column is one clear quarantine reason per row instead.
    strict = parse_spec(
        SPEC.replace("    nullable: true\n    max_chars: 300", "    max_chars: 300"), "strict.yaml"
    )
    refused = validate_applications(frame, source="notes.csv", spec=strict)
    assert refused.n_in == 6 == refused.n_quarantined and set(refused.quarantine["column"]) == {"note"}


def test_clean_and_read_text_columns_for_other_readers_of_the_text(spec: DatasetSpec) -> None:
    notes = pd.Series([LC_NOTE, None, "<p>Hi &lt;there&gt;</p>"], index=[7, 8, 9], name="note")
    cleaned = clean_text_column(spec, "note", notes)
    assert cleaned.tolist() == [
        'Pay off my deat"s & credit cards. The loan is for credit cards.',
        "",
        "Hi <there>",
    ]
    assert cleaned.index.tolist() == [7, 8, 9]
    read = read_text_column(spec, "note", notes)
    assert read.tolist() == [
        'Pay off my deat"s & credit cards. The loan is for credit cards',
        "none given",
        "Hi <there>",
    ]
    with pytest.raises(
        ConfigError, match=r"'amount' is not a free-text column; free-text columns: \['note', 'job'\]"
    ):
        clean_text_column(spec, "amount", notes)


def test_fit_tokens_leaves_a_text_within_budget_alone() -> None:
    assert fit_tokens("short text", 8, estimate_tokens) == ("short text", False, 3)
    assert estimate_tokens("abcd") == 1 and estimate_tokens("2014") == 4 and estimate_tokens("é") == 1


def test_a_tokenizer_counts_what_the_model_reads(tiny_qwen2: Path, spec: DatasetSpec) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    count = tokenizer_counter(tokenizer)
    bound = spec.counting_tokens_with(count, "tokenizer of tiny-qwen2")
    note = "I have been a nurse for ten years and want to consolidate my credit card debt " * 4
    done = read_text(note, "note", bound)
    assert done.cut_tokens and done.tokens == count(done.text) <= 24
    assert len(tokenizer(done.text, add_special_tokens=False)["input_ids"]) == done.tokens
    stats = text_column_stats(bound, _frame([note, None]))["note"]
    assert stats.counted_with == "tokenizer of tiny-qwen2" and stats.tokens_max == done.tokens
