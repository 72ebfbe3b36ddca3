"""An exactly reversible tokenizer for nlpaug's word and character augmenters.

nlpaug's default tokenizer splits on punctuation and its detokenizer re-spaces the result, so
"< 0 DM" or "account/other" come back with different spacing: a category value would change
even where no word was replaced. Here a text is split into word tokens and the gaps between
them, and joining the tokens gives the text back byte for byte. A hyphenated or apostrophe
word ("self-employed", "co-applicant", "customer's") is one token, so an augmenter never edits
half of it.
"""

from __future__ import annotations

import re

WORD_PATTERN = r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*"
_TOKEN = re.compile(rf"{WORD_PATTERN}|[^A-Za-z0-9]+")
_LETTER_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")


def tokenize_exact(text: str) -> list[str]:
    """Words and the gaps between them; `"".join(tokenize_exact(t)) == t` for every text."""
    return _TOKEN.findall(text)


def detokenize_exact(tokens: list[str]) -> str:
    """Inverse of `tokenize_exact`."""
    return "".join(tokens)


def is_letter_word(token: str) -> bool:
    """True for a word with no digit: the only tokens character noise may touch."""
    return _LETTER_WORD.fullmatch(token) is not None


def word_boundary_pattern(phrase: str) -> str:
    """Regex for `phrase` as whole words in the sense of `tokenize_exact`."""
    # Not preceded by a word character (or a word plus '/-), not followed by one (or '/- and one).
    return rf"(?<![A-Za-z0-9])(?<![A-Za-z0-9]['-]){re.escape(phrase)}(?!['-]?[A-Za-z0-9])"


__all__ = [
    "WORD_PATTERN",
    "detokenize_exact",
    "is_letter_word",
    "tokenize_exact",
    "word_boundary_pattern",
]
