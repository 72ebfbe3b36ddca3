"""Asset checks block or warn when they should: quarantine rate, drift, promotion."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.assets import dataset_spec, raw_applications, training_examples, validated_applications
from pipelines.checks import contract_passes, promotion_rule, quarantine_rate_below_threshold
from pipelines.resources import RiskAppSettings, build_resources
from risk_app import workflow


def _file_with_bad_rows(home: Path, n_bad: int) -> Path:
    frame = pd.read_csv(load_spec("german_credit").data_path).head(100)
    frame.loc[: n_bad - 1, "duration_in_month"] = 0  # out of the contract's 1-120 range
    path = home / "apps.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("n_bad", "passes"), [(2, True), (10, False)])
def test_quarantine_rate_check_blocks_downstream(risk_app_home: Path, n_bad: int, passes: bool) -> None:
    path = _file_with_bad_rows(risk_app_home, n_bad)
    result = dg.materialize(
        [
            dataset_spec,
            raw_applications,
            validated_applications,
            training_examples,
            contract_passes,
            quarantine_rate_below_threshold,
        ],
        run_config={"ops": {"raw_applications": {"config": {"path": str(path)}}}},
        resources=build_resources(),
        raise_on_error=False,
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["quarantine_rate_below_threshold"].passed is passes
    assert checks["quarantine_rate_below_threshold"].metadata["quarantine_rate"].value == pytest.approx(
        n_bad / 100
    )
    assert checks["contract_passes"].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Blocking: a failed quarantine check stops the run before the data reaches training.
    assert ("training_examples" in materialized) is passes
    # A refused file is an expected outcome: the run's failure is the check's own sentence, not
    # Dagster's generic "1 blocking asset check failed with ERROR severity".
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    if passes:
        assert result.success and not failures
    else:
        [message] = failures
        sentence = checks["quarantine_rate_below_threshold"].description
        assert sentence.startswith("10 of 100 rows quarantined (10.0%), at or above the limit of 5.0%")
        assert message.strip() == f"dagster._core.definitions.events.Failure: {sentence}"


def _registered(version: int, promote: bool, reason: str):  # noqa: ANN202
    from risk_app.registry.promotion import PromotionDecision
    from risk_app.run.record import DatasetFacts, RegistrationFacts, RunRecord

    dataset = DatasetFacts(name="german_credit", spec_version="1", data_hash="x", rows={"train": 1})
    decision = PromotionDecision(promote=promote, reason=reason)
    registration = RegistrationFacts(model_name="m", version=version, mlflow_run_id="r", decision=decision)
    return RunRecord(run_id="r", run_dir="/tmp/r", dataset=dataset, registration=registration)


def test_promotion_check_passes_only_a_winning_challenger() -> None:
    won = _registered(2, True, "beats champion")
    lost = _registered(3, False, "roc_auc 0.70 vs 0.72")
    assert promotion_rule(won).passed
    verdict = promotion_rule(lost)
    # A rejected challenger warns; it does not turn the run red (champion_model keeps the champion).
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    assert "0.70" in verdict.description


@pytest.mark.slow  # slow: scheduled first (tests/conftest.py)
def test_drift_check_speaks_plainly_and_fails_only_on_real_drift() -> None:
    from types import SimpleNamespace

    from pipelines.assets.scoring import drift_result
    from risk_app.scoring.summary import model_drift

    def drift_check(
        applications: pd.DataFrame, scored: pd.DataFrame, model: object, settings: RiskAppSettings
    ) -> dg.AssetCheckResult:
        """What scored_applications does with its batch's sample: the drift report, as the check."""
        report = model_drift(
            model, applications, scored["probability_of_default"].to_numpy(), settings.drift_thresholds()
        )
        return drift_result(report, of_rows=len(applications))

    spec = load_spec("german_credit")
    train = workflow.ingest_and_validate(spec.data_path, spec=spec).valid
    model = SimpleNamespace(
        metadata={"extra": {"reference_scores": []}}, dataset_spec=spec, reference_features=lambda: train
    )
    scored = pd.DataFrame({"probability_of_default": [0.3] * 300})
    settings = RiskAppSettings(drift_min_rows=100)
    same = drift_check(train.sample(300, random_state=0), scored, model, settings)
    assert same.passed and same.description.startswith("No drift beyond chance")
    shifted = train.sample(300, random_state=0).copy()
    shifted["credit_amount"] = shifted["credit_amount"] * 4
    verdict = drift_check(shifted, scored, model, settings)
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
    assert "credit_amount" in verdict.description
    few = drift_check(train.head(60), scored.head(60), model, RiskAppSettings())
    assert not few.passed and few.severity == dg.AssetCheckSeverity.WARN and "Too few rows" in few.description


def test_unusable_file_fails_the_run_with_one_clear_message(risk_app_home: Path) -> None:
    path = risk_app_home / "loans.xlsx"
    path.write_text("not a table")
    result = dg.materialize(
        [dataset_spec, raw_applications],
        run_config={"ops": {"raw_applications": {"config": {"path": str(path)}}}},
        resources=build_resources(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert str(path) in message and ".csv" in message
    assert "Traceback" not in message
