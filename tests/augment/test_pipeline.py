"""augment_training_examples: labels, splits, leakage, ids, determinism, bad inputs."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pytest

from risk_app.augment import (
    AugmentationError,
    AugmentConfig,
    GroupLeakageError,
    assert_no_group_leakage,
    augment_training_examples,
)
from risk_app.augment.pipeline import RESULT_COLUMNS
from risk_app.data.examples import EXAMPLE_COLUMNS
from risk_app.data.serialize import parse_clauses

from .conftest import augmented_rows, source_text

ALL_DEFAULT = {"augmenters": ["number_perturbation", "clause_shuffle", "financial_synonyms"]}


def test_labels_and_sources_are_preserved(run_augment, examples_df: pd.DataFrame) -> None:
    result = run_augment(copies_per_row=2, **ALL_DEFAULT)
    frame = result.frame
    assert list(frame.columns) == list(RESULT_COLUMNS)
    rows = augmented_rows(result)
    train = examples_df[examples_df["split"] == "train"]
    assert len(rows) == 2 * len(train)
    label_of = dict(zip(examples_df["application_id"], examples_df["default"], strict=True))
    assert (rows["default"] == rows["source_application_id"].map(label_of)).all()
    expected_ids = {f"{sid}-aug{k}" for sid in train["application_id"] for k in (1, 2)}
    assert set(rows["application_id"]) == expected_ids
    assert frame["application_id"].is_unique
    assert frame["default"].dtype == examples_df["default"].dtype
    # The `augmenters` column names what changed each copy; the counts agree with it.
    for name, count in result.per_augmenter.items():
        assert count == rows["augmenters"].str.split("+").apply(lambda names, n=name: n in names).sum()
    assert result.counts == {
        "n_original_train": len(train),
        "n_selected": len(train),
        "n_augmented": len(rows),
        "n_unchanged_dropped": 0,
    }
    assert len(result.examples) == 3
    assert result.examples[0]["before"] != result.examples[0]["after"]
    assert result.metadata()["augmenter.clause_shuffle"] == len(rows)


def test_only_train_is_augmented_and_nothing_leaks(run_augment, examples_df: pd.DataFrame) -> None:
    frame = run_augment(**ALL_DEFAULT).frame
    assert set(frame.loc[frame["augmented"], "split"]) == {"train"}
    # Validation and test come back exactly as given.
    originals = frame[~frame["augmented"]][list(EXAMPLE_COLUMNS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(originals, examples_df.reset_index(drop=True))
    # Sources of validation/test rows never appear in train (group-wise split holds).
    held_out = set(frame.loc[frame["split"] != "train", "source_application_id"])
    assert held_out
    assert held_out.isdisjoint(frame.loc[frame["split"] == "train", "source_application_id"])
    assert_no_group_leakage(frame)


def test_leakage_guard_names_the_leaking_application(examples_df: pd.DataFrame) -> None:
    frame = examples_df.copy()
    train_id = frame.loc[frame["split"] == "train", "application_id"].iloc[0]
    leak = frame[frame["application_id"] == train_id].assign(application_id="copy", split="test")
    with pytest.raises(
        GroupLeakageError, match=rf"1 source application\(s\).*{train_id}.*\['test', 'train'\]"
    ):
        assert_no_group_leakage(pd.concat([frame, leak]))
    # The pipeline refuses an examples table that already leaks.
    with pytest.raises(GroupLeakageError):
        augment_training_examples(pd.concat([frame, leak]), pd.DataFrame(), AugmentConfig(enabled=True))


def test_same_seed_same_frame_other_seed_other_frame(
    examples_df: pd.DataFrame, valid_df: pd.DataFrame
) -> None:
    config = AugmentConfig(
        enabled=True, seed=11, ratio=0.3, augmenters=[*ALL_DEFAULT["augmenters"], "char_noise"]
    )
    random.seed(123)
    np.random.seed(123)
    first = augment_training_examples(examples_df, valid_df, config).frame
    # The caller's global random streams are untouched by nlpaug's draws.
    assert random.random() == random.Random(123).random()
    assert np.random.random() == np.random.RandomState(123).random_sample()
    again = augment_training_examples(examples_df.sample(frac=1.0, random_state=0), valid_df, config).frame
    key = ["application_id"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True), again.sort_values(key).reset_index(drop=True)
    )
    other = augment_training_examples(examples_df, valid_df, config.model_copy(update={"seed": 12})).frame
    assert set(other.loc[other["augmented"], "application_id"]) != set(
        first.loc[first["augmented"], "application_id"]
    )
    shared = set(other["application_id"]) & set(first.loc[first["augmented"], "application_id"])
    texts_first = first.set_index("application_id")["text"]
    texts_other = other.set_index("application_id")["text"]
    assert all(texts_first[i] != texts_other[i] for i in shared)


def test_ratio_and_disabled(run_augment, examples_df: pd.DataFrame, valid_df: pd.DataFrame) -> None:
    n_train = int((examples_df["split"] == "train").sum())
    half = run_augment(ratio=0.5, **ALL_DEFAULT)
    assert half.counts["n_selected"] == round(0.5 * n_train) == half.counts["n_augmented"]
    for config in (AugmentConfig(), AugmentConfig(enabled=True, copies_per_row=0)):
        off = augment_training_examples(examples_df, valid_df, config)
        assert off.counts["n_augmented"] == 0 and not off.frame["augmented"].any()
        assert (off.frame["augmenters"] == "").all()
        pd.testing.assert_frame_equal(off.frame[list(EXAMPLE_COLUMNS)], examples_df)


def test_char_noise_keeps_numbers_and_clause_structure(run_augment, examples_df: pd.DataFrame) -> None:
    rows = augmented_rows(run_augment(augmenters=["char_noise"], char_noise_prob=0.1))
    sources = source_text(examples_df)
    assert len(rows) == int((examples_df["split"] == "train").sum())
    for sid, text in zip(rows["source_application_id"], rows["text"], strict=True):
        before = sources[sid]
        assert text != before and len(text) == len(before)  # one letter for one letter
        assert re.findall(r"\d+", text) == re.findall(r"\d+", before)
        assert [c for c in text if not c.isalpha()] == [c for c in before if not c.isalpha()]
        assert len(parse_clauses(text)) == len(parse_clauses(before))


def test_examples_must_match_the_valid_applications(
    examples_df: pd.DataFrame, valid_df: pd.DataFrame
) -> None:
    config = AugmentConfig(enabled=True)
    first_train = examples_df.index[examples_df["split"] == "train"][0]
    source_id = examples_df.at[first_train, "source_application_id"]
    with pytest.raises(
        AugmentationError, match=rf"have no row in the valid applications, e\.g\. '{source_id}'"
    ):
        augment_training_examples(examples_df, valid_df[valid_df["application_id"] != source_id], config)
    altered = valid_df.copy()
    altered.loc[altered["application_id"] == source_id, "credit_amount"] += 1
    with pytest.raises(AugmentationError, match=rf"'{source_id}': its text does not match application"):
        augment_training_examples(examples_df, altered, config)
    with pytest.raises(AugmentationError, match=r"lacks columns \['split'\]"):
        augment_training_examples(examples_df.drop(columns="split"), valid_df, config)


def test_excluded_fields_stay_excluded(valid_df: pd.DataFrame) -> None:
    from risk_app.data.examples import build_training_examples

    examples = build_training_examples(
        valid_df.head(40), seed=3, exclude_fields=("age_in_years", "foreign_worker")
    )
    result = augment_training_examples(examples, valid_df, AugmentConfig(enabled=True, **ALL_DEFAULT))
    texts = augmented_rows(result)["text"]
    assert len(texts) > 0
    assert not texts.str.contains("Age:|Applicant age:|Foreign worker:").any()
