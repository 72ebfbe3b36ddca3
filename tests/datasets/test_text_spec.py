"""The `text:` block of a free-text column: typed, every mistake named, regexes refused when unsafe.

A spec's regular expressions are user data that run on every cell with no timeout, so they are
compiled at load and refused (naming the field) when invalid, too many, too long, empty-matching
or nested repeats; a spec without text blocks keeps its hash; a file missing a declared
free-text column is refused naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_contracts.spec import SpecError, load_spec, parse_spec
from data_contracts.spec_text import MAX_PATTERNS, compile_removal
from risk_app.data.load import load_applications
from risk_app.errors import DataFileError

BOOK = """
name: notes_book
version: 1.0.0
description: Loans with an officer's note.
source: made up for tests
licence: CC0
columns:
  loan_id: {type: text, label: Loan id}
  amount: {type: float, label: Amount, unit: EUR, min: 0, max: 100000}
  note:
    type: text
    label: Officer's note
    nullable: true
    max_chars: 500
    text: TEXT_BLOCK
  defaulted: {type: integer, label: Defaulted, min: 0, max: 1}
id_column: loan_id
target: {column: defaulted, positive: 1}
"""


def _spec(text_block: str) -> str:
    return BOOK.replace("TEXT_BLOCK", text_block)


def test_a_text_block_loads_typed_with_compiled_patterns() -> None:
    spec = parse_spec(
        _spec(
            "{clean: {remove: ['Borrower added on \\d{2}/\\d{2}/\\d{2} >', '(?:ref|REF) \\d{3,8}'], "
            "strip_html: true}, max_tokens: 64, position: end, empty: none given}"
        )
    )
    rules = spec.text_spec("note")
    assert rules.max_tokens == 64 and rules.position == "end" and rules.empty == "none given"
    assert rules.clean.strip_html and [p.pattern for p in rules.clean.patterns] == rules.clean.remove
    assert all(isinstance(p, re.Pattern) for p in rules.clean.patterns)
    # The YAML round trip keeps the block and the hash.
    again = parse_spec(spec.to_yaml())
    assert again.text_spec("note") == rules and again.hash == spec.hash
    # A column without a block reads with the defaults.
    plain = parse_spec(_spec("{}").replace("    text: {}\n", ""))
    assert plain.columns["note"].text is None and plain.text_spec("note").empty == "unknown"


def test_specs_without_text_blocks_keep_their_hash() -> None:
    # Recorded before the text block existed: a new field with a default must not move them
    # (artifacts and the scoring check compare spec hashes).
    assert load_spec("german_credit").hash.startswith("391d791cf245")
    assert load_spec("uci_credit_card").hash.startswith("ec7775c421de")


TEXT_MISTAKES = [
    ("invalid regex", "{clean: {remove: ['(unclosed']}}",
     r"columns\.note\.text\.clean\.remove: \[0\] '\(unclosed': not a valid regular expression: missing \)"),
    ("nested repeat", "{clean: {remove: ['(a+)+b']}}", r"\[0\] '\(a\+\)\+b': a repeat inside a repeat"),
    ("nested repeat in alternation", "{clean: {remove: ['x(?:\\w+\\s?|y)*z']}}", r"a repeat inside a repeat"),
    ("empty match", "{clean: {remove: ['\\s*']}}", r"matches the empty string"),
    ("lookaround only", "{clean: {remove: ['\\b']}}", r"matches the empty string"),
    ("too long", "{clean: {remove: ['" + "a" * 201 + "']}}", r"201 characters long; at most 200"),
    ("too many", "{clean: {remove: [" + ", ".join(["x"] * (MAX_PATTERNS + 1)) + "]}}",
     r"clean\.remove: List should have at most 16 items"),
    ("unknown key", "{clean: {remove_html: true}}", r"columns\.note\.text\.clean\.remove_html: unknown key"),
    ("misplaced key", "{strip_html: true}", r"columns\.note\.text\.strip_html: unknown key"),
    ("bad position", "{position: top}", r"columns\.note\.text\.position: Input should be 'inline' or 'end'"),
    ("tiny budget", "{max_tokens: 2}", r"text\.max_tokens: Input should be greater than or equal to 4"),
    ("unsafe empty", "{empty: 'none: given'}", r"note\.text\.empty: 'none: given' may not contain ': '"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("block", "message"), [m[1:] for m in TEXT_MISTAKES], ids=[m[0] for m in TEXT_MISTAKES]
)
def test_each_text_block_mistake_is_one_clear_message(tmp_path: Path, block: str, message: str) -> None:
    path = tmp_path / "notes_book.yaml"
    path.write_text(_spec(block))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path.resolve()}: "), caught.value
    assert len(caught.value.problems) == 1, caught.value.problems
    assert re.search(message, str(caught.value)), str(caught.value)


def test_a_text_block_on_a_column_that_is_not_text_is_refused() -> None:
    text = _spec("{}").replace(
        "amount: {type: float, label: Amount, unit: EUR, min: 0, max: 100000}",
        "amount: {type: float, label: Amount, unit: EUR, min: 0, max: 100000, text: {max_tokens: 8}}",
    )
    with pytest.raises(
        SpecError, match=r"columns\.amount\.text: cleaning and token budgets are for free-text"
    ):
        parse_spec(text)
    with pytest.raises(
        SpecError, match=r"columns\.note\.max_chars: Input should be less than or equal to 20000"
    ):
        parse_spec(_spec("{}").replace("max_chars: 500", "max_chars: 100000"))


def test_nested_repeats_are_refused_and_plain_patterns_allowed() -> None:
    # (a+)+b backtracks exponentially: on "a" * 30 Python's re takes minutes to say no match.
    with pytest.raises(ValueError, match="repeat inside a repeat"):
        compile_removal(r"(a+)+b")
    # Bounded nesting with a small product and plain repeats are allowed.
    for pattern in (
        r"(?:\d{2}/){2}\d{2}",
        r"<br\s*/?>",
        r"Borrower added on \d{2}/\d{2}/\d{2} >",
        r"[A-Z]{2,}",
    ):
        assert compile_removal(pattern).pattern == pattern
    with pytest.raises(ValueError, match="repeat inside a repeat"):
        compile_removal(r"(?:a{1,100}){1,100}")


def test_a_file_without_a_declared_text_column_is_refused_naming_it(tmp_path: Path) -> None:
    spec_path = tmp_path / "notes_book.yaml"
    spec_path.write_text(_spec("{empty: none given}"))
    data = tmp_path / "loans.csv"
    data.write_text("loan_id,amount,defaulted\nL1,100,0\nL2,200,1\n")
    with pytest.raises(DataFileError) as caught:
        load_applications(data, spec=load_spec(spec_path))
    message = str(caught.value)
    assert "missing required column(s): note " in message and str(data) in message
