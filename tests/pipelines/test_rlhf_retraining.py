"""The RLHF retraining path from the Dagster UI: a typed launchpad that always retrains with rlhf
on the labeled book, its reward from the override ledger (issue 24 deliverable 6). The whole
job runs in the simulated year (tests/pipelines/test_outcome_loop.py)."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs

JOB = "rlhf_retraining_job"


def _ops(run_config: dict) -> dict:
    return dg.validate_run_config(defs.resolve_job_def(JOB), run_config)["ops"]


def test_the_launchpad_retrains_with_rlhf_on_the_book_from_the_override_ledger() -> None:
    ops = _ops({"training": {"epochs": 1}, "rlhf": {"min_feedback_pairs": 20, "reward": {"epochs": 3}}})
    fine_tune = ops["fine_tuned_model"]["config"]
    assert fine_tune["method"] == "rlhf" and fine_tune["epochs"] == 1
    params = fine_tune["method_params"]
    assert params["feedback_source"] == "override_ledger" and params["min_feedback_pairs"] == 20
    assert params["reward"]["epochs"] == 3
    assert ops["raw_applications"]["config"]["source"] == "book"
    # Nothing set: still rlhf from the ledger, with rlhf's own defaults.
    defaults = _ops({})["fine_tuned_model"]["config"]
    assert defaults["method"] == "rlhf" and defaults["method_params"]["min_feedback_pairs"] == 50


@pytest.mark.parametrize(
    "bad",
    [
        {"rlhf": {"feedback_source": "file"}},  # the job is the ledger's
        {"training": {"method": "lora"}},  # and rlhf's
        {"rlhf": {"min_feedback_pairs": "many"}},
        {"unknown": 1},
    ],
)
def test_the_launchpad_is_typed_and_refuses_what_the_job_decides(bad: dict) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError):
        _ops(bad)
