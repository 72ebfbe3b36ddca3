"""Classical baselines on the tabular features: logistic regression and LightGBM.

A fine-tuned LLM is only worth its cost if it beats these, so every benchmark and model card
reports them on the same split, with the threshold chosen on validation exactly as for the
LLM. Both read the data set's feature columns as its spec types them (numeric columns scaled
or passed through, category and boolean columns one-hot encoded), never the serialized text.
Free-text columns are the language model's advantage and are left out here; so are the id,
target, date and excluded columns.

    from risk_app.evaluate.baselines import score_baselines
    scores = score_baselines(train_df, val_df, test_df, spec=spec)   # {"logistic": (p_val, p_test), ...}

The evaluation stage (`risk_app.run.evaluate`) chooses each baseline's cut-off as it chooses the
model's, with the run's credit policy, and scores them on test beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import ConfigError

BaselineName = Literal["logistic", "lightgbm"]
BASELINE_NAMES: tuple[str, ...] = get_args(BaselineName)


def classical_feature_frame(df: pd.DataFrame, spec: DatasetSpec | str | None = None) -> pd.DataFrame:
    """The spec's feature columns, typed for sklearn: categoricals as str, numerics as float.

    A missing value of a nullable column becomes its own category ("<missing>") or NaN (numeric,
    imputed by the pipeline with the training median).
    """
    spec = load_spec(spec)
    features = list(spec.categorical_columns) + list(spec.numeric_columns)
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise ConfigError(f"baseline features: frame lacks column(s) {missing} of data set {spec.name}")
    out = pd.DataFrame(index=df.index)
    for col in spec.categorical_columns:
        out[col] = df[col].astype(object).where(df[col].notna(), "<missing>").astype(str)
    for col in spec.numeric_columns:
        out[col] = pd.to_numeric(df[col], errors="raise").astype(float)
    return out


def default_target(df: pd.DataFrame, spec: DatasetSpec | str | None = None) -> np.ndarray:
    """0/1 default labels: the `default` column if present, else the spec's target column."""
    spec = load_spec(spec)
    target = spec.target.column
    if "default" in df.columns:
        y = pd.to_numeric(df["default"], errors="coerce")
    elif target in df.columns:
        y = spec.default_flag(df[target])
    else:
        raise ConfigError(f"baseline target: frame has neither `default` nor `{target}`")
    if y.isna().any():
        row = y.index[y.isna()][0]
        raise ConfigError(f"baseline target: row {row} has no usable default label")
    return y.to_numpy(dtype=int)


def tabular_preprocessor(scale_numeric: bool, spec: DatasetSpec, sparse: bool = False) -> ColumnTransformer:
    """The unfitted column preprocessing of the baselines: one-hot categories, median-imputed
    numerics (scaled for a linear model)."""
    # Unknown categories at scoring time become an all-zero one-hot row instead of an error.
    # Output stays a numpy array: LightGBM rejects one-hot names such as "male : single" (JSON chars).
    # `sparse` (for a hstack with a TF-IDF matrix, text_baselines.py) returns a CSR matrix instead.
    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    numeric = Pipeline([("impute", imputer), ("scale", StandardScaler())]) if scale_numeric else imputer
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=sparse),
                list(spec.categorical_columns),
            ),
            ("numeric", numeric, list(spec.numeric_columns)),
        ],
        sparse_threshold=1.0 if sparse else 0.0,
        verbose_feature_names_out=False,
    )


def lightgbm_classifier(seed: int) -> LGBMClassifier:
    """The LightGBM of the `lightgbm` baseline; the text baselines use the very same settings,
    so a difference between them is the text's."""
    # Small and regularized for ~700 training rows; deterministic + 1 thread for reproducibility.
    return LGBMClassifier(
        n_estimators=200,
        learning_rate=0.03,
        num_leaves=8,
        max_depth=4,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        class_weight="balanced",
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )


def build_baseline(name: BaselineName, seed: int = 42, spec: DatasetSpec | str | None = None) -> Pipeline:
    """An unfitted baseline pipeline (preprocessing + classifier) for the data set `spec`."""
    spec = load_spec(spec)
    if name == "logistic":
        # class_weight="balanced": German credit is 30% bad; unweighted LR under-predicts defaults.
        clf = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
        return Pipeline([("features", tabular_preprocessor(True, spec)), ("model", clf)])
    if name == "lightgbm":
        clf = lightgbm_classifier(seed)
        return Pipeline([("features", tabular_preprocessor(False, spec)), ("model", clf)])
    raise ConfigError(f"unknown baseline {name!r}; choose one of {list(BASELINE_NAMES)}")


def fit_baseline(
    name: BaselineName, train_df: pd.DataFrame, seed: int = 42, spec: DatasetSpec | str | None = None
) -> Pipeline:
    """Fit a baseline on the spec's features of `train_df` (labels from `default` or the target)."""
    spec = load_spec(spec)
    pipeline = build_baseline(name, seed=seed, spec=spec)
    x = classical_feature_frame(train_df, spec)
    y = default_target(train_df, spec)
    if len(np.unique(y)) < 2:
        raise ConfigError(
            f"baseline {name}: training data has a single class; need defaults and non-defaults"
        )
    pipeline.fit(x, y)
    pipeline.dataset_spec = spec  # type: ignore[attr-defined]  # predict_default reads the same features
    return pipeline


def predict_default(model: Pipeline, df: pd.DataFrame, spec: DatasetSpec | str | None = None) -> np.ndarray:
    """P(default) for each row of `df`, as a float array (features of the spec it was fitted on)."""
    spec = load_spec(spec if spec is not None else getattr(model, "dataset_spec", None))
    proba = model.predict_proba(classical_feature_frame(df, spec))
    classes = list(model.classes_)
    return proba[:, classes.index(1)].astype(float)


def score_baselines(
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    test_df: pd.DataFrame,
    names: Sequence[BaselineName] = ("logistic", "lightgbm"),
    *,
    seed: int = 42,
    spec: DatasetSpec | str | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fit each baseline on train once; its (validation, test) probabilities of default."""
    spec = load_spec(spec)
    unknown = [n for n in names if n not in BASELINE_NAMES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; choose from {list(BASELINE_NAMES)}")
    scores = {}
    for name in names:
        model = fit_baseline(name, train_df, seed=seed, spec=spec)
        scores[name] = (predict_default(model, val_df, spec), predict_default(model, test_df, spec))
    return scores

