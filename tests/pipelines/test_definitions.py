"""The Dagster definitions load, expose every stage, and the landing-folder sensor works."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pydantic import ValidationError

from pipelines.definitions import defs
from pipelines.sensors import landing_folder_sensor

EXPECTED_ASSETS = {
    "dataset_spec", "credit_policy", "packaged_model", "model_comparison", "raw_applications",
    "valid_applications", "quarantined_applications", "training_examples",
    "augmented_training_examples", "fine_tuned_model", "model_evaluation", "registered_model",
    "champion_model", "batch_to_score", "scoring_quarantine", "scored_applications",
}  # fmt: skip


def test_definitions_load_with_every_stage_grouped() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys >= EXPECTED_ASSETS
    groups = {graph.get(dg.AssetKey(k)).group_name for k in EXPECTED_ASSETS}
    assert groups == {"ingest", "validation", "preparation", "training", "evaluation", "registry", "scoring"}
    check_names = {key.name for key in graph.asset_check_keys}
    assert {
        "contract_passes",
        "quarantine_rate_below_threshold",
        "promotion_rule",
        "scoring_drift",
    } <= check_names


def test_jobs_schedule_and_sensor_are_defined() -> None:
    assert defs.resolve_job_def("training_job").name == "training_job"
    assert defs.resolve_job_def("scoring_job").name == "scoring_job"
    schedule = defs.resolve_schedule_def("weekly_retraining")
    assert schedule.cron_schedule == "0 3 * * 1"
    assert defs.resolve_sensor_def("landing_folder_sensor").job_name == "scoring_job"


def test_training_config_rejects_unknown_keys_in_the_launchpad() -> None:
    job = defs.resolve_job_def("training_job")
    bad = {"ops": {"fine_tuned_model": {"config": {"method": "lora", "no_such_knob": 1}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="no_such_knob"):
        dg.validate_run_config(job, bad)
    good = {
        "ops": {
            "fine_tuned_model": {
                "config": {"method": "lora", "method_params": {"r": 4}, "precision": "fp32"}
            },
            "credit_policy": {
                "config": {
                    "calibration": "isotonic",
                    "objective": "youden",
                    "max_decline_rate": 0.3,
                },
            },
        }
    }
    assert dg.validate_run_config(job, good)


@pytest.mark.parametrize(
    ("op", "config", "allowed"),
    [
        ("fine_tuned_model", {"method": "lorra"}, "lora"),
        ("credit_policy", {"calibration": "plat"}, "platt"),
        ("fine_tuned_model", {"precision": "fp64"}, "bf16"),
    ],
)
def test_launchpad_typos_are_refused_with_the_allowed_values(op: str, config: dict, allowed: str) -> None:
    job = defs.resolve_job_def("training_job")
    with pytest.raises(dg.DagsterInvalidConfigError, match=allowed):
        dg.validate_run_config(job, {"ops": {op: {"config": config}}})


@pytest.mark.parametrize(
    ("config", "sentence"),
    [
        (
            {"objective": "target_approval"},
            "objective 'target_approval' needs target_approval_rate, e.g. 0.7",
        ),
        (
            {"objective": "target_approval", "target_approval_rate": 1.5},
            "target_approval_rate: Input should be less than 1 (got 1.5)",
        ),
    ],
)
def test_a_policy_the_library_refuses_fails_the_step_in_one_sentence(config: dict, sentence: str) -> None:
    """The launchpad accepts these (it checks types only); the step then fails with the policy's
    own sentence as its message, not pydantic's trace."""
    from pipelines.configs import CreditPolicyLaunchpad

    @dg.asset
    def credit_policy(config: CreditPolicyLaunchpad) -> str:  # the real asset's config class
        return config.objective

    job = defs.resolve_job_def("training_job")
    assert dg.validate_run_config(job, {"ops": {"credit_policy": {"config": config}}})
    result = dg.materialize(
        [credit_policy], run_config={"ops": {"credit_policy": {"config": config}}}, raise_on_error=False
    )
    [failure] = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    assert failure.user_failure_data.description == f"credit_policy config: {sentence}"
    assert "ValidationError" not in failure.error.message and "pydantic" not in failure.error.message


def test_launchpad_configs_are_generated_from_the_library_configs() -> None:
    from pipelines.configs import AugmentationConfig, CreditPolicyConfig, TrainingConfig
    from risk_app.augment.config import AugmentConfig
    from risk_app.finetune.config import TrainConfig
    from risk_app.policy.credit import PolicyConfig

    assert set(TrainingConfig.model_fields) == set(TrainConfig.model_fields)
    assert set(CreditPolicyConfig.model_fields) == set(PolicyConfig.model_fields)
    for launchpad, library in ((TrainingConfig, TrainConfig), (AugmentationConfig, AugmentConfig)):
        assert set(launchpad.model_fields) == set(library.model_fields)
        for name, field in library.model_fields.items():
            assert launchpad.model_fields[name].description == field.description, name
            assert launchpad.model_fields[name].metadata == field.metadata, name  # bounds (ge, le)
    # The launchpad refuses what the library refuses (the hand copy took any ratio).
    with pytest.raises(ValidationError):
        AugmentationConfig(ratio=2.0)


def test_sensor_requests_one_run_per_new_file_and_remembers_it(risk_app_home: Path) -> None:
    landing = risk_app_home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"a": [1]}).to_csv(landing / "batch_01.csv", index=False)
    (landing / "notes.txt").write_text("not a data file")
    (landing / ".partial.csv").write_text("still uploading")
    (landing / "batch_01.csv.done").touch()  # the uploader says the file is complete

    first = landing_folder_sensor(dg.build_sensor_context(cursor=None))
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_config["ops"]["scoring_batch"]["config"]["input_path"].endswith("batch_01.csv")
    assert request.partition_key.startswith("batch_01.csv-")  # one dynamic partition per file

    # The request's config must be valid for the job it starts.
    assert dg.validate_run_config(defs.resolve_job_def("scoring_job"), request.run_config)

    again = landing_folder_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert again.run_requests == []


def test_weekly_schedule_trains_on_the_configured_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datetime as dt

    from pipelines.schedules import weekly_retraining

    monkeypatch.setenv("RISK_APP_TRAINING_DATA", str(tmp_path / "extract.parquet"))
    monkeypatch.setenv("RISK_APP_DATASET", "uci_credit_card")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 30, 3, tzinfo=dt.UTC))
    request = weekly_retraining(context)
    assert request.run_config["ops"]["raw_applications"]["config"]["path"].endswith("extract.parquet")
    assert request.run_config["ops"]["dataset_spec"]["config"]["dataset"] == "uci_credit_card"
    assert request.run_key == "weekly-uci_credit_card-2026-W49"
    assert dg.validate_run_config(defs.resolve_job_def("training_job"), request.run_config)
