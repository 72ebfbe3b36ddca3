"""Every report names a hybrid run's model the same way and the card describes its two parts.

A hand-built record (no training): the card of a tiny hybrid record, its CLI summary and its
Dagster metadata, beside the same record without the hybrid section."""

from __future__ import annotations

from risk_app.evaluate.metrics import score_predictions
from risk_app.evaluate.model_card import render_model_card
from risk_app.hybrid.config import HybridConfig, HybridFacts
from risk_app.run.record import RunRecord
from risk_app.run.render import summary_rows
from tests.evaluate.test_model_card import Y, make_record

STACKER = {"kind": "logistic", "coef_llm": 0.8123, "coef_gbm": 1.2345, "intercept": -0.4321}


def hybrid_record() -> RunRecord:
    record = make_record("lora")
    facts = HybridFacts(
        config=HybridConfig(stacker="logistic", n_folds=4), stacker=STACKER,
        llm_calibration={"kind": "platt", "a": 2.5, "b": -0.75},
        tabular_features=["region", "age", "income"], val_auc_oof=0.7812, val_auc_llm=0.7011,
        val_auc_tabular=0.7456, predictions_path="/x/hybrid.parquet", model_dir="/x/hybrid",
    )  # fmt: skip
    evaluation = record.need("evaluation")
    llm_alone = score_predictions(Y, [0.3] * 4 + [0.6] * 4, 0.5)
    evaluation = evaluation.model_copy(update={"baselines": {**evaluation.baselines, "llm_alone": llm_alone}})
    return record.model_copy(update={"hybrid": facts, "evaluation": evaluation})


def test_card_names_the_hybrid_and_describes_both_parts_and_the_stacker() -> None:
    card = render_model_card(hybrid_record())
    assert card.startswith("# Model card: credit-risk model (hybrid:lora+logistic) on acme_book\n")
    section = card.split("## The hybrid: two parts, stacked")[1].split("\n## ")[0]
    for text in (
        "**Model:** `hybrid:lora+logistic`",
        "fine-tuned with lora",
        "calibrated by platt on validation (a=2.5, b=-0.75)",
        "LightGBM** on the data set's 3 tabular columns",
        "`region`, `age`, `income`",
        "**Stacker:** logistic, fitted on validation with 4-fold cross-fitting",
        "PD = sigmoid(-0.4321 + 0.8123 * logit(PD_llm) + 1.234 * logit(PD_lightgbm))",
        "hybrid 0.7812, language model alone 0.7011, LightGBM alone 0.7456",
    ):
        assert text in section, text
    assert "stacked PD's calibration (fitted on validation):** platt" in card
    # The test table: the hybrid, its language model alone right beside it, then the baselines.
    table = [line.split("|")[1].strip() for line in card.split("## Performance")[1].splitlines()[4:7]]
    assert table == [
        "this model (hybrid:lora+logistic)", "llm_alone: llm:lora before stacking", "baseline: logistic",
    ]  # fmt: skip
    assert "The LightGBM part reads protected attributes directly (`age`)" in card


def test_cli_summary_and_dagster_metadata_name_the_model_as_the_card_does() -> None:
    from pipelines.metadata import record_metadata

    record = hybrid_record()
    assert [row["model"] for row in summary_rows(record)] == ["hybrid:lora+logistic", "llm_alone", "logistic"]
    for stage in ("policy", "evaluation"):
        assert record_metadata(record, stage)["model"] == "hybrid:lora+logistic"
    llm_only = make_record("lora")
    assert (
        record_metadata(llm_only, "evaluation")["model"] == summary_rows(llm_only)[0]["model"] == "llm:lora"
    )
    card = render_model_card(llm_only)
    assert "(lora) on acme_book" in card and "hybrid" not in card.lower() and "LightGBM part" not in card
