"""How a free-text column is read: the `text:` block of a spec column, and its safe regexes.

A `type: text` column may carry a `text:` block (docs/datasets.md, "Free text"):

    desc:
      type: text
      label: Borrower's description
      nullable: true
      max_chars: 2000                  # hard cap on characters read from the cell
      text:
        clean:
          remove: ['Borrower added on \\d{2}/\\d{2}/\\d{2} >']
          strip_html: true
        max_tokens: 96                 # budget in tokens of the model's tokenizer
        position: end                  # after the tabular clauses, under its label
        empty: none given              # what a missing or emptied text reads

What is always done, with or without the block (`risk_app.data.text` does it): Unicode NFC,
control characters, bidirectional marks and zero-width characters removed, whitespace folded,
and a cut on a word boundary marked with an ellipsis (…), never a silent one.

The `remove` patterns are user data run on every cell, and Python's `re` has no timeout. So
they are compiled once, here, at spec load, and refused (naming the field) when invalid, too
many (> 16) or too long (> 200 characters), when they can match the empty string (they would
put a space between every character), and when a repeat holds another repeat that can run
unbounded, e.g. `(a+)+` or `(\\w+\\s?)*`: the nested form behind catastrophic backtracking,
found cheaply on the parse tree `re` itself compiles. What remains is at worst quadratic in the
cell's length, and a cell is cut to `max_chars` (at most 20,000) before any pattern runs.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the parser `re.compile` uses: the tree it returns is what runs
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

MAX_PATTERNS = 16
MAX_PATTERN_CHARS = 200
# Nested bounded repeats are allowed while the inner and outer maxima multiply to at most this.
MAX_NESTED_REPEAT = 1000
DEFAULT_EMPTY_TEXT = "unknown"  # what a missing value of any nullable column reads

TextPosition = Literal["inline", "end"]
# Counts the tokens of a text; a spec bound to one (DatasetSpec.counting_tokens_with) uses it for
# `max_tokens`, an unbound spec the estimate in risk_app.data.text.
TokenCounter = Callable[[str], int]
ESTIMATED_TOKENS = "estimate"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _repeat_max(node: Any) -> tuple[int, list[Any]] | None:
    """(max repeats, body) of a repeat node of the `re` parse tree, else None."""
    op, arg = node
    if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT):
        _low, high, body = arg
        return (MAX_NESTED_REPEAT + 1 if high == sre_parse.MAXREPEAT else int(high)), list(body)
    return None


def _children(node: Any) -> list[Any]:
    """The sub-patterns directly under one parse-tree node (groups, branches, repeats, look-arounds)."""
    op, arg = node
    if op == sre_parse.SUBPATTERN:
        return list(arg[-1])
    if op == sre_parse.BRANCH:
        return [item for branch in arg[1] for item in branch]
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT, sre_parse.ATOMIC_GROUP):
        return list(arg[-1])
    if op == sre_parse.GROUPREF_EXISTS:
        return [item for branch in arg[1:] if branch is not None for item in branch]
    repeat = _repeat_max(node)
    return repeat[1] if repeat else []


def _largest_repeat(nodes: list[Any]) -> int:
    """The largest max-repeat anywhere in `nodes` (1 when there is no repeat)."""
    largest = 1
    for node in nodes:
        repeat = _repeat_max(node)
        if repeat is not None:
            largest = max(largest, repeat[0])
        largest = max(largest, _largest_repeat(_children(node)))
    return largest


def _nested_repeat(nodes: list[Any]) -> bool:
    """Does a repeat hold another repeat whose maxima multiply past MAX_NESTED_REPEAT?"""
    for node in nodes:
        repeat = _repeat_max(node)
        if repeat is not None and repeat[0] > 1:
            inner = _largest_repeat(repeat[1])
            if inner > 1 and repeat[0] * inner > MAX_NESTED_REPEAT:
                return True
        if _nested_repeat(_children(node)):
            return True
    return False


def compile_removal(pattern: str) -> re.Pattern[str]:
    """One `remove` pattern compiled, or ValueError with the reason in plain words."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS}")
    try:
        compiled = re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"not a valid regular expression: {exc.msg}{where}") from None
    except RecursionError:
        raise ValueError("pattern nests too deeply") from None
    if tree.getwidth()[0] == 0:  # the shortest match is empty (e.g. \s*, \b)
        raise ValueError("pattern matches the empty string, so it would put a space between every character")
    if _nested_repeat(list(tree)):
        raise ValueError(
            "a repeat inside a repeat (like (a+)+) can take exponential time on some texts; "
            "write the pattern without the nested repeat"
        )
    return compiled


class TextCleaning(_Strict):
    """Rules that clean a free-text cell before the model reads it (besides the ones always applied)."""

    remove: list[str] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="Regular expressions (Python `re`) whose matches are replaced by a space, in order, "
        "e.g. a fixed boilerplate prefix. Checked at spec load (see data_contracts.spec_text).",
    )
    strip_html: bool = Field(
        default=False,
        description="Replace HTML tags (<br>, </p>, <!-- -->) by a space and unescape entities (&amp; -> &).",
    )

    _compiled: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    @field_validator("remove")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        problems = []
        for i, pattern in enumerate(patterns):
            try:
                compile_removal(pattern)
            except ValueError as exc:
                problems.append(f"[{i}] {pattern[:60]!r}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return patterns

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = [compile_removal(p) for p in self.remove]

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        """The `remove` patterns, compiled once at load."""
        return list(self._compiled)


class TextSpec(_Strict):
    """How the model reads one free-text column: cleaning, token budget, place, empty text."""

    clean: TextCleaning = Field(default_factory=TextCleaning, description="Cleaning rules for this column.")
    max_tokens: int | None = Field(
        default=None,
        ge=4,
        le=4096,
        description="Budget in tokens of the model's tokenizer for this value (its label not counted); "
        "a longer text is cut on a word boundary and ends with '…'. Unset: only max_chars limits it.",
    )
    position: TextPosition = Field(
        default="inline",
        description="inline: in spec order among the other clauses; end: after every inline clause, "
        "under its label (e.g. the borrower's own description after the tabular facts).",
    )
    empty: str = Field(
        default=DEFAULT_EMPTY_TEXT,
        min_length=1,
        max_length=100,
        description="What a missing text, or one that cleaning leaves empty, reads, e.g. 'none given'.",
    )


__all__ = [
    "DEFAULT_EMPTY_TEXT",
    "ESTIMATED_TOKENS",
    "MAX_PATTERNS",
    "MAX_PATTERN_CHARS",
    "TextCleaning",
    "TextPosition",
    "TextSpec",
    "TokenCounter",
    "compile_removal",
]
