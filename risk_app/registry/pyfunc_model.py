"""The MLflow face of a risk_app artifact: a models-from-code pyfunc, and what is logged with it.

`RiskModelPyfunc` turns an artifact folder into DataFrame in, P(default) out. It is never
pickled: `log_run_contents` logs `pyfunc_entry.py` as the model's code, and MLflow rebuilds the
model on load by running that file, which calls `load_context` -> `artifact.load_risk_model`
(weights checksum and base-model pins verified).
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from data_contracts.spec import load_spec
from risk_app.registry.artifact import SPEC_FILE, load_risk_model

PYFUNC_ARTIFACT_KEY = "risk_model"
PYFUNC_ENTRY = Path(__file__).with_name("pyfunc_entry.py")
_PARAM_BATCH = 100  # MLflow logs at most 100 params per call


class RiskModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a risk_app artifact folder: DataFrame in, P(default) out."""

    def load_context(self, context: Any) -> None:
        self._risk_model = load_risk_model(context.artifacts[PYFUNC_ARTIFACT_KEY])

    # The DataFrame hint tells MLflow to pass frames through as they are; the column schema
    # comes from the explicit signature given at logging time.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        p_default = self._risk_model.predict_proba(frame)
        return pd.DataFrame({"probability_of_default": [float(p) for p in p_default]}, index=frame.index)


# MLflow column types for the spec's column types: floats are floats, integers longs.
_MLFLOW_TYPES = {
    "integer": "long", "float": "double", "category": "string", "boolean": "boolean",
    "date": "datetime", "text": "string",
}  # fmt: skip


def _input_signature(folder: Path) -> ModelSignature:
    """The input columns of the data set the artifact was trained on, typed from its spec.

    The id is optional so users can score bare feature rows; nullable columns are optional;
    extra columns are ignored by MLflow with a warning."""
    spec = load_spec(folder / SPEC_FILE if (folder / SPEC_FILE).is_file() else None)
    columns = [ColSpec("string", spec.id_column, required=False)]
    for name in spec.feature_columns:
        column = spec.columns[name]
        columns.append(ColSpec(_MLFLOW_TYPES[column.type], name, required=not column.nullable))
    return ModelSignature(
        inputs=Schema(columns), outputs=Schema([ColSpec("double", "probability_of_default")])
    )


def _pip_requirements() -> list[str]:
    # An explicit short list: MLflow's requirement inference imports and times the model (slow).
    pins = []
    # lightgbm and scikit-learn: a hybrid artifact scores its tabular half with them.
    dists = ("mlflow", "pandas", "torch", "transformers", "peft", "safetensors", "lightgbm", "scikit-learn")
    for dist in dists:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def log_run_contents(
    folder: Path,
    flat_params: Mapping[str, str],
    numeric: Mapping[str, float],
    all_tags: Mapping[str, str],
    extras: Sequence[Path],
) -> str:
    """Params, metrics, tags, the models-from-code pyfunc and report files, into the active run.

    Returns the logged model's URI."""
    items = list(flat_params.items())
    for start in range(0, len(items), _PARAM_BATCH):
        mlflow.log_params(dict(items[start : start + _PARAM_BATCH]))
    if numeric:
        mlflow.log_metrics(dict(numeric))
    if all_tags:
        mlflow.set_tags(dict(all_tags))
    with warnings.catch_warnings():
        # An input example would make MLflow load and run the model at logging time.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        # Models from code: MLflow stores the entry file, not a pickle of the model object, and
        # rebuilds the model by running it (loading never unpickles).
        model_info = mlflow.pyfunc.log_model(
            name="risk_model",
            python_model=str(PYFUNC_ENTRY),
            artifacts={PYFUNC_ARTIFACT_KEY: str(folder)},
            signature=_input_signature(folder),
            pip_requirements=_pip_requirements(),
            infer_code_paths=False,
        )
    for extra in extras:
        if extra.is_dir():
            mlflow.log_artifacts(str(extra), artifact_path=f"report/{extra.name}")
        else:
            mlflow.log_artifact(str(extra), artifact_path="report")
    return model_info.model_uri
