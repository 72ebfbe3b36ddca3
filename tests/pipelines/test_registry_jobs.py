"""Promote and roll back from the launchpad: the alias moves and the audit log says who and why."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.definitions import defs
from risk_app import workflow
from risk_app.finetune.config import TrainConfig
from risk_app.registry.audit import read_audit_log
from risk_app.registry.mlflow_registry import resolve_model
from risk_app.run.register import promote_run, register_run

pytestmark = pytest.mark.slow


@pytest.fixture
def two_versions(risk_app_home: Path, tiny_qwen2: Path) -> str:
    path = risk_app_home / "apps.csv"
    pd.read_csv(load_spec("german_credit").data_path).sample(200, random_state=5).to_csv(path, index=False)
    validation = workflow.ingest_and_validate(path)
    for seed in (1, 2):
        examples = workflow.prepare_examples(validation.valid, seed=seed)
        record = workflow.train_run(
            validation.valid, examples, TrainConfig(epochs=1, max_length=64, seed=seed),
            baselines=("logistic",), progress=False,
        )  # fmt: skip
        promote_run(register_run(record, model_name="book"))
    return "book"


def _run(job: str, config: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(run_config={"ops": config}, raise_on_error=False)


def test_promote_then_roll_back_from_the_launchpad(two_versions: str) -> None:
    reason = "validated by model risk, ticket MR-7"
    result = _run(
        "promote_version_job",
        {"promote_version": {"config": {"model_name": "book", "version": 2, "reason": reason}}},
    )
    assert result.success
    assert resolve_model("champion", name="book").version == "2"
    last = read_audit_log()[-1]
    assert last["to_version"] == "2" and last["reason"] == reason and last["actor"].startswith("dagster")

    back = _run(
        "rollback_champion_job",
        {
            "rollback_to_previous_champion": {
                "config": {"model_name": "book", "reason": "drift on the amount field"}
            }
        },
    )
    assert back.success
    assert read_audit_log()[-1]["action"] == "rollback"


def test_a_promotion_needs_a_real_reason() -> None:
    job = defs.resolve_job_def("promote_version_job")
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(
            job, {"ops": {"promote_version": {"config": {"model_name": "b", "version": 1}}}}
        )
    with pytest.raises(Exception, match="reason"):
        job.execute_in_process(
            run_config={
                "ops": {"promote_version": {"config": {"model_name": "b", "version": 1, "reason": "ok"}}}
            }
        )


def test_a_rollback_with_nothing_to_roll_back_to_is_one_sentence(risk_app_home: Path) -> None:
    """The first champion replaced none: the run says so in one sentence (a warning, not a
    failure with Dagster's stack trace), nothing moves and the audit log gets no rollback."""
    from risk_app.registry import mlflow_registry as reg
    from tests.scoring.doubles import save_double_artifact

    folder = save_double_artifact(risk_app_home / "first", version="first-1", n_train=80)
    reg.register_model_version(folder, metrics={"roc_auc": 0.7}, model_name="book")
    config = {
        "rollback_to_previous_champion": {"config": {"model_name": "book", "reason": "drift on amount"}}
    }
    before_champion = _run("rollback_champion_job", config)
    assert before_champion.output_for_node("rollback_to_previous_champion").startswith(
        "nothing to roll back: 'book' has no champion"
    )
    assert reg.promote_if_better("book", "1").promote
    result = _run("rollback_champion_job", config)
    assert result.success
    sentence = result.output_for_node("rollback_to_previous_champion")
    assert sentence == "nothing to roll back to: version 1 is the first champion of 'book' and stays champion"
    assert resolve_model("champion", name="book").version == "1"
    assert [r["action"] for r in read_audit_log()] == ["promote"]
    typo = {"rollback_to_previous_champion": {"config": {"model_name": "bok", "reason": "drift on amount"}}}
    assert not _run("rollback_champion_job", typo).success  # an unknown model is still an error
