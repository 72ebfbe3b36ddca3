"""The Dagster instance template (issue 21 §6, noise): `dagster dev` started as the README says
(from $DAGSTER_HOME, `-d` back at the repo) finds the instance file it uses and warns about none,
and the UI opens without the "Join the Dagster community" dialog."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from risk_app import paths

TEMPLATE = paths.REPO_ROOT / "dagster.yaml"


def test_the_readme_starts_dagster_dev_where_its_instance_file_is() -> None:
    # dagster dev warns about a dagster.yaml in its working folder that is not $DAGSTER_HOME's:
    # the README's command starts it from $DAGSTER_HOME and points -d at the repo.
    assert TEMPLATE.is_file()
    readme = (paths.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "cd var/dagster_home && DAGSTER_HOME=$PWD" in readme
    assert "dagster dev -m pipelines.definitions -d ../.." in readme


def test_template_is_a_valid_instance_without_the_signup_dialog(tmp_path: Path) -> None:
    shutil.copyfile(TEMPLATE, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.nux_enabled is False  # the UI's shouldShowNux reads this
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
