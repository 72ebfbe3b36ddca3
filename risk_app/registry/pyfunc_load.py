"""Load a registered version as an MLflow pyfunc, with what MLflow will run checked first.

`mlflow.pyfunc.load_model` runs the store's copy of the model's entry file (models from code),
so whoever can write the artifact store can run code in the loading process; an `MLmodel`
edited to a pickle loader unpickles a planted file (refused since `risk_app.registry` sets
`MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`). `load_pyfunc` resolves a version through the
verified cache (`risk_app.registry.cache`: weights sha256) and, before handing the folder to
MLflow, checks that its `MLmodel` is the one risk_app writes (the models-from-code loader, no
pickled model, no extra code paths) and that the entry file is byte for byte risk_app's own
`pyfunc_entry.py` (sha256). risk_app's own scoring never goes through pyfunc (it loads the
artifact folder directly); this is the door for notebooks and other MLflow users.

    from risk_app.registry.pyfunc_load import load_pyfunc
    model = load_pyfunc("champion", name="german_credit")
    model.predict(applications_df)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import yaml

from risk_app.errors import RiskAppError
from risk_app.registry.mlflow_resolve import resolve_model
from risk_app.registry.mlflow_store import DEFAULT_MODEL_NAME
from risk_app.registry.pyfunc_model import PYFUNC_ENTRY
from risk_app.storage.hashing import sha256_file

CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"


class TamperedModelError(RiskAppError):
    """A registered version whose MLmodel or entry file is not what risk_app wrote."""


def pyfunc_problem(root: Path) -> str | None:
    """Why the pyfunc folder `root` must not be loaded, or None when it is risk_app's own."""
    try:
        mlmodel = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return f"{root / 'MLmodel'}: unreadable ({' '.join(str(exc).split())})"
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    if not isinstance(pyfunc, dict):
        return f"{root / 'MLmodel'}: no python_function flavor"
    if pyfunc.get("loader_module") != CODE_MODEL_LOADER or "python_model" in pyfunc:
        return (
            f"{root / 'MLmodel'}: loader {pyfunc.get('loader_module')!r} is not risk_app's models-from-code "
            f"loader ({CODE_MODEL_LOADER}); loading it could unpickle or import planted code"
        )
    if pyfunc.get("code"):
        return f"{root / 'MLmodel'}: adds code paths {pyfunc['code']!r} to the import path"
    entry = root / Path(str(pyfunc.get("model_code_path", ""))).name
    if entry.name != PYFUNC_ENTRY.name or not entry.is_file():
        return f"{root / 'MLmodel'}: entry file {entry.name!r} is not risk_app's {PYFUNC_ENTRY.name}"
    actual, expected = sha256_file(entry), sha256_file(PYFUNC_ENTRY)
    if actual != expected:
        return (
            f"{entry}: sha256 {actual[:16]}..., expected {expected[:16]}... (risk_app's own "
            f"{PYFUNC_ENTRY.name}); the store's copy of the code MLflow would run was changed"
        )
    return None


def load_pyfunc(ref: str | int = "champion", name: str = DEFAULT_MODEL_NAME) -> Any:
    """The MLflow pyfunc of registered version `ref` (alias or number) of model `name`, loaded
    only after its weights, MLmodel and entry file passed their checks; else `TamperedModelError`."""
    resolved = resolve_model(str(ref), name=name)
    if not resolved.name:
        raise RiskAppError(
            f"{ref}: a local folder, not a registered version; load it with "
            "risk_app.scoring.service.load_model"
        )
    root = resolved.local_artifact_dir.parent.parent  # <model>/artifacts/<artifact folder>
    problem = pyfunc_problem(root)
    if problem is not None:
        raise TamperedModelError(f"model {name!r} v{resolved.version}: {problem}; not loaded")
    return mlflow.pyfunc.load_model(str(root))


__all__ = ["TamperedModelError", "load_pyfunc", "pyfunc_problem"]
