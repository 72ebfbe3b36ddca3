"""Build the text-classification examples a model trains on, and fingerprint data sets.

`build_training_examples` turns validated applications into (text, default, split) rows with
the data set's serialization template (`spec`), split at random (stratified, seeded) or out of
time (oldest applications train, newest test, on the spec's `date_column`).
`prepare_training_examples` does it as a `PreparationConfig` says (the CLI's `train --split`
and the Dagster launchpad's `training_examples` config are both that class): out of time, by
default the newest month is the test set and the month before validates. Augmentation
later appends rows with `augmented=True` and the original's id in `source_application_id`;
the split is by that source id.

`data_hash` is a SHA-256 of a canonical rendering of a frame (sorted columns, fixed float
format, row order kept): artifacts record it so a model can be traced to the exact data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.data.split import SplitKind, assign_split, latest_vintage_fractions, out_of_time_split
from risk_app.errors import ConfigError

ID_COLUMN = "application_id"

EXAMPLE_COLUMNS: tuple[str, ...] = (
    "application_id",
    "source_application_id",
    "text",
    "default",
    "split",
    "augmented",
)


def build_training_examples(
    valid_df: pd.DataFrame,
    seed: int = 42,
    exclude_fields: Iterable[str] = (),
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    *,
    spec: DatasetSpec | str | None = None,
    split: SplitKind = "random",
) -> pd.DataFrame:
    """One example per validated application: id, source id, text, default, split, augmented.

    `split="out_of_time"` puts the oldest applications (by the spec's `date_column`) in train
    and the newest in test, instead of the stratified random split.
    """
    spec = load_spec(spec)
    if "default" not in valid_df.columns:
        raise ConfigError("training examples need labelled rows: column 'default' is missing")
    if valid_df["default"].isna().any():
        raise ConfigError("training examples need labelled rows: some rows have no 'default'")
    if ID_COLUMN not in valid_df.columns:
        raise ConfigError(f"training examples need column '{ID_COLUMN}'")
    frame = valid_df.reset_index(drop=True)
    examples = pd.DataFrame(
        {
            "application_id": frame[ID_COLUMN].astype(str),
            "source_application_id": frame[ID_COLUMN].astype(str),
            "text": serialize_frame(frame, exclude=tuple(exclude_fields), spec=spec),
            "default": frame["default"].astype("int64"),
        }
    )
    if split == "out_of_time":
        if spec.date_column is None or spec.date_column not in frame.columns:
            raise ConfigError(
                f"an out-of-time split needs the date column of data set {spec.name}; "
                + (
                    "the spec declares none (date_column)"
                    if spec.date_column is None
                    else f"the data lack column '{spec.date_column}'"
                )
            )
        examples["split"] = out_of_time_split(frame[spec.date_column], fractions=fractions)
    elif split == "random":
        examples["split"] = assign_split(
            examples, seed=seed, fractions=fractions, group_column="source_application_id"
        )
    else:
        raise ConfigError(f"unknown split {split!r}; choose random or out_of_time")
    examples["augmented"] = False
    return examples[list(EXAMPLE_COLUMNS)]


class PreparationConfig(BaseModel):
    """How validated applications become training examples: which fields the text leaves out
    and how the rows are split."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=42, description="Seed of the stratified 70/15/15 split.")
    split: SplitKind = Field(
        default="random",
        description="random: stratified by label; out_of_time: oldest train, newest test, on the "
        "spec's date column.",
    )
    test_on: Literal["latest_vintage", "fractions"] = Field(
        default="latest_vintage",
        description="split=out_of_time: test on the newest month and validate on the month before, "
        "or cut at the 70/15/15 fractions.",
    )
    exclude_fields: list[str] = Field(
        default_factory=list,
        description="Columns left out of the serialized text, e.g. the protected attributes.",
    )


def prepare_training_examples(
    valid_df: pd.DataFrame, config: PreparationConfig, spec: DatasetSpec | str | None = None
) -> pd.DataFrame:
    """`build_training_examples` as `config` says; out of time on the latest vintage, the cut
    points fall on the month boundaries (`latest_vintage_fractions`)."""
    spec = load_spec(spec)
    fractions = (0.7, 0.15, 0.15)
    dated = spec.date_column is not None and spec.date_column in valid_df.columns
    if config.split == "out_of_time" and config.test_on == "latest_vintage" and dated:
        fractions = latest_vintage_fractions(valid_df[spec.date_column])
    # Undated data fall through to build_training_examples, which names the missing date column.
    return build_training_examples(
        valid_df, seed=config.seed, exclude_fields=tuple(config.exclude_fields), fractions=fractions,
        spec=spec, split=config.split,
    )  # fmt: skip


def data_hash(df: pd.DataFrame) -> str:
    """SHA-256 (hex) of the frame's content: same data, same hash, whatever the column order.

    Dtypes are part of the hash (1 and "1" are different data); the index is not. Row order is
    kept because it changes what a seeded training run sees.
    """
    frame = df.reset_index(drop=True)
    columns = sorted(map(str, frame.columns))
    frame.columns = list(map(str, frame.columns))
    frame = frame[columns]
    digest = hashlib.sha256()
    digest.update(repr([(c, str(frame[c].dtype)) for c in columns]).encode("utf-8"))
    digest.update(
        frame.to_csv(index=False, lineterminator="\n", float_format="%.17g", na_rep="<NA>").encode("utf-8")
    )
    return digest.hexdigest()


__all__ = [
    "EXAMPLE_COLUMNS",
    "PreparationConfig",
    "build_training_examples",
    "data_hash",
    "prepare_training_examples",
]
