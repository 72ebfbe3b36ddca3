"""Augment the training split of the examples table; guard the split against group leakage.

`augment_training_examples(examples_df, valid_df, config)` takes the output of
`risk_app.data.examples.build_training_examples` and the validated applications it came from,
and appends augmented copies of (a seeded `ratio` of) the *train* rows:

    row stage (number_perturbation) -> layout stage (clause_shuffle)
    -> serialize_application(row, field_order) -> text stage (financial_synonyms, char_noise)

Each copy is re-serialized from the structured row with the same fields as its source text
(so an `exclude_fields` choice made when building the examples carries over), gets the id
"<source>-aug<k>", keeps the source's `default` label, `split="train"` and
`source_application_id`, and names in `augmenters` the augmenters that changed it. Every copy
draws from its own generator, seeded by (config seed, source id, copy number, augmenter), so a
copy does not depend on row order, on the other rows, or on which other augmenters run.

Validation and test rows are returned untouched. Because copies inherit their source's id and
the split was assigned by source id, `assert_no_group_leakage` can check the invariant that
matters: no source application appears in two splits.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.augment.base import STAGE_ORDER, Augmenter, AugmentSample, derive_seed, get_augmenter
from risk_app.augment.config import AugmentConfig
from risk_app.data.examples import EXAMPLE_COLUMNS
from risk_app.data.serialize import clause_label, label_to_field, parse_clauses, serialize_application
from risk_app.data.validate import ID_COLUMN
from risk_app.errors import RiskAppError

AUGMENTERS_COLUMN = "augmenters"
RESULT_COLUMNS: tuple[str, ...] = (*EXAMPLE_COLUMNS, AUGMENTERS_COLUMN)


class AugmentationError(RiskAppError):
    """The examples and applications given to augmentation do not fit together."""


class GroupLeakageError(RiskAppError):
    """A source application appears in more than one split."""


@dataclass
class AugmentResult:
    """Original examples plus augmented train copies, with counts and a few before/after pairs."""

    frame: pd.DataFrame
    counts: dict[str, int]
    per_augmenter: dict[str, int]
    examples: list[dict[str, str]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """Flat, JSON-friendly summary for Dagster/MLflow metadata."""
        flat: dict[str, Any] = dict(self.counts)
        flat.update({f"augmenter.{name}": n for name, n in self.per_augmenter.items()})
        flat["examples"] = self.examples
        return flat


def assert_no_group_leakage(frame: pd.DataFrame, group_column: str = "source_application_id") -> None:
    """Raise GroupLeakageError if any group (source application) appears in more than one split."""
    missing = [c for c in (group_column, "split") if c not in frame.columns]
    if missing:
        raise AugmentationError(f"cannot check split leakage: columns {missing} are missing")
    splits_per_group = frame.groupby(group_column, sort=True)["split"].nunique()
    leaking = splits_per_group[splits_per_group > 1]
    if not leaking.empty:
        first = leaking.index[0]
        seen = sorted(frame.loc[frame[group_column] == first, "split"].unique())
        raise GroupLeakageError(
            f"{len(leaking)} source application(s) appear in more than one split, "
            f"e.g. {group_column}={first!r} in {seen}: evaluation would see training data"
        )


def _check_examples(examples_df: pd.DataFrame) -> None:
    missing = [c for c in EXAMPLE_COLUMNS if c not in examples_df.columns]
    if missing:
        raise AugmentationError(
            f"examples table lacks columns {missing}; build it with build_training_examples"
        )
    duplicated = examples_df["application_id"][examples_df["application_id"].duplicated()]
    if not duplicated.empty:
        raise AugmentationError(f"examples table repeats application_id {duplicated.iloc[0]!r}")


def _rows_by_id(valid_df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    if ID_COLUMN not in valid_df.columns:
        raise AugmentationError(f"valid applications lack column '{ID_COLUMN}'")
    ids = valid_df[ID_COLUMN].astype(str)
    if ids.duplicated().any():
        raise AugmentationError(f"valid applications repeat {ID_COLUMN} {ids[ids.duplicated()].iloc[0]!r}")
    records = valid_df.to_dict(orient="records")
    return dict(zip(ids, records, strict=True))


def source_field_order(text: str, source_id: str, spec: DatasetSpec | str | None = None) -> tuple[str, ...]:
    """The fields, in order, that a serialized text holds (recovered from its clause labels)."""
    labels = label_to_field(spec)
    fields = []
    for clause in parse_clauses(text):
        label = clause_label(clause)
        if label not in labels:
            raise AugmentationError(f"example {source_id!r}: clause label {label!r} is not in the template")
        fields.append(labels[label])
    return tuple(fields)


def _build_augmenters(config: AugmentConfig, spec: DatasetSpec) -> list[Augmenter]:
    instances = [get_augmenter(name)(config, spec) for name in config.augmenters]
    # Stable sort: the configured order holds within a stage.
    return sorted(instances, key=lambda aug: STAGE_ORDER.index(aug.stage))


def augment_one(
    row: dict[str, Any],
    field_order: tuple[str, ...],
    augmenters: list[Augmenter],
    seed: int,
    source_id: str,
    copy: int,
    spec: DatasetSpec | None = None,
) -> tuple[AugmentSample, list[str]]:
    """Run one copy through every stage; return the final sample and the augmenters that changed it."""
    spec = load_spec(spec)
    sample = AugmentSample(row=dict(row), field_order=field_order)
    changed: list[str] = []
    for augmenter in augmenters:
        if augmenter.stage == "text" and sample.text is None:
            sample = sample.with_changes(
                text=serialize_application(sample.row, field_order=sample.field_order, spec=spec)
            )
        rng = random.Random(derive_seed(seed, source_id, copy, augmenter.name))
        before = sample
        sample = augmenter.apply(sample, rng)
        if (before.row, before.field_order, before.text) != (sample.row, sample.field_order, sample.text):
            changed.append(augmenter.name)
    if sample.text is None:
        sample = sample.with_changes(
            text=serialize_application(sample.row, field_order=sample.field_order, spec=spec)
        )
    return sample, changed


def _select_sources(source_ids: list[str], ratio: float, seed: int) -> set[str]:
    # Sorted ids: the selection depends on the seed and the data, never on row order.
    ordered = sorted(source_ids)
    n_selected = int(round(ratio * len(ordered)))
    chosen = np.random.default_rng(derive_seed(seed, "select")).choice(
        len(ordered), n_selected, replace=False
    )
    return {ordered[i] for i in chosen}


def _require_source_rows(source_ids: list[str], rows: dict[str, dict[str, Any]]) -> None:
    # Every train example must have its structured row: copies are re-serialized from it.
    absent = [sid for sid in source_ids if sid not in rows]
    if absent:
        raise AugmentationError(
            f"{len(absent)} training example(s) have no row in the valid applications, e.g. {absent[0]!r}"
        )


def _verified_field_order(example: Any, row: dict[str, Any], spec: DatasetSpec) -> tuple[str, ...]:
    """The fields of the example's text, after checking that `row` re-serializes to that text."""
    source_id = str(example.source_application_id)
    fields = source_field_order(example.text, source_id, spec)
    # The structured row must be the one the text was made from, or copies would carry
    # another applicant's numbers under this applicant's label.
    if serialize_application(row, field_order=fields, spec=spec) != example.text:
        raise AugmentationError(
            f"example {example.application_id!r}: its text does not match application {source_id!r} "
            "in the valid applications (different data or template version)"
        )
    return fields


def _augmented_row(example: Any, source_id: str, copy: int, text: str, changed: list[str]) -> dict[str, Any]:
    """One new examples-table row: the copy's text under its source's label, always in train."""
    return {
        "application_id": f"{source_id}-aug{copy}",
        "source_application_id": source_id,
        "text": text,
        "default": example.default,
        "split": "train",
        "augmented": True,
        AUGMENTERS_COLUMN: "+".join(changed),
    }


@dataclass
class _CopiesMade:
    """What the copy loop produced: new rows, before/after pairs to show, and per-augmenter changes."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, str]] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)


def _make_copies(
    train: pd.DataFrame,
    rows: dict[str, dict[str, Any]],
    selected: set[str],
    augmenters: list[Augmenter],
    config: AugmentConfig,
    spec: DatasetSpec,
    counts: dict[str, int],
) -> _CopiesMade:
    """Augment `copies_per_row` copies of each selected train example; update `counts` as it goes."""
    made = _CopiesMade()
    for example in train.itertuples(index=False):
        source_id = str(example.source_application_id)
        if source_id not in selected:
            continue
        counts["n_selected"] += 1
        fields = _verified_field_order(example, rows[source_id], spec)
        for copy in range(1, config.copies_per_row + 1):
            sample, changed = augment_one(
                rows[source_id], fields, augmenters, config.seed, source_id, copy, spec
            )
            # A copy identical to its source adds nothing but weight on that applicant: drop it.
            if sample.text == example.text:
                counts["n_unchanged_dropped"] += 1
                continue
            made.tally.update(changed)
            new_row = _augmented_row(example, source_id, copy, sample.text, changed)
            made.rows.append(new_row)
            if len(made.pairs) < config.n_examples:
                made.pairs.append(
                    {
                        "application_id": new_row["application_id"],
                        "augmenters": new_row[AUGMENTERS_COLUMN],
                        "before": example.text,
                        "after": sample.text,
                    }
                )
    return made


def _append_copies(original: pd.DataFrame, new_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Originals plus copies, checked: ids unique, copies only in train, no source in two splits."""
    augmented = pd.DataFrame(new_rows, columns=list(RESULT_COLUMNS))
    if not augmented.empty:
        augmented = augmented.astype({"default": original["default"].dtype, "augmented": bool})
    frame = pd.concat([original[list(RESULT_COLUMNS)], augmented], ignore_index=True)
    clash = frame["application_id"][frame["application_id"].duplicated()]
    if not clash.empty:
        raise AugmentationError(f"augmented id {clash.iloc[0]!r} collides with an existing application_id")
    if not (frame.loc[frame["augmented"], "split"] == "train").all():
        raise GroupLeakageError("an augmented example ended up outside the train split")
    assert_no_group_leakage(frame)
    return frame


def augment_training_examples(
    examples_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    config: AugmentConfig,
    spec: DatasetSpec | str | None = None,
) -> AugmentResult:
    """Append augmented copies of training examples (see module docstring); others untouched.

    `spec` is the data set the examples were serialized with (default german_credit)."""
    # Setup: check the inputs and pick the train rows that may be copied (never copies of copies).
    spec = load_spec(spec)
    _check_examples(examples_df)
    assert_no_group_leakage(examples_df)
    original = examples_df.copy()
    if AUGMENTERS_COLUMN not in original.columns:
        original[AUGMENTERS_COLUMN] = ""
    is_source = (original["split"] == "train") & ~original["augmented"].astype(bool)
    train = original[is_source]
    counts = {"n_original_train": len(train), "n_selected": 0, "n_augmented": 0, "n_unchanged_dropped": 0}
    per_augmenter = {name: 0 for name in config.augmenters}
    if not config.enabled or config.copies_per_row == 0 or train.empty:
        return AugmentResult(frame=original[list(RESULT_COLUMNS)], counts=counts, per_augmenter=per_augmenter)

    # Steps: match examples to their structured rows, select sources, make and append the copies.
    rows = _rows_by_id(valid_df)
    source_ids = train["source_application_id"].astype(str).tolist()
    _require_source_rows(source_ids, rows)
    selected = _select_sources(source_ids, config.ratio, config.seed)
    augmenters = _build_augmenters(config, spec)
    made = _make_copies(train, rows, selected, augmenters, config, spec, counts)
    frame = _append_copies(original, made.rows)

    # Result: the combined table with its counts and a few before/after pairs.
    counts["n_augmented"] = len(made.rows)
    per_augmenter.update({name: made.tally[name] for name in config.augmenters})
    return AugmentResult(frame=frame, counts=counts, per_augmenter=per_augmenter, examples=made.pairs)


__all__ = [
    "AUGMENTERS_COLUMN",
    "RESULT_COLUMNS",
    "AugmentResult",
    "AugmentationError",
    "GroupLeakageError",
    "assert_no_group_leakage",
    "augment_one",
    "augment_training_examples",
    "source_field_order",
]
