"""The hybrid's tabular half: the LightGBM baseline, stored as plain data instead of a pickle.

`fit_tabular` fits exactly the `lightgbm` baseline of `risk_app/evaluate/baselines.py` (same
features from the data set's spec, same preprocessing, same seed), so the hybrid's tabular
score equals the evaluation's LightGBM row. `TabularModel` then keeps what scoring needs as
data: the one-hot categories of each categorical column, the training median of each numeric
column, and the booster as LightGBM's own text format. An artifact therefore holds a JSON file
and a text file, checked by sha256 on load, and loading one never unpickles anything.

A missing value is what the baseline makes of it: a categorical column's "<missing>" category
(all-zero one-hot when training never saw it), a numeric column's training median. Reason
codes occlude a field in the tabular features by setting it missing.

    model = fit_tabular(train_df, spec, seed=42); p = model.predict(test_df)
    files = model.to_files(); again = TabularModel.from_files(files[FEATURES_FILE], files[BOOSTER_FILE], spec)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import ConfigError
from risk_app.evaluate.baselines import classical_feature_frame, fit_baseline

FEATURES_FILE = "tabular_features.json"
BOOSTER_FILE = "tabular_lightgbm.txt"


class NoTabularFeaturesError(ConfigError):
    """A data set whose spec types no column as category, boolean or number."""


def tabular_columns(spec: DatasetSpec) -> list[str]:
    """The spec's columns the tabular model reads; refuses a data set that has none."""
    columns = [*spec.categorical_columns, *spec.numeric_columns]
    if not columns:
        raise NoTabularFeaturesError(
            f"hybrid: data set {spec.name!r} has no tabular features (no category, boolean or number "
            "column in its spec), so there is nothing for LightGBM to stack with the LLM; "
            "train without --hybrid"
        )
    return columns


@dataclass(frozen=True)
class TabularModel:
    """LightGBM on the spec's features: one-hot categories, median-imputed numbers, a booster."""

    categories: dict[str, list[str]]  # categorical column -> its one-hot categories, in order
    medians: dict[str, float]  # numeric column -> training median (imputes missing values)
    booster: lightgbm.Booster
    spec: DatasetSpec

    @property
    def columns(self) -> list[str]:
        return [*self.categories, *self.medians]

    def matrix(self, df: pd.DataFrame) -> np.ndarray:
        """The booster's input: the baseline pipeline's column layout, built from the stored data."""
        frame = classical_feature_frame(df, self.spec)
        blocks = [_one_hot(frame[col].to_numpy(dtype=object), cats) for col, cats in self.categories.items()]
        for col, median in self.medians.items():
            values = frame[col].to_numpy(dtype=float)
            blocks.append(np.where(np.isnan(values), median, values)[:, None])
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """P(default) for each row of `df` (needs the spec's tabular columns; values may be missing)."""
        if df.empty:
            return np.zeros(0, dtype=float)
        return np.asarray(self.booster.predict(self.matrix(df)), dtype=float)

    def to_files(self) -> dict[str, str]:
        """{file name: text} to store beside the model (JSON features, LightGBM text booster)."""
        features = {"categories": self.categories, "medians": self.medians, "lightgbm": lightgbm.__version__}
        return {FEATURES_FILE: json.dumps(features, indent=2), BOOSTER_FILE: self.booster.model_to_string()}

    @classmethod
    def from_files(cls, features_json: str, booster_text: str, spec: DatasetSpec) -> TabularModel:
        features = json.loads(features_json)
        return cls(
            categories={k: [str(c) for c in v] for k, v in features["categories"].items()},
            medians={k: float(v) for k, v in features["medians"].items()},
            booster=lightgbm.Booster(model_str=booster_text),
            spec=spec,
        )


def _one_hot(values: np.ndarray, categories: list[str]) -> np.ndarray:
    """(n, len(categories)) 0/1 columns; a value outside `categories` is an all-zero row."""
    return (values[:, None] == np.asarray(categories, dtype=object)[None, :]).astype(float)


def _from_pipeline(pipeline: Pipeline, spec: DatasetSpec) -> TabularModel:
    """The stored form of a fitted `lightgbm` baseline pipeline."""
    transformer = pipeline.named_steps["features"]
    encoder = transformer.named_transformers_["categorical"]
    imputer = transformer.named_transformers_["numeric"]
    pairs = (
        zip(spec.categorical_columns, encoder.categories_, strict=True) if spec.categorical_columns else ()
    )
    categories = {col: [str(c) for c in cats] for col, cats in pairs}
    medians = (
        {col: float(m) for col, m in zip(spec.numeric_columns, imputer.statistics_, strict=True)}
        if spec.numeric_columns
        else {}
    )
    return TabularModel(categories, medians, pipeline.named_steps["model"].booster_, spec)


def fit_tabular(
    train_df: pd.DataFrame, spec: DatasetSpec | str | None = None, seed: int = 42
) -> TabularModel:
    """The `lightgbm` baseline fitted on `train_df`, in its stored form."""
    spec = load_spec(spec)
    tabular_columns(spec)
    return _from_pipeline(fit_baseline("lightgbm", train_df, seed=seed, spec=spec), spec)


def with_missing(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """`df` with `column` set to missing in every row (how reason codes occlude a tabular field)."""
    out = df.copy()
    out[column] = pd.Series([None] * len(out), index=out.index, dtype=object)
    return out


__all__ = [
    "BOOSTER_FILE", "FEATURES_FILE", "NoTabularFeaturesError", "TabularModel", "fit_tabular",
    "tabular_columns", "with_missing",
]  # fmt: skip
