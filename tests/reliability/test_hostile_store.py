"""A tampered MLflow store (issue 20 §5): what `mlflow.pyfunc.load_model` would run is checked.

MLflow runs the store's copy of a version's entry file, and an `MLmodel` edited to a pickle
loader unpickles whatever file it names. Both are tried here against a registered version: the
pickle is refused by `MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false` (set by `risk_app.registry`
unless the user set it), and `risk_app.registry.pyfunc_load.load_pyfunc` refuses a changed
entry file or MLmodel before MLflow runs anything.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import mlflow
import pytest
import yaml

from risk_app.registry.cache import evict_cached_version
from risk_app.registry.pyfunc_load import TamperedModelError, load_pyfunc
from tests.reliability.conftest import child_env
from tests.reliability.test_registry_faults import NAME, _register

pytestmark = pytest.mark.usefixtures("mlflow_store")


class _Planted:
    """Unpickling this writes a marker file: the stand-in for any payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _stored_model(home: Path) -> tuple[str, Path]:
    version = _register(home, "run-1", 0.7)
    [mlmodel] = list((home / "mlflow" / "artifacts").rglob("MLmodel"))
    return version, mlmodel.parent


def _plant_pickle(root: Path, marker: Path) -> None:
    """Edit the stored MLmodel to the cloudpickle loader and plant the payload it names."""
    (root / "python_model.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    pyfunc.pop("model_code_path")
    pyfunc.update(loader_module="mlflow.pyfunc.model", python_model="python_model.pkl")
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def test_an_mlmodel_edited_to_a_pickle_loader_is_not_unpickled(risk_app_home: Path) -> None:
    import subprocess
    import sys

    version, root = _stored_model(risk_app_home)
    marker = risk_app_home / "pwned"
    _plant_pickle(root, marker)
    code = f"""
import risk_app.registry  # what every risk_app entry point imports before mlflow loads anything
import mlflow
from risk_app.registry import mlflow_registry
mlflow_registry.configure_mlflow()
try:
    mlflow.pyfunc.load_model("models:/{NAME}/{version}")
except Exception as exc:
    print("refused:", " ".join(str(exc).split())[:200])
"""
    env = child_env(risk_app_home)
    env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "the planted pickle ran"
    assert "refused: Deserializing model using pickle is disallowed" in out.stdout, out.stderr[-2000:]

    # The checked loader refuses it before MLflow reads it, whatever the environment says.
    with pytest.raises(TamperedModelError, match="not risk_app's models-from-code loader"):
        load_pyfunc(version, name=NAME)
    assert not marker.exists()


def test_a_changed_entry_file_in_the_store_is_refused_before_it_runs(
    risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scoring.doubles import german_credit, install_double_loader

    version, root = _stored_model(risk_app_home)
    install_double_loader(monkeypatch)
    rows = german_credit().head(5).drop(columns=["source_row", "default", "creditability"], errors="ignore")
    assert load_pyfunc(version, name=NAME).predict(rows)["probability_of_default"].between(0, 1).all()

    marker = risk_app_home / "ran"
    payload = f"open({str(marker)!r}, 'w').write('x')\n"
    # The local copy that was verified and loaded above, changed since: refused.
    [cached] = list((risk_app_home / "mlflow" / "cache").rglob("pyfunc_entry.py"))
    cached.write_text(payload + cached.read_text())
    with pytest.raises(TamperedModelError, match=r"pyfunc_entry.py: sha256 .* was changed"):
        load_pyfunc(version, name=NAME)
    # The store's copy changed before any download: refused as well.
    evict_cached_version(NAME, version)
    entry = root / "pyfunc_entry.py"
    entry.write_text(payload + entry.read_text())
    with pytest.raises(TamperedModelError, match=r"pyfunc_entry.py: sha256 .* was changed"):
        load_pyfunc(version, name=NAME)
    assert not marker.exists()
    # What the check stands in front of: MLflow itself runs the changed file.
    mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    assert marker.exists()


def test_extra_code_paths_in_mlmodel_are_refused(risk_app_home: Path) -> None:
    version, root = _stored_model(risk_app_home)
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["code"] = "code"  # a planted risk_app/ shadowing ours
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(TamperedModelError, match="adds code paths"):
        load_pyfunc(version, name=NAME)
