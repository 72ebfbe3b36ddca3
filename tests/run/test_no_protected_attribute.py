"""A data set that records no protected attribute trains to the end and says fairness was not
assessed (issue 20 §2: it used to train an epoch, then fail in fairness_report)."""

from __future__ import annotations

from pathlib import Path

import yaml

from data_contracts.spec import load_spec
from pipelines.checks import _fairness_sentence
from risk_app import workflow
from risk_app.evaluate.fairness import NO_PROTECTED_ATTRIBUTE
from risk_app.finetune.config import TrainConfig


def _spec_without_protected(folder: Path) -> Path:
    raw = yaml.safe_load(load_spec("german_credit").spec_path.read_text())
    raw.update(name="german_unprotected", protected=[])
    raw.pop("data", None)
    path = folder / "german_unprotected.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_spec_without_protected_attributes_trains_and_reports_fairness_not_assessable(
    small_file: Path, tiny_qwen2: Path, risk_app_home: Path
) -> None:
    spec = load_spec(_spec_without_protected(risk_app_home))
    assert spec.protected_columns == ()
    validation = workflow.ingest_and_validate(small_file, spec=spec)
    examples = workflow.prepare_examples(validation.valid, seed=7, spec=spec)
    config = TrainConfig(epochs=1, max_length=96, seed=7)
    record = workflow.train_run(
        validation.valid, examples, config, spec=spec, source=str(small_file),
        baselines=("logistic",), progress=False,
    )  # fmt: skip
    fairness = record.need("evaluation").fairness
    assert fairness["assessable"] is False and NO_PROTECTED_ATTRIBUTE in fairness["reason"]
    assert fairness["rows"] == [] and record.need("evaluation").fairness_flags == []
    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text()
    fairness_section = card[card.index("## Fairness") :]
    assert "Fairness not assessable: the spec declares no protected attribute" in fairness_section
    assert "disparate impact is unknown" in fairness_section
    assert _fairness_sentence(fairness).startswith("Fairness not assessable")
