"""`financial_synonyms`: swap template words for synonyms from a lexicon, via nlpaug.

The lexicon of a data set is the shipped financial one (`financial_synonyms.json`, next to this
module) plus the data set's own groups from its spec (`synonyms`, e.g. "DM" -> "Deutsche Mark"
for German credit). It lists groups: a canonical word that occurs in the serialization template
and alternatives that mean the same wherever it occurs ("credit" -> "loan", "installment" ->
"instalment"). nlpaug's `ReservedAug` does the swapping: it finds reserved words and replaces a
share of them with another member of their group.

The rule that keeps labels and categories honest, checked in code when the lexicon loads:

* canonical terms are single words (nlpaug's phrase matching is case-blind and unanchored);
* no alternative occurs anywhere in the template (labels, units, rendered category values).

So an augmented text holds only canonical words and alternatives, every alternative maps back
to one canonical word, and `canonicalize_synonyms(augmented) == source` exactly. A shipped group
that would break the rule for a particular data set's template is left out of that data set's
lexicon (it was written for other wording); a spec's own group that breaks it is an error. In particular
a category value can only become a spelling of itself, never another category value of its
field. Which words are *meaningful* synonyms is a human judgement, recorded per group in the
JSON (with rejected candidates and why).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nlpaug.augmenter.word as naw

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter, seeded_global_rngs
from risk_app.augment.tokens import detokenize_exact, tokenize_exact, word_boundary_pattern
from risk_app.data.serialize import format_value
from risk_app.errors import DataFileError

DEFAULT_LEXICON_PATH = Path(__file__).with_name("financial_synonyms.json")

# Letters, inner spaces, hyphens, apostrophes: no '.' or ':' (they delimit clauses) and nothing
# that is special in a regex (nlpaug compiles phrases unescaped).
_TERM = re.compile(r"[A-Za-z](?:[A-Za-z' -]*[A-Za-z])?")


@dataclass(frozen=True)
class Lexicon:
    """Synonym groups, canonical term first, with first-letter-capitalised variants added."""

    path: Path
    groups: tuple[tuple[str, ...], ...]

    @property
    def alternative_to_canonical(self) -> dict[str, str]:
        return {alt: group[0] for group in self.groups for alt in group[1:]}


def template_vocabulary(spec: DatasetSpec | str | None = None) -> list[str]:
    """Every string the template can produce apart from numbers and free text: labels, units,
    category texts, yes/no."""
    spec = load_spec(spec)
    strings = [spec.label(c) for c in spec.feature_columns]
    for column in spec.numeric_columns:
        # One and two cover singular and plural units ("1 year", "2 years", "DM").
        strings += [format_value(column, 1, spec), format_value(column, 2, spec)]
    for column in spec.categorical_columns:
        strings += list((spec.columns[column].categories or {}).values())
    if any(spec.columns[c].type == "boolean" for c in spec.feature_columns):
        strings += ["yes", "no"]
    return strings


def _capitalised(term: str) -> str:
    return term[0].upper() + term[1:]


def _expand_case(group: tuple[str, ...]) -> list[tuple[str, ...]]:
    # nlpaug is told case_sensitive=True so that "Credit" becomes "Loan", not "loan".
    # An alternative that capitalisation leaves unchanged ("TV") stays in the first group only,
    # so it maps back to one canonical word.
    upper = (_capitalised(group[0]), *(_capitalised(t) for t in group[1:] if _capitalised(t) != t))
    if upper == group or len(upper) < 2:
        return [group]
    if upper[0] == group[0]:
        # "EUR" capitalises to itself: one group, or the canonical word would be in two.
        return [(*group, *(t for t in upper[1:] if t not in group))]
    return [group, upper]


def rule_problems(groups: tuple[tuple[str, ...], ...], vocabulary: list[str]) -> list[str]:
    """Why `groups` break the lexicon rule for a template `vocabulary` (empty: they keep it)."""
    problems = []
    seen: dict[str, int] = {}
    for index, group in enumerate(groups):
        for term in group:
            if term in seen and seen[term] != index:
                problems.append(f"'{term}' is in two groups")
            seen[term] = index
        for alt in group[1:]:
            pattern = re.compile(word_boundary_pattern(alt), re.IGNORECASE)
            hits = [text for text in vocabulary if pattern.search(text)]
            if hits:
                problems.append(
                    f"alternative '{alt}' of '{group[0]}' already occurs in the template: {hits[0]!r}"
                )
    return problems


def check_lexicon_rule(groups: tuple[tuple[str, ...], ...], vocabulary: list[str], path: Path | str) -> None:
    """Raise DataFileError if any alternative occurs in the template or a word is in two groups."""
    problems = rule_problems(groups, vocabulary)
    if problems:
        raise DataFileError(path, "synonym lexicon breaks the category rule: " + "; ".join(problems))


def _parse_group(entry: Any, where: str, path: Path | str) -> tuple[str, ...]:
    if not isinstance(entry, dict):
        raise DataFileError(path, f"{where}: expected an object with 'canonical' and 'alternatives'")
    canonical, alternatives = entry.get("canonical"), entry.get("alternatives")
    if not isinstance(canonical, str) or not re.fullmatch(r"[A-Za-z]+", canonical):
        raise DataFileError(path, f"{where}.canonical: must be one word of letters, got {canonical!r}")
    if not isinstance(alternatives, list) or not alternatives:
        raise DataFileError(path, f"{where}.alternatives: must be a non-empty list of strings")
    for alt in alternatives:
        if not isinstance(alt, str) or not _TERM.fullmatch(alt):
            raise DataFileError(
                path, f"{where}.alternatives: {alt!r} must be letters, spaces, hyphens or apostrophes"
            )
    return (canonical, *dict.fromkeys(alt for alt in alternatives if alt != canonical))


def _read_entries(path: Path) -> list[Any]:
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(path, f"cannot read synonym lexicon: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataFileError(
            path, f"synonym lexicon is not valid JSON (line {exc.lineno}): {exc.msg}"
        ) from exc
    entries = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataFileError(path, "synonym lexicon needs a non-empty list 'groups'")
    return entries


def load_lexicon(
    path: Path | str = DEFAULT_LEXICON_PATH,
    spec: DatasetSpec | str | None = None,
    *,
    drop_conflicts: bool = False,
) -> Lexicon:
    """Read, validate and case-expand a lexicon file plus the spec's own groups.

    The rule (module docstring) is checked against the data set's template. With
    `drop_conflicts`, a file group that breaks it for this data set is left out instead of
    refused; the spec's own groups must always keep it.
    """
    spec = load_spec(spec)
    path = Path(path)
    vocabulary = template_vocabulary(spec)
    groups: list[tuple[str, ...]] = []
    for index, entry in enumerate(_read_entries(path)):
        expanded = _expand_case(_parse_group(entry, f"groups[{index}]", path))
        if drop_conflicts and rule_problems(tuple(expanded), vocabulary):
            continue
        groups.extend(expanded)
    check_lexicon_rule(tuple(groups), vocabulary, path)
    where = spec.spec_path or spec.name
    for index, group in enumerate(spec.synonyms):
        entry = {"canonical": group.canonical, "alternatives": group.alternatives}
        groups.extend(_expand_case(_parse_group(entry, f"synonyms[{index}]", where)))
    frozen = tuple(groups)
    # The spec's groups are checked with the file's: a word may not be in two groups either.
    check_lexicon_rule(frozen, vocabulary, where)
    return Lexicon(path=path, groups=frozen)


_LEXICONS: dict[str, Lexicon] = {}


def lexicon_for(spec: DatasetSpec | str | None = None) -> Lexicon:
    """The data set's lexicon: shipped groups that fit its template, plus its own; once per spec."""
    spec = load_spec(spec)
    if spec.hash not in _LEXICONS:
        _LEXICONS[spec.hash] = load_lexicon(DEFAULT_LEXICON_PATH, spec, drop_conflicts=True)
    return _LEXICONS[spec.hash]


def default_lexicon() -> Lexicon:
    """The default data set's lexicon (shipped groups + german_credit's own), loaded once."""
    return lexicon_for(None)


def canonicalize_synonyms(text: str, lexicon: Lexicon | None = None) -> str:
    """Map every alternative back to its canonical word: undoes `financial_synonyms` exactly."""
    mapping = (lexicon or default_lexicon()).alternative_to_canonical
    # Longest first, so "Deutsche Mark" is replaced before any shorter term inside it.
    alternatives = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(word_boundary_pattern(alt) for alt in alternatives))
    return pattern.sub(lambda match: mapping[match.group(0)], text)


class _ReservedAugOverCandidates(naw.ReservedAug):
    """ReservedAug whose aug_p is a share of the *reserved words*, not of all tokens.

    Stock nlpaug counts `aug_p * len(tokens)`; with our tokenizer gaps are tokens too, so the
    count would be capped by the candidates anyway and every reserved word would be swapped.
    """

    def _get_aug_idxes(self, tokens: list[str]) -> list[int]:
        candidates = self.skip_aug(self.pre_skip_aug(tokens), tokens)
        if not candidates:
            return []
        count = min(len(candidates), self.generate_aug_cnt(len(candidates)))
        return self.sample(candidates, count)


def build_reserved_aug(lexicon: Lexicon, share: float) -> naw.ReservedAug:
    """The nlpaug augmenter for `lexicon`, swapping about `share` of the reserved words."""
    return _ReservedAugOverCandidates(
        reserved_tokens=[list(group) for group in lexicon.groups],
        case_sensitive=True,
        aug_p=share,
        aug_min=1,
        aug_max=None,
        tokenizer=tokenize_exact,
        reverse_tokenizer=detokenize_exact,
        name="financial_synonyms",
    )


@register_augmenter
class FinancialSynonyms(Augmenter):
    name = "financial_synonyms"
    stage = "text"
    description = (
        "Swap template words for same-meaning synonyms from the shipped lexicon (nlpaug ReservedAug)."
    )

    def __init__(self, config: Any, spec: DatasetSpec | None = None, lexicon: Lexicon | None = None) -> None:
        super().__init__(config, spec)
        self.lexicon = lexicon or lexicon_for(self.spec)
        self._aug = build_reserved_aug(self.lexicon, config.synonym_prob)

    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        if sample.text is None:
            raise RuntimeError("financial_synonyms runs on text; the pipeline serializes first")
        with seeded_global_rngs(rng.getrandbits(32)):
            augmented = self._aug.augment(sample.text)
        # nlpaug returns a list for a single input (empty when it had nothing to do).
        text = augmented[0] if augmented else sample.text
        return sample.with_changes(text=text)


__all__ = [
    "DEFAULT_LEXICON_PATH",
    "FinancialSynonyms",
    "Lexicon",
    "build_reserved_aug",
    "canonicalize_synonyms",
    "check_lexicon_rule",
    "default_lexicon",
    "lexicon_for",
    "load_lexicon",
    "rule_problems",
    "template_vocabulary",
]
