"""The CLI path of a credit policy: `risk-app train --policy ...` decides by that policy when
scoring, and the same run's policy chosen again (the library stages the Dagster asset calls) is
a new version that `risk-app score` then uses, each batch recording the version and the policy.

LightGBM is the deployed scorer (`--hybrid tabular_only`): the tiny test LLM's calibrated PDs all
sit at the base rate, where two objectives choose cut-offs that differ only in float noise."""

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.cli import app
from risk_app.policy.credit import PolicyConfig
from risk_app.run.evaluate import evaluate_run
from risk_app.run.package import package_run
from risk_app.run.record import RunRecord
from risk_app.run.register import promote_run, register_run
from risk_app.run.stages import EXAMPLES_FILE, VALID_FILE, choose_credit_policy
from risk_app.storage.scores import scoring_ledger

runner = CliRunner()


def _score(batch: Path, out: Path) -> pd.DataFrame:
    result = runner.invoke(
        app, ["score", "-i", str(batch), "-o", str(out), "--reasons", "0"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def test_cli_policy_reaches_scoring_and_a_rechosen_policy_is_a_new_version(
    risk_app_home: Path, tiny_qwen2: Path
) -> None:
    frame = pd.read_csv(load_spec("german_credit").data_path).sample(260, random_state=7)
    train, batch = risk_app_home / "train.csv", risk_app_home / "batch.csv"
    frame.head(200).to_csv(train, index=False)
    frame.tail(60).drop(columns="creditability").to_csv(batch, index=False)
    args = [
        "train",
        "--data",
        str(train),
        "--epochs",
        "1",
        "--set",
        "max_length=64",
        "--hybrid",
        "tabular_only",
    ]
    policy = ["--policy", "objective=target_approval", "--policy", "target_approval_rate=0.7"]
    result = runner.invoke(app, [*args, *policy], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "registered german_credit version 1 as champion" in result.output
    [run_dir] = [p for p in (risk_app_home / "runs").iterdir() if (p / "run_record.json").is_file()]
    record = RunRecord.load(run_dir)
    first = record.need("policy")
    assert first.config.objective == "target_approval"

    scores = _score(batch, risk_app_home / "v1.parquet")
    assert set(scores["model_version"]) == {"german_credit/1"}
    assert set(scores["policy_id"]) == {first.policy_id} and scores["policy_cutoff"].eq(first.threshold).all()
    assert (scores["decision"] == "decline").tolist() == (
        scores["probability_of_default"] >= first.threshold
    ).tolist()

    # The same weights, the policy chosen again: a new version, which replaces the champion.
    valid, examples = pd.read_parquet(run_dir / VALID_FILE), pd.read_parquet(run_dir / EXAMPLES_FILE)
    record = choose_credit_policy(record, PolicyConfig(objective="target_approval", target_approval_rate=0.4))
    record = package_run(evaluate_run(record, valid, examples, spec="german_credit"), spec="german_credit")
    record = promote_run(register_run(record, model_name="german_credit"), actor="test")
    second = record.need("policy")
    assert (record.registration.version, record.registration.rechosen_from) == (2, 1)
    assert record.registration.promoted and second.threshold < first.threshold - 0.01

    rescored = _score(batch, risk_app_home / "v2.parquet")
    assert set(rescored["model_version"]) == {"german_credit/2"} and set(rescored["policy_id"]) == {
        second.policy_id
    }
    p = rescored["probability_of_default"]
    assert (rescored["decision"] == "decline").tolist() == (p >= second.threshold).tolist()
    assert ((p >= second.threshold) & (p < first.threshold)).sum() >= 3  # decided differently now
    ledger = scoring_ledger()
    assert ledger[["model_version", "policy_id", "policy_objective"]].values.tolist() == [
        ["german_credit/1", first.policy_id, "target_approval"],
        ["german_credit/2", second.policy_id, "target_approval"],
    ]
