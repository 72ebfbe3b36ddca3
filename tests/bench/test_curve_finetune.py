"""Fine-tuning at a learning-curve point (issue 22, small books): `llm_text.py finetune --train-rows`
trains on the curve's subset of each split, and `bench/text_accuracy.py` pairs that run with the
classical models of the same point only when the rows are the same. One tiny-model run on the CPU."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from bench import text_accuracy
from bench.gpu import llm_text, text_inputs


def _inputs(n: int = 120, seeds: int = 2) -> dict:
    rng = np.random.default_rng(0)
    ids = [f"a{i}" for i in range(n)]
    labels = {i: int(k % 3 == 0) for k, i in enumerate(ids)}
    texts = {i: f"amount is {rng.integers(100, 9000)}. purpose is {'car' if labels[i] else 'tv'}."
             for i in ids}  # fmt: skip
    splits = []
    for seed in range(seeds):
        order = [ids[k] for k in np.random.default_rng(seed).permutation(n)]
        splits.append({"train": order[:80], "validation": order[80:100], "test": order[100:]})
    return {"texts": {"german": texts}, "labels": {"german": labels}, "splits": {"german": splits}}


def test_subsets_are_the_curve_points_rows() -> None:
    data = _inputs()
    text_inputs.add_subsets(data, [30, 500])
    labels = data["labels"]["german"]
    for seed, split in enumerate(data["splits"]["german"]):
        y = np.array([labels[i] for i in split["train"]])
        rows = data["subsets"]["german"]["30"][seed]
        assert rows == text_accuracy.subsample(split["train"], y, 30, seed)  # the CPU benchmark's rows
        assert len(rows) == 30 and set(rows) <= set(split["train"])
        assert abs(sum(labels[i] for i in rows) - 30 * y.mean()) <= 1  # stratified: the split's default rate
        assert data["subsets"]["german"]["500"][seed] == split["train"]  # bigger than the split: all rows
    assert data["subsets"]["german"]["30"][0] != data["subsets"]["german"]["30"][1]


def _record(seed: int, lr: float, train_rows: int | None, train_ids: list[str] | None, split: dict) -> dict:
    rng = np.random.default_rng(int(lr * 1e6) + seed)
    r = {"seed": seed, "lr": lr, "variant": "german", "tag": "gc100_bf16", "best_epoch": 2,
         "p_val": {i: float(rng.random()) for i in split["validation"]},
         "p_test": {i: float(rng.random()) for i in split["test"]}}  # fmt: skip
    if train_rows is not None:
        r |= {"train_rows": train_rows, "train_ids": train_ids}
    return r


def test_finetuned_rows_pair_by_training_size_and_check_the_rows() -> None:
    data = _inputs()
    text_inputs.add_subsets(data, [30])
    split = dict(data["splits"]["german"][0]) | {"train": data["subsets"]["german"]["30"][0]}
    y_val = np.array([data["labels"]["german"][i] for i in split["validation"]])
    records = [_record(0, 1e-5, None, None, split), _record(0, 3e-5, 30, split["train"], split),
               _record(0, 1e-5, 30, split["train"], split)]  # fmt: skip
    at_30 = text_accuracy.finetuned_rows(records, "german", 0, y_val, split, 30)
    assert list(at_30) == ["ft:gc100_bf16"] and at_30["ft:gc100_bf16"][2]["grid"] == [1e-5, 3e-5]
    all_rows = text_accuracy.finetuned_rows(records, "german", 0, y_val, split, None)
    assert all_rows["ft:gc100_bf16"][2]["grid"] == [1e-5]  # the all-rows run only
    assert text_accuracy.finetuned_rows(records, "german", 0, y_val, split, 100) == {}
    other = dict(split) | {"train": data["splits"]["german"][0]["train"][:30]}
    with pytest.raises(SystemExit, match="trained on other rows"):
        text_accuracy.finetuned_rows(records, "german", 0, y_val, other, 30)


def test_add_ft_reaches_the_curve_points_its_runs_trained_at(monkeypatch, tmp_path: Path) -> None:
    def row(seed: int) -> dict:
        return {"seed": seed, "n_train": 100, "n_test": 150, "info": {},
                "auc": {"lightgbm": {"test_auc": 0.7, "val_auc": 0.7}}}  # fmt: skip

    stored = {"results": {"german": {"100": [row(0)], "250": [row(0)], "all": [row(0)]}}}
    (tmp_path / "gu.json").write_text(json.dumps(stored))
    calls: list[int | None] = []

    def fresh(study, dataset, seed, n_train, args):  # noqa: ANN001, ANN202
        calls.append(n_train)
        return row(seed) | {"auc": {"lightgbm": {"test_auc": 0.7, "val_auc": 0.7},
                                    "ft:gc100_bf16": {"test_auc": 0.72, "val_auc": 0.7}}}  # fmt: skip

    monkeypatch.setattr(text_accuracy, "run_split", fresh)
    study = {"ft": [{"tag": "gc100_bf16", "train_rows": 100}]}
    args = argparse.Namespace(add_ft_to=[str(tmp_path / "gu.json")], datasets=["german"])
    merged = text_accuracy.add_finetuned(study, args)
    assert calls == [100]  # only the size the runs trained at; 250 and all rows untouched
    assert "ft:gc100_bf16" in merged["german"]["100"][0]["auc"]
    assert "ft:gc100_bf16" not in merged["german"]["all"][0]["auc"]


def test_small_book_goal_takes_the_best_model_run_on_every_split() -> None:
    rows = [{"seed": s, "n_train": 100, "n_test": 150,
             "auc": {k: {"test_auc": v, "val_auc": v} for k, v in
                     ({"lightgbm": 0.70 + s / 100, "hybrid:0.5b:full": 0.71 + s / 100}
                      | ({"ft:gc100_bf16": 0.9} if s < 2 else {})).items()}}
            for s in range(5)]  # fmt: skip
    goals = text_accuracy.verdicts({"german": {"100": rows}})
    (goal,) = [g for g in goals if "100 training rows" in g["goal"]]
    assert (goal["a"], goal["n"]) == ("hybrid:0.5b:full", 5)  # not the run on 2 splits with the higher mean


def test_finetune_at_a_curve_point_trains_on_its_rows_and_records_them(tmp_path: Path) -> None:
    data = _inputs()
    text_inputs.add_subsets(data, [30])
    (tmp_path / "inputs.json").write_text(json.dumps(data))
    args = argparse.Namespace(
        inputs=str(tmp_path / "inputs.json"), out=str(tmp_path / "out"), variant="german", seeds="0,1",
        lrs="1e-3", method="full", precision="fp32", base="tiny-qwen2", epochs=2, token_budget=0,
        pad_multiple=0, max_length=32, tag="gc30", device="cpu", train_rows=30, queue=None,
    )  # fmt: skip
    llm_text.finetune_queue(args)
    runs = [json.loads(x) for x in (tmp_path / "out" / "FT-gc30.jsonl").read_text().splitlines()]
    assert [r.get("error") for r in runs] == [None, None]
    for seed, r in enumerate(runs):
        split = data["splits"]["german"][seed]
        assert r["train_rows"] == 30 and r["train_ids"] == data["subsets"]["german"]["30"][seed]
        assert sorted(r["p_val"]) == sorted(split["validation"]) and len(r["val_auc_per_epoch"]) == 2
    del data["subsets"]  # an inputs file without them: the same function picks the same rows
    (tmp_path / "inputs.json").write_text(json.dumps(data))
    llm_text.finetune_queue(argparse.Namespace(**(vars(args) | {"seeds": "1", "tag": "again"})))
    again = json.loads((tmp_path / "out" / "FT-again.jsonl").read_text())
    assert again["train_ids"] == runs[1]["train_ids"]


@pytest.mark.parametrize("queue", sorted(Path(__file__).parents[2].glob("bench/gpu/text_queue*.json")))
def test_lease_queues_name_only_finetune_options(monkeypatch, queue: Path) -> None:
    base: list[argparse.Namespace] = []
    monkeypatch.setattr(llm_text, "finetune_queue", base.append)
    monkeypatch.setattr("sys.argv", ["llm_text.py", "finetune"])
    llm_text.main()
    options = set(vars(base[0])) - {"queue", "mode"}
    for job in json.loads(queue.read_text()):
        assert set(job) <= options, set(job) - options  # a misspelt key would be silently ignored
