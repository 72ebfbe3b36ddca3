"""Scoring records that lied (issue 20 §5): a second model's scores under the first's ledger
row, and the same applications recorded twice without a word.

* Scoring the same file with a second model and `--overwrite` replaced the output file the
  first model's ledger row points at. Outputs now carry the model version in their name, and the
  ledger refuses a row whose output file is another (batch, model) row's.
* The same applications re-exported with one byte different are a new batch (batches are keyed
  by bytes, and stay so); now the record, the CLI and a Dagster check say so loudly when most
  ids were already scored by the same model.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from typer.testing import CliRunner

from risk_app.cli.main import app
from risk_app.scoring.staged import score_and_record
from risk_app.storage.scores import OutputOwnedError, file_batch_id, scoring_ledger
from tests.reliability.conftest import applications


def _model(double_model: Path, version: str = "double-v1"):  # noqa: ANN202
    from tests.scoring.doubles import load_double_artifact

    model = load_double_artifact(double_model)
    model.version = version
    return model


def _ledger_rows_point_at_their_own_scores() -> None:
    """Every ledger row's output file holds scores of that row's model, as many as it counted."""
    for row in scoring_ledger().itertuples(index=False):
        scores = pd.read_parquet(row.output_path)
        assert set(scores["model_version"]) == {row.model_version}, row.output_path
        assert len(scores) == row.n_scored


@pytest.fixture
def batch(risk_app_home: Path) -> Path:
    frame = applications(30, seed=4)
    frame.insert(0, "application_id", [f"A-{i:04d}" for i in range(len(frame))])
    path = risk_app_home / "batch_A.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_second_model_with_overwrite_never_replaces_the_first_models_output(
    batch: Path, double_model: Path
) -> None:
    first = score_and_record(batch, risk_model=_model(double_model), reasons=0)
    before = Path(first.output_path).read_bytes()
    second = score_and_record(batch, risk_model=_model(double_model, "double-v2"), reasons=0, overwrite=True)
    assert second.record.status == "appended"
    assert Path(first.output_path).read_bytes() == before
    assert "double-v1" in Path(first.output_path).name and "double-v2" in Path(second.output_path).name
    assert len(scoring_ledger()) == 2
    _ledger_rows_point_at_their_own_scores()


def test_an_explicit_output_of_another_model_or_batch_is_refused_even_with_overwrite(
    batch: Path, double_model: Path, risk_app_home: Path
) -> None:
    out = risk_app_home / "scores.parquet"
    score_and_record(batch, out, risk_model=_model(double_model), reasons=0)
    before = out.read_bytes()
    with pytest.raises(OutputOwnedError, match=r"holds the scores of batch .* by model double-v1"):
        score_and_record(batch, out, risk_model=_model(double_model, "double-v2"), reasons=0, overwrite=True)
    other = risk_app_home / "batch_B.csv"
    applications(10, seed=9).to_csv(other, index=False)
    with pytest.raises(OutputOwnedError, match="must go to another file"):
        score_and_record(other, out, risk_model=_model(double_model), reasons=0, overwrite=True)
    assert out.read_bytes() == before
    assert len(scoring_ledger()) == 1
    _ledger_rows_point_at_their_own_scores()
    # The same batch and model again with overwrite is its own row: allowed, still one row.
    again = score_and_record(batch, out, risk_model=_model(double_model), reasons=0, overwrite=True)
    assert again.record.status == "already_recorded" and len(scoring_ledger()) == 1


def _crlf_copy(path: Path, name: str) -> Path:
    copy = path.with_name(name)
    copy.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return copy


def test_a_re_export_with_other_bytes_is_a_new_batch_and_says_so_loudly(
    batch: Path, double_model: Path
) -> None:
    first = score_and_record(batch, risk_model=_model(double_model), reasons=0)
    assert not first.record.mostly_rescored and first.record.rescored_ids == 0
    copy = _crlf_copy(batch, "batch_A_crlf.csv")
    again = score_and_record(copy, risk_model=_model(double_model), reasons=0)
    assert again.batch_id != first.batch_id and again.record.status == "appended"  # keyed by bytes
    assert again.record.mostly_rescored and again.record.rescored_ids == 30
    assert f"WARNING: 30 of 30 application ids (100%) of batch {again.batch_id[:12]}" in again.summary()
    assert f"already scored by model double-v1 in batch {first.batch_id[:12]}" in again.summary()
    # Another model scoring the re-export is not a repeat of its own work.
    other = score_and_record(batch, risk_model=_model(double_model, "double-v2"), reasons=0)
    assert other.record.rescored_ids == 0 and not other.record.mostly_rescored


def test_the_cli_prints_the_warning(
    batch: Path, double_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scoring.doubles import install_double_loader

    install_double_loader(monkeypatch)
    runner = CliRunner()
    args = ["score", "--model", str(double_model), "--reasons", "0", "-i"]
    assert runner.invoke(app, [*args, str(batch)]).exit_code == 0
    result = runner.invoke(app, [*args, str(_crlf_copy(batch, "again.csv"))], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "WARNING: 30 of 30 application ids (100%)" in " ".join(result.output.split())


def test_the_dagster_check_warns_on_a_re_exported_partition(
    batch: Path, double_model: Path, risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.assets.scoring import landing_files, landing_partition_key
    from tests.reliability.test_landing_faults import _materialize
    from tests.scoring.doubles import install_double_loader

    install_double_loader(monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    results = {}
    for source in (batch, _crlf_copy(batch, "batch_A_again.csv")):
        key = landing_partition_key(source.name, file_batch_id(source))
        instance.add_dynamic_partitions(landing_files.name, [key])
        result = _materialize(instance, key, source, file_batch_id(source), double_model)
        assert result.success
        [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "scoring_rescored_ids"]
        results[source.name] = check
    assert results["batch_A.csv"].passed
    warned = results["batch_A_again.csv"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "30 of 30 application ids" in warned.description
    assert warned.metadata["ids_already_scored"].value == 30
