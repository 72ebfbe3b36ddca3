"""`clause_shuffle`: serialize the fields in a seeded random order.

The template is a list of independent "Label: value." clauses, so their order carries no
information; a model that learns "the 5th clause is the amount" generalizes worse than one that
reads labels. Shuffling happens at the layout stage: the row is serialized with a permuted
`field_order` (by `risk_app.data.serialize`), never by cutting text apart, so every clause is
exactly the one the template would write.
"""

from __future__ import annotations

import random

from risk_app.augment.base import Augmenter, AugmentSample, register_augmenter


@register_augmenter
class ClauseShuffle(Augmenter):
    name = "clause_shuffle"
    stage = "layout"
    description = "Serialize the same fields in a seeded random clause order."

    def apply(self, sample: AugmentSample, rng: random.Random) -> AugmentSample:
        order = list(sample.field_order)
        if len(order) < 2:
            return sample
        shuffled = order[:]
        # The identity permutation is no augmentation; redraw (1/n! chance each time).
        while shuffled == order:
            rng.shuffle(shuffled)
        return sample.with_changes(field_order=tuple(shuffled))


__all__ = ["ClauseShuffle"]
