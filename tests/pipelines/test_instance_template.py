"""The Dagster instance template (issue 21 §6, noise): `dagster dev` run from the repo root, as the
README says, finds no dagster.yaml there to warn about, and the UI opens without the "Join the
Dagster community" dialog."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from risk_app import paths

TEMPLATE = paths.REPO_ROOT / "pipelines" / "dagster.yaml"


def test_no_instance_file_where_dagster_dev_starts() -> None:
    # dagster dev warns about a dagster.yaml in its working folder that is not $DAGSTER_HOME's.
    assert TEMPLATE.is_file()
    assert not (paths.REPO_ROOT / "dagster.yaml").exists() and not (paths.REPO_ROOT / "dagster.yml").exists()


def test_template_is_a_valid_instance_without_the_signup_dialog(tmp_path: Path) -> None:
    shutil.copyfile(TEMPLATE, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.nux_enabled is False  # the UI's shouldShowNux reads this
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
