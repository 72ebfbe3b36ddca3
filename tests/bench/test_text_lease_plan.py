"""The second text lease's plumbing (issue 22): the bf16-vs-fp32 goal of `bench/text_accuracy.py`
and `bench/gpu/llm_text.py finetune --queue`. No model is trained here."""

import argparse
import json
from pathlib import Path

import pytest

from bench import text_accuracy
from bench.gpu import llm_text


def _split(seed: int, aucs: dict[str, float]) -> dict:
    return {"seed": seed, "n_train": 700, "n_test": 150,
            "auc": {k: {"test_auc": v, "val_auc": v} for k, v in aucs.items()}}  # fmt: skip


def test_bf16_run_is_paired_with_its_fp32_twin() -> None:
    rows = [
        _split(
            s,
            {
                "lightgbm": 0.78,
                "ft:gc_bf16": 0.75 + 0.01 * s,
                "ft:gc_fp32": 0.74 + 0.01 * s + 0.002 * (s % 2),
            },
        )
        for s in range(5)
    ]
    goals = [g for g in text_accuracy.verdicts({"german": {"all": rows}}) if "bf16" in g["goal"]]
    assert len(goals) == 1
    g = goals[0]
    assert (g["a"], g["b"], g["n"]) == ("ft:gc_bf16", "ft:gc_fp32", 5)
    assert g["mean"] == pytest.approx(0.01 - 0.002 * 2 / 5)
    assert g["nb_low"] < g["ci_low"] <= g["mean"] <= g["ci_high"] < g["nb_high"]


def test_bf16_run_without_fp32_twin_gives_no_goal() -> None:
    rows = [_split(s, {"lightgbm": 0.78, "ft:lc_bf16": 0.7}) for s in range(3)]
    assert not [g for g in text_accuracy.verdicts({"german": {"all": rows}}) if "bf16" in g["goal"]]


@pytest.mark.parametrize("from_file", [False, True])
def test_queue_runs_each_job_with_its_overrides(monkeypatch, tmp_path: Path, from_file: bool) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(llm_text, "finetune", seen.append)
    jobs = [{"variant": "german", "precision": "fp32", "tag": "gc_fp32"}, {"seeds": "0,1", "tag": "lc_bf16"}]
    queue = json.dumps(jobs)
    if from_file:
        (tmp_path / "q.json").write_text(queue)
        queue = str(tmp_path / "q.json")
    base = argparse.Namespace(variant="lc_full", precision="bf16", seeds="0", tag="run", queue=queue)
    llm_text.finetune_queue(base)
    assert [(a.variant, a.precision, a.seeds, a.tag) for a in seen] == [
        ("german", "fp32", "0", "gc_fp32"),
        ("lc_full", "bf16", "0,1", "lc_bf16"),
    ]
    seen.clear()
    llm_text.finetune_queue(argparse.Namespace(**(vars(base) | {"queue": None})))
    assert [a.tag for a in seen] == ["run"]
