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


def test_add_ft_merges_only_the_finetuned_rows_and_checks_lightgbm(monkeypatch, tmp_path: Path) -> None:
    stored = {"results": {"lc": {"all": [_split(s, {"lightgbm": 0.67 + s / 100, "frozen:0.5b:full": 0.64})
                                         | {"info": {}} for s in range(2)]}}}  # fmt: skip
    (tmp_path / "lc.json").write_text(json.dumps(stored))
    lgbm = {0: 0.67, 1: 0.68}

    def fresh(study, dataset, seed, n_train, args):  # noqa: ANN001, ANN202
        assert n_train is None
        aucs = {"lightgbm": lgbm[seed], "frozen:0.5b:full": 0.5, "ft:lc_bf16": 0.62, "hybrid:lc_bf16": 0.68}
        return _split(seed, aucs) | {"info": {"ft:lc_bf16": {"lr": 1e-5}}}

    monkeypatch.setattr(text_accuracy, "run_split", fresh)
    study = {"ft": [{"tag": "lc_bf16"}]}
    args = argparse.Namespace(add_ft_to=[str(tmp_path / "lc.json")], datasets=["lc", "german"])
    merged = text_accuracy.add_finetuned(study, args)
    rows = merged["lc"]["all"]
    assert [sorted(r["auc"]) for r in rows] == [
        ["frozen:0.5b:full", "ft:lc_bf16", "hybrid:lc_bf16", "lightgbm"]
    ] * 2
    assert [r["auc"]["frozen:0.5b:full"]["test_auc"] for r in rows] == [0.64, 0.64]  # stored, not recomputed
    assert rows[1]["info"] == {"ft:lc_bf16": {"lr": 1e-5}}
    lgbm[1] = 0.69  # LightGBM does not reproduce its stored AUC: the splits or the code differ
    with pytest.raises(SystemExit, match="split 1: LightGBM test AUC 0.690000, stored 0.680000"):
        text_accuracy.add_finetuned(study, args)
