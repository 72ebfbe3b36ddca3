"""Every rendering of the run record carries every metric of the metric table.

The metric table is the one place a metric is declared; this test is what makes "adding a
metric is one table entry" true: a new entry fails here until it reaches the model card,
MLflow and the Dagster metadata.
"""

from pathlib import Path

import pytest

from risk_app import workflow
from risk_app.evaluate.metric_table import HEADLINE_METRICS, METRIC_NAMES, METRICS, MetricSpec, metric_spec
from risk_app.evaluate.metrics import credit_metrics
from risk_app.finetune.config import TrainConfig
from risk_app.registry.promotion import METRIC_DIRECTIONS
from risk_app.run.render import mlflow_payload, summary_rows


@pytest.fixture
def record(small_file: Path, tiny_qwen2: Path):  # noqa: ANN201
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=3)
    return workflow.train_run(
        validation.valid, examples, TrainConfig(epochs=1, max_length=64, seed=3),
        baselines=("logistic",), progress=False,
    )  # fmt: skip


def test_every_metric_reaches_card_mlflow_dagster_and_summary(record) -> None:  # noqa: ANN001
    from pipelines.metadata import record_metadata

    card = (Path(record.need("artifact").path) / "MODEL_CARD.md").read_text()
    payload = mlflow_payload(record)
    dagster = record_metadata(record, "evaluation")
    rows = summary_rows(record, METRIC_NAMES)
    for name in METRIC_NAMES:
        assert f" {name} " in card.split("## Performance")[1].splitlines()[2], name
        assert f"test_{name}" in payload.metrics and f"logistic_{name}" in payload.metrics, name
        assert f"val_{name}" in payload.metrics, name
        assert f"test_{name}" in dagster, name
        assert all(name in row for row in rows), name


def test_metadata_is_rounded_for_reading(record) -> None:  # noqa: ANN001
    from pipelines.metadata import record_metadata

    value = record_metadata(record, "evaluation")["test_roc_auc"].value
    assert value == round(value, 4)
    rows = summary_rows(record)
    assert all(len(cell.split(".")[-1]) <= 4 for row in rows for cell in row.values() if "." in cell)
    assert set(rows[0]) == {"model", *HEADLINE_METRICS}


def test_metric_table_drives_credit_metrics_and_promotion_directions() -> None:
    values = credit_metrics([0, 1, 0, 1, 0], [0.1, 0.9, 0.4, 0.6, 0.7], 0.5)
    assert set(METRIC_NAMES) <= set(values)
    assert values["approval_rate"] == pytest.approx(2 / 5)
    assert values["bad_rate_approved"] == pytest.approx(0.0)
    comparable = {s.name for s in METRICS if s.higher_is_better is not None}
    assert set(METRIC_DIRECTIONS) == comparable
    assert metric_spec("brier").higher_is_better is False
    with pytest.raises(KeyError, match="known metrics"):
        metric_spec("auc")
    assert isinstance(METRICS[0], MetricSpec)


def test_champion_sentence_never_reads_version_none() -> None:
    from risk_app.registry.promotion import PromotionDecision
    from risk_app.run.record import RegistrationFacts
    from risk_app.run.render import champion_sentence

    held = RegistrationFacts(
        model_name="german_credit", version=1, mlflow_run_id="r",
        decision=PromotionDecision(promote=False, reason="trails the classical benchmark"),
    )  # fmt: skip
    first = champion_sentence(held, champion=None)
    assert "None" not in first and first.startswith("no champion yet: version 1 was not promoted")
    assert "risk-app models promote 1 --name german_credit" in first and "--model challenger" in first
    stays = champion_sentence(held, champion=3)
    assert stays.startswith("version 3 stays champion; version 1 was not promoted")
