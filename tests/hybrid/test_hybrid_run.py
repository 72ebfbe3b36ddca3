"""The hybrid as a deployable model: trained in a run, packaged, loaded, registered, scored, explained.

One tiny run (tiny-qwen2, one epoch, 240 rows) stacks the LLM with LightGBM; the tests check
that every later stage treats it as the model, that the loaded artifact reproduces the scores
the run was evaluated on, that reason codes occlude a field in both inputs, and that bad
options are refused before any work starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.cli import app
from risk_app import paths, workflow
from risk_app.data.serialize import serialize_frame
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.baselines import fit_baseline, predict_default
from risk_app.finetune.config import TrainConfig
from risk_app.hybrid.config import HybridConfig
from risk_app.hybrid.model import HybridRiskModel
from risk_app.hybrid.stage import check_hybrid
from risk_app.hybrid.tabular import NoTabularFeaturesError, TabularModel, fit_tabular, with_missing
from risk_app.registry.artifact import CorruptArtifactError, load_risk_model
from risk_app.run.register import register_run
from risk_app.run.stages import calibrated_scores
from tests.hybrid.conftest import score_tail_from_cli

runner = CliRunner()


def _rows(valid: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    by_id = valid.set_index(valid["application_id"].astype(str))
    return by_id.loc[[str(i) for i in ids]].reset_index(drop=True)


def test_run_stacks_evaluates_and_packages_the_hybrid(hybrid_run) -> None:  # type: ignore[no-untyped-def]
    record, valid, _ = hybrid_run
    hybrid, evaluation = record.need("hybrid"), record.need("evaluation")
    assert hybrid.config.stacker == "logistic" and hybrid.stacker["kind"] == "logistic"
    # The hybrid is evaluated beside the LLM alone and the baselines, on the same test rows.
    assert {"llm_alone", "lightgbm", "logistic"} <= set(evaluation.baselines)
    assert evaluation.baselines["llm_alone"].roc_auc != pytest.approx(evaluation.test.roc_auc)
    artifact = Path(record.need("artifact").path)
    manifest = json.loads((artifact / "risk_model.json").read_text())
    assert manifest["version"].startswith("lora+logistic-")
    assert set(manifest["extra"]["hybrid"]["files"]) == {
        "hybrid/stacker.json", "hybrid/tabular_features.json", "hybrid/tabular_lightgbm.txt",
    }  # fmt: skip
    # The loaded artifact gives the very PDs the run was evaluated on.
    model = load_risk_model(artifact)
    assert isinstance(model, HybridRiskModel)
    y_test, p_test, test_ids = calibrated_scores(record, "test")
    scored = model.predict_proba(_rows(valid, test_ids))
    np.testing.assert_allclose(scored, p_test, atol=1e-6)
    assert roc_auc_score(y_test, scored) == pytest.approx(evaluation.test.roc_auc, abs=1e-9)
    with pytest.raises(RiskAppError, match="hybrid"):
        model.predict_texts(["Duration: 6 months."])


def test_reason_codes_occlude_a_field_in_text_and_tabular_features(hybrid_run) -> None:  # type: ignore[no-untyped-def]
    record, valid, _ = hybrid_run
    model = load_risk_model(record.need("artifact").path)
    rows = valid.head(3).reset_index(drop=True)
    codes = model.reason_codes(rows, top_k=3)
    assert len(codes.wide) == 3 and {"reason_1", "reason_1_field", "reason_1_strength"} <= set(
        codes.wide.columns
    )
    protected = set(model.dataset_spec.protected_columns)
    assert not protected & set(codes.long["field"])
    # One strength by hand: full stacked PD minus the PD with the field gone from both inputs.
    field = model.dataset_spec.numeric_columns[0]
    texts = serialize_frame(rows, field_order=model.text_fields(), exclude=(field,), spec=model.dataset_spec)
    by_hand = model._stack(model._llm(texts.tolist()), model.tabular.predict(with_missing(rows, field)))
    full = model.predict_proba(rows)
    got = codes.long.loc[codes.long["field"] == field].set_index("application_id").loc[rows["application_id"]]
    np.testing.assert_allclose(got["strength"].to_numpy(), full - by_hand, atol=1e-6)


def test_register_then_score_a_file_with_reasons_from_the_cli(hybrid_run, risk_app_home: Path) -> None:  # type: ignore[no-untyped-def]
    record, _, _ = hybrid_run
    registered = register_run(record, model_name="german_credit", benchmark_margin="off")
    version = registered.need("registration").version
    frame, scored = score_tail_from_cli(risk_app_home, version)
    assert len(scored) == 30 and scored["probability_of_default"].between(0, 1).all()
    assert "+logistic" in str(scored["model_version"].iloc[0]) or str(version) in str(
        scored["model_version"].iloc[0]
    )
    declined = scored.loc[scored["decision"] == "decline"]
    assert len(declined) and declined["reason_1_field"].notna().all()
    approved = scored.loc[scored["decision"] == "approve"]
    assert approved["reason_1_field"].isna().all()
    # The MLflow pyfunc face of the same version stacks too.
    import mlflow

    mlflow.set_tracking_uri(paths.mlflow_tracking_uri())
    pyfunc = mlflow.pyfunc.load_model(f"models:/german_credit/{version}")
    p = pyfunc.predict(frame.reset_index(drop=True))["probability_of_default"].to_numpy()
    np.testing.assert_allclose(p, scored["probability_of_default"].to_numpy(), atol=1e-6)


def test_tampered_tabular_model_is_refused(hybrid_run) -> None:  # type: ignore[no-untyped-def]
    record, _, _ = hybrid_run
    booster = Path(record.need("artifact").path) / "hybrid" / "tabular_lightgbm.txt"
    booster.write_text(booster.read_text() + "\n")
    with pytest.raises(CorruptArtifactError, match="tabular_lightgbm.txt"):
        load_risk_model(booster.parent.parent)


def test_tabular_model_scores_as_the_lightgbm_baseline() -> None:
    spec = load_spec("german_credit")
    frame = pd.read_csv(spec.data_path)
    train, test = frame.iloc[:600], frame.iloc[600:700]
    stored = fit_tabular(train, spec, seed=3)
    again = TabularModel.from_files(*stored.to_files().values(), spec)  # type: ignore[call-arg]
    expected = predict_default(fit_baseline("lightgbm", train, seed=3, spec=spec), test, spec)
    np.testing.assert_allclose(again.predict(test), expected, atol=1e-12)
    # A missing value is what the baseline makes of it, not an error.
    assert np.isfinite(again.predict(with_missing(test, spec.categorical_columns[0]))).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [("magic", "unknown hybrid stacker 'magic'; choose one of none, logistic, convex"),
     ({"stacker": "logistic", "folds": 3}, "unknown key 'folds'"),
     ({"stacker": "logistic", "n_folds": 1}, "'n_folds'")],
)  # fmt: skip
def test_bad_hybrid_options_are_one_clear_error(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HybridConfig.parse(value)  # type: ignore[arg-type]


def _text_only_spec(folder: Path) -> Path:
    """German credit's spec cut down to the id, the target and one free-text column."""
    raw = yaml.safe_load(load_spec("german_credit").spec_path.read_text())
    keep = {raw["id_column"], raw["target"]["column"]}
    raw["columns"] = {k: v for k, v in raw["columns"].items() if k in keep}
    raw["columns"]["notes"] = {
        "type": "text",
        "label": "Notes",
        "description": "Free text.",
        "max_chars": 200,
    }
    raw.update(name="notes_only", protected=[], data="notes.csv")
    for key in ("synonyms", "text", "template", "field_order", "fairness"):
        raw.pop(key, None)
    path = folder / "notes_only.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_hybrid_on_a_data_set_without_tabular_features_is_refused_before_training(
    risk_app_home: Path,
) -> None:
    spec_path = _text_only_spec(risk_app_home)
    with pytest.raises(NoTabularFeaturesError, match="no tabular features"):
        check_hybrid("logistic", spec_path)
    assert check_hybrid("none", spec_path).enabled is False
    result = runner.invoke(
        app, ["train", "--dataset", str(spec_path), "--hybrid", "logistic"], terminal_width=300
    )
    assert (
        result.exit_code == 2 and "no tabular features" in result.output and "Traceback" not in result.output
    )
    result = runner.invoke(app, ["train", "--hybrid", "stacked"], terminal_width=300)
    assert result.exit_code == 2 and "unknown hybrid stacker 'stacked'" in result.output
    assert not list(paths.runs_dir().glob("*"))  # nothing started


def test_train_run_refuses_an_unknown_stacker_before_any_folder(small_file: Path) -> None:
    validation = workflow.ingest_and_validate(small_file)
    examples = workflow.prepare_examples(validation.valid, seed=7)
    with pytest.raises(ConfigError, match="unknown hybrid stacker"):
        workflow.train_run(validation.valid, examples, TrainConfig(epochs=1), hybrid="ridge", progress=False)
    assert not list(paths.runs_dir().glob("*"))
