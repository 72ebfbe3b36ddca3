"""Deploying the classical model alone: `--hybrid tabular_only` packages LightGBM by itself.

One tiny run (tiny-qwen2, one epoch, 240 rows) trains the LLM as usual, then deploys
LightGBM's PD: the tests check that every report names it `tabular:lightgbm`, that the
deployed scores are LightGBM's (the evaluation's `lightgbm` row, calibrated by the policy),
that the loaded model scores and explains without the LLM's weights, that the CLI scores a
file with reasons on declined rows, and that the benchmark gate and the like-for-like
champion check treat it as any model."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from pipelines.assets import ALL_ASSETS
from pipelines.configs import CreditPolicyLaunchpad
from pipelines.metadata import record_metadata
from pipelines.resources import build_resources
from risk_app.errors import RiskAppError
from risk_app.evaluate.hybrid import fit_hybrid, stacker_from_params
from risk_app.evaluate.model_card import render_model_card
from risk_app.hybrid.config import HybridConfig
from risk_app.hybrid.model import HybridRiskModel
from risk_app.hybrid.tabular import with_missing
from risk_app.registry.artifact import WEIGHTS_FILE, load_risk_model
from risk_app.registry.promotion import PromotionRule, decide_on_same_rows
from risk_app.run.benchmark_gate import benchmark_verdict
from risk_app.run.evaluate import evaluate_run
from risk_app.run.register import promote_run, register_run
from risk_app.run.render import summary_rows
from risk_app.run.same_rows import same_rows_evidence
from risk_app.run.stages import calibrated_scores
from tests.hybrid.conftest import score_tail_from_cli, train_hybrid

runner = CliRunner()


def _rows(valid: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    by_id = valid.set_index(valid["application_id"].astype(str))
    return by_id.loc[[str(i) for i in ids]].reset_index(drop=True)


@pytest.fixture
def run(small_file: Path, tiny_qwen2: Path):  # type: ignore[no-untyped-def]
    return train_hybrid(small_file, "tabular_only")


def test_the_run_deploys_lightgbm_alone_and_reports_name_it(run) -> None:  # type: ignore[no-untyped-def]
    record, valid, _ = run
    hybrid, evaluation = record.need("hybrid"), record.need("evaluation")
    assert record.model_label == "tabular:lightgbm" and hybrid.stacker == {"kind": "tabular_only"}
    assert hybrid.val_auc_oof == pytest.approx(hybrid.val_auc_tabular)
    # The deployed model is the evaluation's LightGBM: same test AUC; the LLM is reported beside it.
    assert evaluation.test.roc_auc == pytest.approx(evaluation.baselines["lightgbm"].roc_auc, abs=1e-12)
    assert {"llm_alone", "lightgbm", "logistic"} <= set(evaluation.baselines)
    predictions = pd.read_parquet(hybrid.predictions_path)
    np.testing.assert_array_equal(predictions["p_raw"], predictions["p_tabular"])
    card = render_model_card(record)
    assert card.startswith("# Model card: credit-risk model (tabular:lightgbm) on german_credit\n")
    assert "## The deployed model: LightGBM alone" in card
    assert "llm_alone: llm:lora trained, not deployed" in card
    assert [row["model"] for row in summary_rows(record)][:2] == ["tabular:lightgbm", "llm_alone"]
    assert record_metadata(record, "policy")["model"] == "tabular:lightgbm"
    assert record.need("artifact").version.startswith("lora+tabular_only-")


def test_loaded_model_scores_lightgbm_without_the_llm_weights(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record, valid, _ = run
    copy = tmp_path / "artifact"
    shutil.copytree(record.need("artifact").path, copy)
    (copy / WEIGHTS_FILE).unlink()  # the LLM's weights are not needed to score
    model = load_risk_model(copy)
    assert isinstance(model, HybridRiskModel) and model.tabular_only and model.model is None
    y_test, p_test, test_ids = calibrated_scores(record, "test")
    rows = _rows(valid, test_ids)
    scored = model.predict_proba(rows)
    np.testing.assert_allclose(scored, p_test, atol=1e-9)
    # ... and they are LightGBM's PDs from the evaluation, under the policy's calibration.
    predictions = pd.read_parquet(record.need("hybrid").predictions_path)
    test = predictions.loc[predictions["split"] == "test"]
    by_id = test.set_index(test["application_id"].astype(str))["p_tabular"]
    p_lightgbm = by_id.loc[[str(i) for i in test_ids]].to_numpy(float)
    np.testing.assert_allclose(scored, model.calibrator.transform(p_lightgbm), atol=1e-9)
    assert roc_auc_score(y_test, scored) == pytest.approx(
        record.need("evaluation").baselines["lightgbm"].roc_auc, abs=1e-9
    )
    assert np.isnan(model.components(rows)["p_llm"]).all()
    with pytest.raises(RiskAppError, match="LightGBM alone"):
        model.predict_texts(["Duration: 6 months."])
    # A reason's strength by hand: the PD minus the PD with the field missing in the features only.
    head = rows.head(4)
    codes = model.reason_codes(head, top_k=3)
    field = model.dataset_spec.numeric_columns[0]
    by_hand = model.predict_proba(head) - model.calibrator.transform(
        model.tabular.predict(with_missing(head, field))
    )
    got = codes.long.loc[codes.long["field"] == field].set_index("application_id").loc[head["application_id"]]
    np.testing.assert_allclose(got["strength"].to_numpy(), by_hand, atol=1e-9)
    assert not set(model.dataset_spec.protected_columns) & set(codes.long["field"])


def test_register_score_with_reasons_and_the_champion_checks(run, risk_app_home: Path) -> None:  # type: ignore[no-untyped-def]
    record, valid, examples = run
    # Level with the classical benchmark (it is the benchmark): the gate lets it through.
    assert benchmark_verdict(record, PromotionRule(), margin=0.02) is None
    registered = register_run(record, model_name="german_credit", benchmark_margin=0.02)
    assert registered.need("registration").decision.promote
    assert promote_run(registered).need("registration").promoted  # the first champion
    version = registered.need("registration").version
    frame, scored = score_tail_from_cli(risk_app_home, version)
    model = load_risk_model(record.need("artifact").path)
    expected = model.calibrator.transform(model.tabular.predict(frame.reset_index(drop=True)))
    np.testing.assert_allclose(scored["probability_of_default"].to_numpy(), expected, atol=1e-6)
    declined = scored.loc[scored["decision"] == "decline"]
    assert len(declined) and declined["reason_1_field"].notna().all()
    assert not set(declined["reason_1_field"]) & set(model.dataset_spec.protected_columns)
    # Like for like: re-evaluated with itself as champion, a tie keeps the champion.
    again = evaluate_run(record, valid, examples, champion_model="german_credit")
    assert again.need("evaluation").baselines["champion"].roc_auc == pytest.approx(
        again.need("evaluation").test.roc_auc, abs=1e-9
    )
    evidence = same_rows_evidence(again, "german_credit", PromotionRule())
    assert evidence is not None and evidence.champion_version == str(version)
    assert evidence.comparison.improvement == pytest.approx(0.0, abs=1e-12)
    held = decide_on_same_rows(evidence, PromotionRule())
    assert not held.promote and held.reason.startswith("challenger is not better on the same rows")


def test_the_option_is_accepted_everywhere_a_stacker_is_named() -> None:
    assert HybridConfig.parse("tabular_only").tabular_only
    assert not HybridConfig.parse("logistic").tabular_only
    launchpad = CreditPolicyLaunchpad(hybrid="tabular_only")
    assert launchpad.hybrid_config().tabular_only and "hybrid" not in launchpad.policy_config().model_dump()
    # The Dagster launchpad's schema takes the value (and still refuses a typo).
    defs = dg.Definitions(
        assets=ALL_ASSETS, jobs=[dg.define_asset_job("policy", selection=["credit_policy"])],
        resources=build_resources(),
    )  # fmt: skip
    job = defs.resolve_job_def("policy")
    config = {"ops": {"credit_policy": {"config": {"hybrid": "tabular_only"}}}}
    assert dg.validate_run_config(job, config)["ops"]["credit_policy"]["config"]["hybrid"] == "tabular_only"
    with pytest.raises(dg.DagsterInvalidConfigError, match="hybrid"):
        dg.validate_run_config(job, {"ops": {"credit_policy": {"config": {"hybrid": "lightgbm"}}}})


def test_the_tabular_only_stacker_is_lightgbm_as_it_is() -> None:
    y = [0, 1, 0, 0, 1, 0]  # two defaults: fewer than the folds, and nothing to cross-fit
    llm, gbm = [0.9, 0.1, 0.8, 0.7, 0.2, 0.6], [0.1, 0.8, 0.3, 0.2, 0.9, 0.4]
    hybrid = fit_hybrid(y, llm, gbm, kind="tabular_only", n_folds=5)
    np.testing.assert_array_equal(hybrid.val_oof, gbm)
    assert hybrid.val_auc_oof == 1.0 and hybrid.params == {"kind": "tabular_only"}
    again = stacker_from_params(hybrid.params)
    np.testing.assert_array_equal(again.predict([0.5, 0.5], [0.25, 0.75]), [0.25, 0.75])
