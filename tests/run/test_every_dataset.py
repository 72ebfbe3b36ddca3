"""The whole chain on every built-in data set: validate, train, register, score, from its spec
alone; and a model refuses a file of another data set, writing nothing."""

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.spec import list_datasets, load_spec
from risk_app import workflow
from risk_app.errors import RiskAppError
from risk_app.finetune.config import TrainConfig
from risk_app.run.register import promote_run, register_run
from risk_app.scoring.staged import score_and_record
from risk_app.storage.scores import scoring_ledger

pytestmark = pytest.mark.slow


def _sample(name: str, home: Path, n: int = 240) -> Path:
    spec = load_spec(name)
    frame = pd.read_csv(spec.data_path)
    path = home / f"{name}_sample.csv"
    frame.sample(min(n, len(frame)), random_state=0).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", list_datasets())
def test_whole_chain_runs_on_every_built_in_data_set(
    name: str, risk_app_home: Path, tiny_qwen2: Path
) -> None:
    spec = load_spec(name)
    path = _sample(name, risk_app_home)
    validation = workflow.ingest_and_validate(path, spec=spec)
    assert validation.n_in == validation.n_valid + validation.n_quarantined
    examples = workflow.prepare_examples(validation.valid, spec=spec)
    record = workflow.train_run(
        validation.valid, examples, TrainConfig(epochs=1, max_length=96), spec=spec,
        source=str(path), baselines=("logistic",), progress=False,
    )  # fmt: skip
    record = promote_run(register_run(record, model_name=spec.name))
    assert record.dataset.name == name and record.registration.model_name == name
    card = (Path(record.artifact.path) / "MODEL_CARD.md").read_text()
    assert spec.description.split()[0] in card and spec.licence in card

    outcome = score_and_record(path, risk_app_home / f"{name}.scores.parquet", spec=name, reasons=1)
    assert outcome.n_scored + outcome.n_quarantined == outcome.n_in == validation.n_in
    scored = pd.read_parquet(outcome.output_path)
    assert scored["probability_of_default"].between(0, 1).all()
    assert set(scored["risk_grade"]) <= set(record.policy.config.grade_bands)


def test_a_model_refuses_a_file_of_another_data_set(risk_app_home: Path, tiny_qwen2: Path) -> None:
    german = load_spec("german_credit")
    path = _sample("german_credit", risk_app_home, 160)
    validation = workflow.ingest_and_validate(path, spec=german)
    examples = workflow.prepare_examples(validation.valid, spec=german)
    record = workflow.train_run(
        validation.valid, examples, TrainConfig(epochs=1, max_length=64), spec=german,
        baselines=("logistic",), progress=False,
    )  # fmt: skip
    other = _sample("uci_credit_card", risk_app_home, 50)
    out = risk_app_home / "wrong.scores.parquet"
    folder = record.artifact.path
    with pytest.raises(RiskAppError, match="german_credit.*uci_credit_card|uci_credit_card.*german_credit"):
        score_and_record(other, out, model_ref=folder, spec="uci_credit_card")
    with pytest.raises(RiskAppError, match="german_credit"):
        score_and_record(other, out, model_ref=folder)  # no data set named: the model's own spec decides
    assert not out.exists()
    assert scoring_ledger().empty
