"""The hybrid through Dagster: the credit_policy launchpad's `hybrid` field stacks the LLM with
LightGBM, and the packaged model is the hybrid; a typo in the field is refused by Dagster."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import ALL_ASSETS
from pipelines.resources import build_resources
from risk_app.hybrid.model import HybridRiskModel
from risk_app.registry.artifact import load_risk_model

TRAINING = ["dataset_spec", "raw_applications", "valid_applications", "quarantined_applications",
            "training_examples", "augmented_training_examples", "fine_tuned_model", "credit_policy",
            "model_evaluation", "packaged_model"]  # fmt: skip


def _run_config(small_file: Path, hybrid: str) -> dict:
    return {
        "ops": {
            "raw_applications": {"config": {"path": str(small_file)}},
            "fine_tuned_model": {"config": {"method": "lora", "epochs": 1, "max_length": 96}},
            "credit_policy": {"config": {"hybrid": hybrid}},
        }
    }


def test_launchpad_hybrid_field_packages_a_hybrid_model(small_file: Path, tiny_qwen2: Path) -> None:
    names = {a.key.to_user_string() for asset in ALL_ASSETS for a in asset.specs}
    selection = [name for name in TRAINING if name in names]
    result = dg.materialize(
        ALL_ASSETS, selection=selection, run_config=_run_config(small_file, "convex"),
        resources=build_resources(), raise_on_error=True, instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    policy = result.asset_materializations_for_node("credit_policy")[0].metadata
    assert policy["hybrid"].value == "convex" and 0.0 <= policy["hybrid_val_auc_oof"].value <= 1.0
    record = result.output_for_node("packaged_model")
    assert (
        record.need("hybrid").stacker["kind"] == "convex"
        and "llm_alone" in record.need("evaluation").baselines
    )
    assert isinstance(load_risk_model(record.need("artifact").path), HybridRiskModel)


def test_launchpad_refuses_an_unknown_stacker(small_file: Path) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match="hybrid"):
        dg.materialize(
            ALL_ASSETS, selection=["credit_policy"], run_config=_run_config(small_file, "ridge"),
            resources=build_resources(), instance=dg.DagsterInstance.ephemeral(),
        )  # fmt: skip
