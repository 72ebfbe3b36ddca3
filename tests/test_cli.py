"""The `risk-app` CLI: clear messages and exit codes, scoring good and bad files."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.cli import app
from risk_app import workflow
from risk_app.finetune.config import TrainConfig

runner = CliRunner()


@pytest.fixture
def artifact(tiny_qwen2: Path, risk_app_home: Path) -> Path:
    frame = pd.read_csv(load_spec("german_credit").data_path).sample(200, random_state=2)
    path = risk_app_home / "train.csv"
    frame.to_csv(path, index=False)
    validation = workflow.ingest_and_validate(path)
    examples = workflow.prepare_examples(validation.valid)
    config = TrainConfig(epochs=1, max_length=96)
    record = workflow.train_run(validation.valid, examples, config, baselines=("logistic",), progress=False)
    return Path(record.need("artifact").path)


def test_methods_lists_every_registered_method() -> None:
    result = runner.invoke(app, ["methods"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("full", "freeze", "lora", "qlora", "adapter", "prompt", "rlhf", "quantum"):
        assert name in result.output


def test_unknown_method_is_a_clear_error_listing_the_choices() -> None:
    result = runner.invoke(app, ["train", "--method", "magic"], terminal_width=200)
    assert result.exit_code == 2
    assert "error:" in result.output and "magic" in result.output and "lora" in result.output
    assert "Traceback" not in result.output


def test_bad_method_parameter_lists_allowed_keys() -> None:
    result = runner.invoke(app, ["train", "--method", "lora", "--param", "rank=8"], terminal_width=300)
    assert result.exit_code == 2
    assert "unknown key 'rank'" in result.output and "target_modules" in result.output


def test_score_good_file(artifact: Path, risk_app_home: Path) -> None:
    source = risk_app_home / "new.csv"
    frame = pd.read_csv(load_spec("german_credit").data_path).drop(columns="creditability")
    frame.head(40).to_csv(source, index=False)
    out = risk_app_home / "scores.parquet"
    result = runner.invoke(app, ["score", "-i", str(source), "-o", str(out), "--model", str(artifact)])
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    assert len(scored) == 40
    assert scored["probability_of_default"].between(0, 1).all()
    assert set(scored["decision"]) <= {"approve", "decline"}
    assert not (risk_app_home / "scores.quarantine.parquet").exists()


def test_score_file_with_bad_rows_quarantines_them(artifact: Path, risk_app_home: Path) -> None:
    frame = pd.read_csv(load_spec("german_credit").data_path).head(30)
    frame.loc[3, "age_in_years"] = 7
    frame.loc[8, "purpose"] = "yacht"
    source = risk_app_home / "batch.csv"
    frame.to_csv(source, index=False)
    out = risk_app_home / "scores.csv"
    result = runner.invoke(app, ["score", "-i", str(source), "-o", str(out), "--model", str(artifact)])
    assert result.exit_code == 0, result.output
    assert "2 row(s) quarantined" in result.output
    assert len(pd.read_csv(out)) == 28
    quarantine = pd.read_parquet(risk_app_home / "scores.quarantine.parquet")
    assert set(quarantine["column"]) == {"age_in_years", "purpose"}
    assert sorted(quarantine["row_number"]) == [4, 9]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "missing.csv", "-o", "s.parquet"], "missing.csv"),
        (["-i", "apps.txt", "-o", "s.parquet"], "apps.txt"),
        (["-i", "apps.csv", "-o", "scores.xlsx"], "xlsx"),
    ],
)
def test_score_bad_input_is_one_clear_line(args: list[str], message: str, risk_app_home: Path) -> None:
    (risk_app_home / "apps.txt").write_text("not a table")
    pd.read_csv(load_spec("german_credit").data_path).head(3).to_csv(risk_app_home / "apps.csv", index=False)
    args = [str(risk_app_home / a) if a.endswith((".csv", ".txt")) else a for a in args]
    result = runner.invoke(
        app, ["score", *args, "--model", str(risk_app_home / "no-model")], terminal_width=300
    )
    assert result.exit_code == 2
    assert "error:" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_score_with_no_champion_says_what_to_do(risk_app_home: Path) -> None:
    """A first version the benchmark gate held back leaves no champion: scoring says how to go on."""
    from risk_app.registry import mlflow_registry as reg
    from risk_app.registry.promotion import PromotionDecision
    from tests.scoring.doubles import save_double_artifact

    folder = save_double_artifact(risk_app_home / "held", version="held-1", n_train=80)
    info = reg.register_model_version(folder, metrics={"roc_auc": 0.6}, model_name="german_credit")
    held = PromotionDecision(promote=False, reason="trails the classical benchmark lightgbm")
    reg.record_decision("german_credit", info.version, held, actor="benchmark gate")
    pd.read_csv(load_spec("german_credit").data_path).head(3).to_csv(risk_app_home / "apps.csv", index=False)

    result = runner.invoke(app, ["score", "-i", str(risk_app_home / "apps.csv")], terminal_width=400)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no champion yet" in result.output and "no alias" not in result.output
    assert "risk-app models promote 1 --name german_credit --reason" in result.output
    assert "--model challenger" in result.output
    back = runner.invoke(app, ["models", "rollback", "--reason", "first try"], terminal_width=400)
    assert back.exit_code == 2 and "nothing to roll back: 'german_credit' has no champion" in back.output


def test_score_without_a_dataset_uses_the_deployments_default(
    risk_app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --dataset: the registered model of $RISK_APP_DATASET (else the registry's default)
    scores, as in every other command; the help says so instead of naming one data set."""
    from data_contracts.spec import DATASET_ENV, DEFAULT_DATASET

    helped = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "400"})
    assert f"default: ${DATASET_ENV}, else {DEFAULT_DATASET}" in helped.output
    pd.read_csv(load_spec("german_credit").data_path).head(3).to_csv(risk_app_home / "apps.csv", index=False)
    monkeypatch.setenv(DATASET_ENV, "uci_credit_card")
    result = runner.invoke(app, ["score", "-i", str(risk_app_home / "apps.csv")], terminal_width=400)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "no registered model named 'uci_credit_card'" in result.output
