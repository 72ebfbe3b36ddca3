"""A drifted scoring batch is held (issue 21 §3): the run fails with the drift sentence, the
batch is recorded as held and stays out of the labeled book until an analyst releases it."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.assets.data import dataset_spec
from pipelines.assets.scoring import landing_files, scored_applications, scoring_batch
from pipelines.jobs import release_scoring_batch_job
from pipelines.resources import RiskAppSettings, build_resources
from risk_app.cli.main import app
from risk_app.data.validate import validate_applications
from risk_app.outcomes.book import book_counts, labeled_book
from risk_app.paths import DEFAULT_DATASET
from risk_app.storage.holds import held_batches
from risk_app.storage.scores import file_batch_id
from tests.scoring.doubles import install_double_loader, load_double_artifact, save_double_artifact

KEY = "drifted.csv-000000000000"


def validated(raw: pd.DataFrame) -> pd.DataFrame:
    """Typed rows as the scorer sees them."""
    frame = raw.assign(application_id=[f"ref-{i}" for i in range(len(raw))])
    return validate_applications(frame, source="reference.csv", spec=load_spec("german_credit")).valid


@pytest.fixture
def drifted_file(risk_app_home: Path) -> Path:
    """The 250 longest loans of German credit: a population the model saw little of."""
    raw = pd.read_csv(DEFAULT_DATASET, dtype=str).drop(columns=["creditability"])
    raw = raw.assign(_d=raw["duration_in_month"].astype(int)).sort_values("_d", ascending=False).head(250)
    raw = raw.drop(columns="_d").reset_index(drop=True)
    raw.insert(0, "application_id", [f"id-{i}" for i in range(len(raw))])
    path = risk_app_home / "landing" / "drifted.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False)
    return path


def test_a_drifted_batch_is_held_until_released_with_a_reason(
    drifted_file: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_double_loader(monkeypatch)
    model = save_double_artifact(risk_app_home / "double", version="dbl-1", threshold=0.4)
    # The training population's scores, which the drift check compares each batch's with.
    every = pd.read_csv(DEFAULT_DATASET, dtype=str)
    meta = json.loads((model / "risk_model.json").read_text())
    reference = load_double_artifact(model).predict_proba(validated(every)).tolist()
    (model / "risk_model.json").write_text(json.dumps({**meta, "extra": {"reference_scores": reference}}))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, [KEY])
    settings = RiskAppSettings(drift_min_rows=50, drift_fail_psi=0.15, benchmark_margin=None)
    resources = {**build_resources(), "settings": settings}
    run_config = {
        "ops": {
            "scoring_batch": {"config": {"input_path": str(drifted_file)}},
            "scored_applications": {"config": {"model": str(model), "reason_codes": 0}},
        }
    }
    result = dg.materialize(
        [dataset_spec, scoring_batch, scored_applications], partition_key=KEY, run_config=run_config,
        resources=resources, instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "scoring_drift"]
    assert not check.passed
    # The run's failure is the drift sentence, not Dagster's generic check-failed error.
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert check.description in message and "is held" in message
    assert "DagsterAssetCheckFailedError" not in message

    batch_id = file_batch_id(drifted_file)
    held = held_batches()
    assert held["batch_id"].tolist() == [batch_id] and held["reason"].iloc[0] == check.description
    assert book_counts(labeled_book("german_credit"))["scored"] == 0  # not in the book

    # Releasing needs a reason; the CLI says so in one sentence.
    runner = CliRunner()
    short = runner.invoke(app, ["scoring", "release", batch_id[:12], "--reason", "ok"])
    assert short.exit_code == 2 and "needs a reason" in short.output
    listed = runner.invoke(app, ["scoring", "held"])
    assert listed.exit_code == 0 and batch_id[:12] in listed.output

    reason = "long loans: the new product, agreed with credit policy"
    released = release_scoring_batch_job.execute_in_process(
        run_config={
            "ops": {"release_scoring_batch": {"config": {"batch_id": batch_id[:12], "reason": reason}}}
        },
        resources={"fs_io_manager": build_resources()["fs_io_manager"]},
        instance=instance,
    )
    assert released.success
    assert held_batches().empty
    record = held_batches(include_released=True)
    assert record["release_reason"].tolist() == [reason]
    assert book_counts(labeled_book("german_credit"))["scored"] == 250
    again = runner.invoke(app, ["scoring", "release", batch_id[:12], "--reason", reason])
    assert again.exit_code == 2 and "already released" in again.output
