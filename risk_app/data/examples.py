"""Build the text-classification examples a model trains on, and fingerprint data sets.

`build_training_examples` turns validated applications into (text, default, split) rows with
the data set's serialization template (`spec`), split at random (stratified, seeded) or out of
time (oldest applications train, newest test, on the spec's `date_column`). Augmentation
later appends rows with `augmented=True` and the original's id in `source_application_id`;
the split is by that source id.

`data_hash` is a SHA-256 of a canonical rendering of a frame (sorted columns, fixed float
format, row order kept): artifacts record it so a model can be traced to the exact data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.data.split import SplitKind, assign_split, out_of_time_split
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


__all__ = ["EXAMPLE_COLUMNS", "build_training_examples", "data_hash"]
