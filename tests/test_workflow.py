"""The out-of-time split, from the library and from `risk-app train --split out_of_time`:
`risk_app.data.examples.PreparationConfig` is the one description of how examples are split
(the Dagster launchpad's `training_examples` config is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from risk_app import workflow
from risk_app.cli.main import app
from risk_app.data.examples import PreparationConfig, prepare_training_examples
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from tests.datasets.test_own_loan_book import SPEC, lender_file

runner = CliRunner()


@pytest.fixture
def lender(tmp_path: Path) -> tuple[Path, Path]:
    """A dated data set (acme_loans: 240 applications, one every 2 days from 2023-01-01)."""
    spec_path, data_path = tmp_path / "acme.yaml", tmp_path / "acme.csv"
    spec_path.write_text(SPEC)
    lender_file().to_csv(data_path, index=False)
    return spec_path, data_path


def _months(examples: pd.DataFrame, valid: pd.DataFrame, split: str) -> list[str]:
    dates = pd.to_datetime(valid.set_index("application_id").loc[examples["application_id"], "applied_on"])
    return sorted(set(dates[(examples["split"] == split).to_numpy()].dt.strftime("%Y-%m")))


def test_out_of_time_tests_on_the_newest_month_and_validates_on_the_one_before(
    lender: tuple[Path, Path],
) -> None:
    spec = load_spec(lender[0])
    valid = validate_applications(lender_file(), "acme.csv", spec=spec).valid
    newest = sorted(set(pd.to_datetime(valid["applied_on"]).dt.strftime("%Y-%m")))
    examples = prepare_training_examples(valid, PreparationConfig(split="out_of_time"), spec=spec)
    assert _months(examples, valid, "test") == newest[-1:]
    assert _months(examples, valid, "validation") == newest[-2:-1]
    assert _months(examples, valid, "train") == newest[:-2]
    # The fractions instead: 70 % of the rows, oldest first, whatever the months.
    cut = prepare_training_examples(
        valid, PreparationConfig(split="out_of_time", test_on="fractions"), spec=spec
    )
    assert (cut["split"] == "train").sum() == 168
    # The CLI's and tests' shorthand is the same function.
    same = workflow.prepare_examples(valid, spec=spec, split="out_of_time")
    assert same["split"].tolist() == examples["split"].tolist()


def test_an_undated_data_set_cannot_be_split_out_of_time() -> None:
    spec = load_spec("german_credit")
    valid = workflow.ingest_and_validate(spec.data_path, spec=spec).valid.head(60)
    with pytest.raises(
        ConfigError, match="out-of-time split needs the date column of data set german_credit"
    ):
        prepare_training_examples(valid, PreparationConfig(split="out_of_time"), spec=spec)


def test_risk_app_train_splits_out_of_time(
    lender: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: dict[str, Any] = {}

    def capture(valid: pd.DataFrame, examples: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        handed.update(valid=valid, examples=examples, **kwargs)
        raise RiskAppError("stopped before fine-tuning")

    monkeypatch.setattr(workflow, "train_run", capture)
    spec_path, data_path = lender
    args = ["train", "--dataset", str(spec_path), "--data", str(data_path), "--split", "out_of_time"]
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 2 and "stopped before fine-tuning" in result.output, result.output
    examples, valid = handed["examples"], handed["valid"]
    newest = sorted(set(pd.to_datetime(valid["applied_on"]).dt.strftime("%Y-%m")))
    assert _months(examples, valid, "test") == newest[-1:]
    assert _months(examples, valid, "validation") == newest[-2:-1]
    assert handed["source"] == str(data_path)


def test_risk_app_train_refuses_out_of_time_without_a_date_column() -> None:
    result = runner.invoke(
        app, ["train", "--dataset", "german_credit", "--split", "out_of_time"], terminal_width=300
    )
    assert result.exit_code == 2
    assert "out-of-time split needs the date column of data set german_credit" in " ".join(
        result.output.split()
    )
