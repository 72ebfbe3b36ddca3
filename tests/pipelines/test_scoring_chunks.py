"""The Dagster scoring partition streams: a file scored in several chunks gives what one chunk
gives (scores, quarantine with file, row and field, counts, metadata, drift verdict), the batch
is recorded once, and nothing but small descriptions passes between the steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets.data import dataset_spec
from pipelines.assets.scoring import landing_files, scored_applications, scoring_batch
from pipelines.resources import build_resources
from risk_app.paths import DEFAULT_DATASET
from risk_app.scoring.staged import StagedBatch, StagedScoring, stage_root
from risk_app.storage.scores import file_batch_id, scoring_ledger
from risk_app.storage.warehouse import query
from tests.scoring.doubles import install_double_loader, save_double_artifact
from tests.storage.rows import scored_rows_per_batch

N_ROWS = 30
KEY = "batch.csv-000000000000"


@pytest.fixture
def batch_file(risk_app_home: Path) -> Path:
    """30 applications with ids; row 26 has a bad duration, row 28 repeats the id of row 4
    (a row of the first chunk when read 7 at a time)."""
    raw = pd.read_csv(DEFAULT_DATASET, dtype=str).head(N_ROWS).drop(columns=["creditability"])
    raw.insert(0, "application_id", [f"id-{i}" for i in range(N_ROWS)])
    raw.loc[25, "duration_in_month"] = "abc"
    raw.loc[27, "application_id"] = "id-3"
    path = risk_app_home / "landing" / "batch.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False)
    return path


def _score(
    instance: dg.DagsterInstance, source: Path, output: Path, model: Path, **input_config: Any
) -> dg.ExecuteInProcessResult:
    run_config = {
        "ops": {
            "scoring_batch": {"config": {"input_path": str(source), **input_config}},
            "scored_applications": {
                "config": {"output_path": str(output), "model": str(model), "reason_codes": 0}
            },
        }
    }
    return dg.materialize(
        [dataset_spec, scoring_batch, scored_applications],
        partition_key=KEY,
        run_config=run_config,
        resources=build_resources(),
        instance=instance,
    )


def test_a_partition_scored_in_chunks_equals_one_chunk(
    batch_file: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_double_loader(monkeypatch)
    model = save_double_artifact(risk_app_home / "double", version="dbl-1", threshold=0.4)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, [KEY])
    runs = {}
    for name, config in (("whole", {}), ("chunked", {"chunk_rows": 7})):
        output = risk_app_home / "outputs" / name / "scores.parquet"
        result = _score(instance, batch_file, output, model, **config)
        staged = result.output_for_node("scoring_batch", "batch_to_score")
        scored = result.output_for_node("scored_applications")
        # What passed between the steps and out of them is a description, not the rows.
        assert isinstance(staged, StagedBatch) and isinstance(scored, StagedScoring)
        runs[name] = (result, staged, scored, output)

    (whole, whole_batch, whole_scored, whole_out), (chunked, chunked_batch, chunked_scored, chunked_out) = (
        runs["whole"], runs["chunked"],
    )  # fmt: skip
    assert (whole_batch.parts, chunked_batch.parts) == (1, 5)
    pd.testing.assert_frame_equal(
        pd.read_parquet(chunked_out).drop(columns="scored_at"),
        pd.read_parquet(whole_out).drop(columns="scored_at"),
    )
    quarantine = pd.read_parquet(chunked_scored.outcome.quarantine_path)
    pd.testing.assert_frame_equal(quarantine, pd.read_parquet(whole_scored.outcome.quarantine_path))
    # Bad rows are quarantined with file, row and field, the one in a later chunk included.
    found = set(zip(quarantine["row_number"], quarantine["column"], quarantine["check"], strict=True))
    assert (28, "application_id", "field_uniqueness") in found
    assert any(row == 26 and column == "duration_in_month" for row, column, _ in found)
    assert set(quarantine["source_file"]) == {str(batch_file)}

    # rows in = scored + quarantined, the same in the metadata of both runs.
    meta = {
        name: result.asset_materializations_for_node("scored_applications")[0].metadata
        for name, result in (("whole", whole), ("chunked", chunked))
    }
    for key in ("rows_in", "rows_scored", "rows_quarantined", "decline_rate", "mean_probability_of_default",
                "grades"):  # fmt: skip
        assert meta["chunked"][key] == meta["whole"][key], key
    # The sample table's rows (the metadata's "sample"), scored_at aside.
    heads = [s.summary.head.drop(columns="scored_at") for s in (whole_scored, chunked_scored)]
    pd.testing.assert_frame_equal(heads[1], heads[0])
    assert len(heads[0]) == 20
    assert (meta["chunked"]["rows_in"].value, meta["chunked"]["rows_scored"].value) == (30, 28)
    assert meta["chunked"]["rows_quarantined"].value == 2
    assert (meta["whole"]["chunks"].value, meta["chunked"]["chunks"].value) == (1, 5)
    checks = [
        [(e.check_name, e.passed, e.description) for e in r.get_asset_check_evaluations()]
        for r in (whole, chunked)
    ]
    assert checks[0] == checks[1] and checks[0][0][0] == "scoring_drift"

    # Recorded once: the re-run of the same batch replaced the first run's rows.
    ledger = scoring_ledger()
    assert ledger[["n_in", "n_scored", "n_quarantined", "partition_key"]].values.tolist() == [
        [30, 28, 2, KEY]
    ]
    assert scored_rows_per_batch() == {file_batch_id(batch_file): 28}
    bad = query('select row_number, "column", source_file from risk.scoring_quarantine order by row_number')
    assert bad["row_number"].tolist() == [26, 28] and set(bad["source_file"]) == {str(batch_file)}
    # The stage of each run is gone once its batch is published.
    assert list(stage_root().iterdir()) == []


def test_the_drift_check_says_when_it_judged_a_sample(
    batch_file: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_double_loader(monkeypatch)
    model = save_double_artifact(risk_app_home / "double", version="dbl-1")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, [KEY])
    run_config = {
        "ops": {
            "scoring_batch": {"config": {"input_path": str(batch_file), "chunk_rows": 4}},
            "scored_applications": {
                "config": {"model": str(model), "drift_sample_rows": 10, "reason_codes": 0}
            },
        }
    }
    result = dg.materialize(
        [dataset_spec, scoring_batch, scored_applications],
        partition_key=KEY, run_config=run_config, resources=build_resources(), instance=instance,
    )  # fmt: skip
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "scoring_drift"]
    assert check.description.startswith("Judged on a random sample of 10 of 28 scored rows.")
    assert (check.metadata["rows"].value, check.metadata["rows_scored"].value) == (10, 28)
    # No output_path: the batch-named default, with its quarantine beside it.
    outcome = result.output_for_node("scored_applications").outcome
    assert Path(outcome.output_path).parent == risk_app_home / "outputs"
    assert Path(outcome.quarantine_path).is_file() and len(pd.read_parquet(outcome.output_path)) == 28

    # The stage went with the run; scoring the partition again alone says what to do.
    alone = {"ops": {"scored_applications": run_config["ops"]["scored_applications"]}}
    again = dg.materialize(
        [dataset_spec, scoring_batch, scored_applications], selection=[scored_applications],
        partition_key=KEY, run_config=alone,
        resources=build_resources(), instance=instance, raise_on_error=False,
    )  # fmt: skip
    [failure] = [e for e in again.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "validate the file again (materialize scoring_batch" in failure.event_specific_data.error.message
