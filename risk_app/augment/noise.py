"""`char_noise` (off by default): keyboard typos in a few words, via nlpaug's `KeyboardAug`.

Real application text arrives with typos; a model that has seen "Purpise" still reads the
clause. Only words made of letters are touched, never a token with a digit, so amounts,
durations, ages and codes ("1-4") stay exactly true and the example's label stays honest.
Replacement characters are letters only (no digits, no punctuation, no upper case): a typo can
never add a '.' or ':' that would split or fake a clause. At most one character per chosen word
changes; `char_noise_prob` is the share of eligible words that get a typo.

It is off by default because a typo in a category value ("rent" -> "remt") makes that value
unrecoverable for any exact-match reader; enable it for robustness experiments.
"""

from __future__ import annotations

import random
from typing import Any

import nlpaug.augmenter.char as nac
from nlpaug.util import Method

from data_contracts.spec import DatasetSpec
from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter, seeded_global_rngs
from risk_app.augment.tokens import detokenize_exact, is_letter_word, tokenize_exact


class _LetterWordKeyboardAug(nac.KeyboardAug):
    """KeyboardAug restricted to letter-only words, with the word share counted over those.

    Stock nlpaug counts `aug_word_p * len(tokens)` over all tokens (our gaps included) and only
    skips tokens by a stopword list/regex; here eligibility is an explicit predicate.
    """

    def pre_skip_aug(self, tokens: list[Any], tuple_idx: int | None = None) -> list[int]:
        kept = super().pre_skip_aug(tokens, tuple_idx)
        return [i for i in kept if is_letter_word(tokens[i] if tuple_idx is None else tokens[i][tuple_idx])]

    def _get_aug_idxes(
        self, tokens: list[Any], aug_min: Any, aug_max: Any, aug_p: Any, mode: str
    ) -> list[int]:
        if mode != Method.WORD:
            return super()._get_aug_idxes(tokens, aug_min, aug_max, aug_p, mode)
        eligible = self.pre_skip_aug(tokens)
        if not eligible:
            return []
        count = min(len(eligible), self._generate_aug_cnt(len(eligible), aug_min, aug_max, aug_p))
        return self.sample(eligible, count)


def build_keyboard_aug(word_share: float) -> nac.KeyboardAug:
    """nlpaug KeyboardAug: ~`word_share` of letter words get one letter-for-letter typo."""
    return _LetterWordKeyboardAug(
        name="char_noise",
        aug_word_p=word_share,
        aug_word_min=1,
        aug_word_max=None,
        aug_char_p=0.1,
        aug_char_min=1,
        aug_char_max=1,
        include_special_char=False,
        include_numeric=False,
        include_upper_case=False,
        min_char=4,
        tokenizer=tokenize_exact,
        reverse_tokenizer=detokenize_exact,
    )


@register_augmenter
class CharNoise(Augmenter):
    name = "char_noise"
    stage = "text"
    description = (
        "Keyboard typos in a few letter-only words (nlpaug KeyboardAug); numbers untouched. Off by default."
    )

    def __init__(self, config: Any, spec: DatasetSpec | None = None) -> None:
        super().__init__(config, spec)
        self._aug = build_keyboard_aug(config.char_noise_prob)

    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        if sample.text is None:
            raise RuntimeError("char_noise runs on text; the pipeline serializes first")
        if self.config.char_noise_prob <= 0:
            return sample
        with seeded_global_rngs(rng.getrandbits(32)):
            augmented = self._aug.augment(sample.text)
        text = augmented[0] if augmented else sample.text
        return sample.with_changes(text=text)


__all__ = ["CharNoise", "build_keyboard_aug"]
