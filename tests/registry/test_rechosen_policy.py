"""A credit policy chosen again on trained weights is a new registered version, not the old one.

Registration is keyed by the training run and the artifact version (which names the policy):
a retry finds its version, another policy on the same weights is a new version that names the
version it re-chose, and when that run holds the champion it replaces it without having to
"beat" it (the weights are the same), unless it ranks worse.
"""

from __future__ import annotations

from pathlib import Path

from risk_app.registry import mlflow_registry as reg
from risk_app.registry.mlflow_store import RECHOSEN_TAG
from risk_app.registry.reconcile import Registration, register_and_decide
from tests.scoring.doubles import save_double_artifact

NAME = "policy_model"


def _register(
    home: Path, run: str, policy: str, threshold: float, auc: float = 0.7, seed: int = 0
) -> Registration:
    # The same seed fits the same weights: only the cut-off differs between two policies.
    version = f"double-{run}-p{policy}"
    folder = save_double_artifact(home / version, version=version, threshold=threshold, seed=seed, n_train=99)
    metrics = {"roc_auc": auc, "brier": 0.2, "threshold": threshold}
    return register_and_decide(folder, run_key=run, artifact_key=version, metrics=metrics, model_name=NAME)


def test_a_policy_chosen_again_is_a_new_version_that_replaces_its_champion(risk_app_home: Path) -> None:
    first = _register(risk_app_home, "run-1", "a", threshold=0.30)
    assert reg.promote_if_better(NAME, first.version).promote
    retry = _register(risk_app_home, "run-1", "a", threshold=0.30)
    assert retry.reused and retry.version == first.version == "1"

    rechosen = _register(risk_app_home, "run-1", "b", threshold=0.45)
    assert (rechosen.reused, rechosen.version, rechosen.rechosen_from) == (False, "2", "1")
    version = reg._client().get_model_version(NAME, "2")
    assert version.tags[RECHOSEN_TAG] == "1"
    assert version.description == "policy re-chosen from version 1, same weights"
    # Same AUC as the champion: an ordinary challenger would stay challenger; this one is the
    # champion's model with the analyst's policy, so it replaces it, and the reason says so.
    assert "rechosen_from" in rechosen.decision.details and rechosen.decision.promote
    decision = reg.promote_if_better(NAME, "2", actor="test")
    assert decision.promote and "cut-off 0.3000 -> 0.4500" in decision.reason
    champion = reg.resolve_model("champion", name=NAME)
    assert champion.version == "2" and champion.metadata["threshold"] == 0.45


def test_another_run_with_the_same_auc_still_has_to_beat_the_champion(risk_app_home: Path) -> None:
    first = _register(risk_app_home, "run-1", "a", threshold=0.30)
    assert reg.promote_if_better(NAME, first.version).promote
    other = _register(risk_app_home, "run-2", "a", threshold=0.45, seed=1)
    assert other.rechosen_from is None and not other.decision.promote
    assert "is not better" in other.decision.reason


def test_a_rechosen_policy_that_ranks_worse_keeps_the_champion(risk_app_home: Path) -> None:
    first = _register(risk_app_home, "run-1", "a", threshold=0.30, auc=0.70)
    assert reg.promote_if_better(NAME, first.version).promote
    worse = _register(risk_app_home, "run-1", "isotonic", threshold=0.40, auc=0.69)
    assert worse.rechosen_from == "1" and not reg.promote_if_better(NAME, worse.version).promote
    assert reg.resolve_model("champion", name=NAME).version == "1"
