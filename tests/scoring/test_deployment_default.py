"""Scoring without a named data set uses the deployment's default, in the library as in the CLI.

`risk-app score` without --dataset scored with the registered model of `$RISK_APP_DATASET`,
while `score_and_record(spec=None)` loaded the built-in default whatever the deployment said;
both now resolve it through `data_contracts.spec.deployment_spec`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import DATASET_ENV, DEFAULT_DATASET, deployment_spec, load_spec
from risk_app.errors import RiskAppError
from risk_app.scoring.staged import score_and_record


def test_the_deployments_default_is_the_data_set_of_a_call_that_names_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DATASET_ENV, raising=False)
    assert deployment_spec(None).name == deployment_spec("").name == DEFAULT_DATASET
    monkeypatch.setenv(DATASET_ENV, "uci_credit_card")
    assert deployment_spec(None).name == "uci_credit_card"
    assert deployment_spec("german_credit").name == "german_credit"  # a named one wins
    assert load_spec(None).name == DEFAULT_DATASET  # the built-in default stays what it is


def test_library_scoring_without_a_spec_asks_for_the_deployments_registered_model(
    risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).head(3).to_csv(apps, index=False)
    monkeypatch.setenv(DATASET_ENV, "uci_credit_card")
    with pytest.raises(RiskAppError, match="no registered model named 'uci_credit_card'"):
        score_and_record(apps)
