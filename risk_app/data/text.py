"""Free text as the model reads it: cleaned, capped, budgeted in tokens, or the spec's empty text.

Every free-text cell goes through the same steps, in this order (the rules come from the
column's spec, `ColumnSpec.max_chars` and its `text:` block, `data_contracts.spec_text`):

1. **Cap** at `max_chars` characters of the raw cell, on a word boundary, before any pattern
   runs (a 100,000-character cell costs what a `max_chars` one does).
2. **Always:** Unicode NFC; C0/C1 control characters become spaces; bidirectional marks,
   embeddings, overrides and isolates and zero-width characters (U+200B-U+200D, U+2060, U+FEFF,
   soft hyphen) are removed. Validation already quarantines controls and bidi overrides in free
   text (`data_contracts.spec_schema`); removing them here too covers text that was never
   validated and the zero-width characters validation lets through.
3. `clean.strip_html`: tags become spaces, entities are unescaped (`&amp;` -> `&`).
4. Whitespace folded to single spaces, so a pattern's `^` is the text's first word.
5. `clean.remove`: each pattern's matches become spaces, in order; whitespace folded again.
6. For the model's text (`read_text`), the serializer's clause safety (": " reads ", ", no
   trailing "."), then the **token budget** `max_tokens`: a longer text is cut on a word
   boundary (on a character where a script has no spaces) so that it and the mark fit.
   A cut is never silent: the text ends with "…" (U+2026), and the run record counts it.
   A missing text, or one that cleaning leaves empty, reads the spec's `text.empty`.

Tokens are counted by the spec's bound counter (`DatasetSpec.counting_tokens_with`, which a
training run binds to its base model's tokenizer: `tokenizer_counter`), or else by
`estimate_tokens`: one token per ASCII digit (Qwen-class tokenizers split numbers into
digits), one per four other ASCII characters (about what a BPE vocabulary of this size gives
English; measured in docs/datasets.md) and one per non-ASCII character (other scripts take
one to three characters a token, so the estimate errs on the short side).

Two entry points for readers of free text besides the serializer:

    clean_text_column(spec, "desc", frame["desc"])   # steps 1-5: for TF-IDF, embeddings
    read_text_column(spec, "desc", frame["desc"])    # steps 1-6: exactly what the model reads
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts.spec import DatasetSpec, load_spec
from data_contracts.spec_model import ColumnSpec
from data_contracts.spec_text import TextSpec, TokenCounter
from risk_app.errors import ConfigError

CUT_MARK = "…"
# Controls become spaces (a tab or line break separates words); bidi and zero-width go.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_INVISIBLE = re.compile("[\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.DOTALL)
# Punctuation left dangling before a cut mark ("money, …" reads "money…").
_BEFORE_MARK = " \t,;:.-\u2013\u2014"
_NO_RULES = TextSpec()  # a free-text column without a text block


def estimate_tokens(text: str) -> int:
    """Tokens of `text` estimated without a tokenizer (see the module docstring)."""
    n_ascii = len(text.encode("ascii", "ignore"))
    digits = sum(ch in "0123456789" for ch in text)
    return digits + math.ceil((n_ascii - digits) / 4) + (len(text) - n_ascii)


class TokenizerCounter:
    """Tokens of a text by a Hugging Face tokenizer, special tokens not counted (picklable)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        # verbose=False: a text longer than the model's limit is counted, not warned about here.
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def tokenizer_counter(tokenizer: Any) -> TokenCounter:
    """A token counter for `DatasetSpec.counting_tokens_with` from a loaded tokenizer."""
    return TokenizerCounter(tokenizer)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _head(text: str, n: int) -> str:
    """The first `n` characters of `text`, backed off to the last space when one lies in the
    second half (a script without spaces is cut on a character)."""
    if n >= len(text):
        return text
    head = text[:n]
    if not text[n].isspace():
        space = max(head.rfind(" "), head.rfind("\t"))
        if space > n // 2:
            head = head[:space]
    return head


def _marked(head: str) -> str:
    return head.rstrip(_BEFORE_MARK) + CUT_MARK


def fit_tokens(text: str, max_tokens: int, count: TokenCounter) -> tuple[str, bool, int]:
    """(`text` cut so that it and the cut mark take at most `max_tokens` tokens, whether it was
    cut, its tokens). A text within budget costs one count; a cut about log2(len) more."""
    tokens = count(text)
    if tokens <= max_tokens:
        return text, False, tokens
    body = text.removesuffix(CUT_MARK)
    # Binary search for the longest prefix whose marked cut fits; 0 always fits (the mark alone).
    # Token counts grow with the prefix (closely enough for BPE for the search to converge).
    low, high, best = 0, len(body), count(CUT_MARK)
    while low < high:
        mid = (low + high + 1) // 2
        tokens = count(_marked(_head(body, mid)))
        if tokens <= max_tokens:
            low, best = mid, tokens
        else:
            high = mid - 1
    return _marked(_head(body, low)), True, best


def clause_safe(text: str) -> str:
    """A value that cannot end a clause early or look like a new "Label: " (risk_app.data.serialize)."""
    return text.replace(": ", ", ").rstrip(".")


@dataclass(frozen=True)
class CleanedText:
    """One cell after steps 1-5: the text, and what was done to it."""

    text: str
    cleaned: bool  # a rule removed something: HTML, a pattern, control or invisible characters
    cut_chars: bool  # the cell was longer than max_chars


def clean_text(value: Any, column: ColumnSpec) -> CleanedText:
    """Steps 1-5 of the module docstring for one cell of a free-text column ("" when missing)."""
    if _is_missing(value):
        return CleanedText("", False, False)
    raw = str(value)
    cut = column.max_chars is not None and len(raw) > column.max_chars
    if cut:
        raw = _head(raw, int(column.max_chars or 0))
    text, n_invisible = _INVISIBLE.subn("", unicodedata.normalize("NFC", raw))
    controls = _CONTROLS.findall(text)
    cleaned = n_invisible > 0 or any(ch not in "\t\n\r" for ch in controls)
    text = _CONTROLS.sub(" ", text) if controls else text
    rules = column.text or _NO_RULES
    if rules.clean.strip_html:
        stripped = html.unescape(_HTML_TAG.sub(" ", text))
        cleaned = cleaned or stripped != text
        text = stripped
    text = " ".join(text.split())  # folded first, so a pattern's ^ is the text's first word
    for pattern in rules.clean.patterns:
        text, n = pattern.subn(" ", text)
        cleaned = cleaned or n > 0
    text = " ".join(text.split())
    if cut and text:
        text = _marked(text)
    return CleanedText(text, cleaned, cut)


@dataclass(frozen=True)
class ReadText:
    """One cell as the model reads it after its label, and what was done to get there."""

    text: str
    cleaned: bool
    cut_chars: bool
    cut_tokens: bool
    empty: bool  # missing, or empty after cleaning: `text` is the spec's empty text
    tokens: int  # tokens of `text` (0 for the empty text, which is fixed wording; see read_text)


def read_text(value: Any, column: str, spec: DatasetSpec, *, count_all: bool = True) -> ReadText:
    """Steps 1-6 of the module docstring for one cell of free-text column `column`.

    With `count_all=False` (the serializer) tokens are counted only where a budget needs them,
    and `tokens` is -1 for a text without a budget: scoring pays for no count it does not use."""
    col = spec.columns[column]
    rules = col.text or _NO_RULES
    done = clean_text(value, col)
    text = clause_safe(done.text)
    if not text.strip(_BEFORE_MARK + CUT_MARK):
        return ReadText(rules.empty, done.cleaned, done.cut_chars, False, True, 0)
    count = spec.token_counter or estimate_tokens
    if rules.max_tokens is not None:
        text, cut_tokens, tokens = fit_tokens(text, rules.max_tokens, count)
        return ReadText(text, done.cleaned, done.cut_chars, cut_tokens, False, tokens)
    return ReadText(text, done.cleaned, done.cut_chars, False, False, count(text) if count_all else -1)


def _require_text_column(spec: DatasetSpec, column: str) -> None:
    if column not in spec.columns or spec.columns[column].type != "text":
        raise ConfigError(
            f"data set {spec.name}: {column!r} is not a free-text column; "
            f"free-text columns: {list(spec.text_columns)}"
        )


def clean_text_column(spec: DatasetSpec | str | None, column: str, series: pd.Series) -> pd.Series:
    """The cleaned text of each cell (steps 1-5; missing or emptied cells are ""), same index.

    For models that read the text themselves (TF-IDF, sentence embeddings): the spec's cleaning
    and `max_chars` cap, without the language model's token budget, clause safety or empty text.
    """
    spec = load_spec(spec)
    _require_text_column(spec, column)
    col = spec.columns[column]
    rendered = {value: clean_text(value, col).text for value in series.dropna().unique()}
    return series.map(rendered).where(series.notna(), "").astype(object).rename(series.name)


def read_text_column(spec: DatasetSpec | str | None, column: str, series: pd.Series) -> pd.Series:
    """Exactly what the language model reads after the column's label (steps 1-6), same index."""
    spec = load_spec(spec)
    _require_text_column(spec, column)
    values = series.dropna().unique()
    rendered = {value: read_text(value, column, spec, count_all=False).text for value in values}
    return series.map(rendered).where(series.notna(), read_text(None, column, spec).text).astype(object)


class TextColumnStats(BaseModel):
    """What cleaning and budgets did to one free-text column of a run's data (the run record)."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(description="Rows read.")
    cleaned: int = Field(
        description="Rows where a rule removed something (HTML, a pattern, invisible characters)."
    )
    cut_chars: int = Field(description="Rows longer than max_chars, cut and marked with '…'.")
    cut_tokens: int = Field(description="Rows over the token budget, cut and marked with '…'.")
    empty: int = Field(description="Rows missing or empty after cleaning (they read the spec's empty text).")
    tokens_mean: float = Field(description="Mean tokens of the text read, over non-empty rows (0 if none).")
    tokens_max: int = Field(description="Most tokens of a text read.")
    max_chars: int | None = Field(description="The spec's cap in characters.")
    max_tokens: int | None = Field(description="The spec's budget in tokens (None: no budget).")
    counted_with: str = Field(description="What counted tokens: a tokenizer's name or 'estimate'.")
    position: str = Field(description="inline or end.")


def text_column_stats(spec: DatasetSpec | str | None, frame: pd.DataFrame) -> dict[str, TextColumnStats]:
    """Per free-text feature column of `spec` found in `frame`: rows cleaned, cut, empty; tokens."""
    spec = load_spec(spec)
    stats = {}
    for column in spec.text_columns:
        if column not in frame.columns:
            continue
        counts = frame[column].value_counts(dropna=False)
        done = [(read_text(value, column, spec), int(n)) for value, n in counts.items()]
        filled = [(r, n) for r, n in done if not r.empty]
        n_filled = sum(n for _, n in filled)
        rules = spec.text_spec(column)
        stats[column] = TextColumnStats(
            rows=len(frame),
            cleaned=sum(n for r, n in done if r.cleaned),
            cut_chars=sum(n for r, n in done if r.cut_chars),
            cut_tokens=sum(n for r, n in done if r.cut_tokens),
            empty=sum(n for r, n in done if r.empty),
            tokens_mean=round(sum(r.tokens * n for r, n in filled) / n_filled, 2) if n_filled else 0.0,
            tokens_max=max((r.tokens for r, _ in filled), default=0),
            max_chars=spec.columns[column].max_chars,
            max_tokens=rules.max_tokens,
            counted_with=spec.token_counter_name,
            position=rules.position,
        )
    return stats


def text_warnings(stats: dict[str, TextColumnStats], spec: DatasetSpec | str | None) -> list[str]:
    """Plain-words findings about free text for the model card: a column empty on every row."""
    spec = load_spec(spec)
    return [
        f"Free text: `{column}` is empty on every row ({s.rows}); the model reads "
        f"'{spec.text_spec(column).empty}' for all of them, so the column carries no information."
        for column, s in stats.items()
        if s.rows and s.empty == s.rows
    ]


__all__ = [
    "CUT_MARK",
    "CleanedText",
    "ReadText",
    "TextColumnStats",
    "TokenizerCounter",
    "clause_safe",
    "clean_text",
    "clean_text_column",
    "estimate_tokens",
    "fit_tokens",
    "read_text",
    "read_text_column",
    "text_column_stats",
    "text_warnings",
    "tokenizer_counter",
]
