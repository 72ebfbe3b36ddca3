"""A credit policy re-chosen in Dagster reaches scoring, as a new registered version.

Exactly the analyst's path of issue 21: materialize training through registration, re-materialize
`credit_policy` and everything downstream with another objective, score a landing partition with
the champion. The decisions must follow the new cut-off, and the scores file, the scoring ledger
and MLflow must name the new version and its policy.

The deployed scorer is LightGBM (`hybrid: tabular_only`, fitted in `credit_policy` like the
calibration, so the re-choice is the same path): the tiny test LLM's calibrated PDs all sit at
the base rate, where two objectives choose cut-offs that differ only in float noise.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.resources import build_resources
from risk_app.registry.mlflow_registry import resolve_model
from risk_app.storage.scores import scoring_ledger

pytestmark = pytest.mark.slow

PARTITION = "batch.csv-000000000000"


def test_a_policy_rechosen_in_dagster_is_the_policy_scoring_uses(
    risk_app_home: Path, tiny_qwen2: Path
) -> None:
    frame = pd.read_csv(load_spec("german_credit").data_path).sample(260, random_state=5)
    train_file, batch_file = risk_app_home / "train.csv", risk_app_home / "batch.csv"
    frame.head(200).to_csv(train_file, index=False)
    frame.tail(60).to_csv(batch_file, index=False)
    assets, resources = [*ALL_ASSETS, *ALL_CHECKS], build_resources()
    instance = dg.DagsterInstance.ephemeral()
    partitioned = dg.AssetSelection.assets(*[a for a in ALL_ASSETS if a.partitions_def is not None])

    trained = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets("champion_model").upstream().required_multi_asset_neighbors(),
        run_config={
            "ops": {
                "raw_applications": {"config": {"path": str(train_file)}},
                "fine_tuned_model": {"config": {"method": "lora", "epochs": 1, "max_length": 64}},
                "credit_policy": {"config": {"hybrid": "tabular_only"}},
            }
        },
        resources=resources,
        instance=instance,
    )
    first = trained.output_for_node("champion_model")
    assert first.registration.version == 1 and first.registration.promoted
    assert first.policy.config.objective == "min_cost"

    # The analyst's re-choice: credit_policy and downstream, nothing retrained.
    policy = {"hybrid": "tabular_only", "objective": "target_approval", "target_approval_rate": 0.7}
    rechosen = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets("credit_policy").downstream() - partitioned,
        run_config={"ops": {"credit_policy": {"config": policy}}},
        resources=resources,
        instance=instance,
    )
    remade = {e.asset_key.to_user_string() for e in rechosen.get_asset_materialization_events()}
    assert "fine_tuned_model" not in remade and "registered_model" in remade
    second = rechosen.output_for_node("champion_model")
    old_cut, new_cut = first.policy.threshold, second.policy.threshold
    assert second.run_id == first.run_id and second.training.trained_dir == first.training.trained_dir
    assert (second.registration.version, second.registration.rechosen_from) == (2, 1)
    assert second.registration.promoted, second.registration.decision.reason
    assert second.policy.policy_id != first.policy.policy_id and new_cut != old_cut
    champion = resolve_model("champion", name="german_credit")
    assert champion.version == "2" and champion.metadata["threshold"] == pytest.approx(new_cut)

    output = risk_app_home / "scores.parquet"
    instance.add_dynamic_partitions("landing_files", [PARTITION])
    scored = dg.materialize(
        assets,
        selection=dg.AssetSelection.groups("scoring"),
        run_config={
            "ops": {
                "scoring_batch": {"config": {"input_path": str(batch_file)}},
                "scored_applications": {"config": {"output_path": str(output), "reason_codes": 0}},
            }
        },
        resources=resources,
        instance=instance,
        partition_key=PARTITION,
    )
    assert scored.success
    scores = pd.read_parquet(output)
    pd_ = scores["probability_of_default"]
    # The test can fail: the cut-offs differ and applicants are decided differently by the two.
    between = (pd_ >= min(old_cut, new_cut)) & (pd_ < max(old_cut, new_cut))
    assert abs(new_cut - old_cut) > 0.01 and between.sum() >= 3, (old_cut, new_cut, pd_.describe())
    assert (scores["decision"] == "decline").tolist() == (pd_ >= new_cut).tolist()
    assert set(scores["model_version"]) == {"german_credit/2"}
    assert set(scores["policy_id"]) == {second.policy.policy_id}
    assert set(scores["policy_objective"]) == {"target_approval"}
    assert scores["policy_cutoff"].eq(new_cut).all()

    [batch] = scoring_ledger().to_dict("records")
    assert (batch["model_version"], batch["policy_id"], batch["policy_objective"]) == (
        "german_credit/2", second.policy.policy_id, "target_approval",
    )  # fmt: skip
    assert batch["policy_cutoff"] == pytest.approx(new_cut)
