"""Issue 22's benchmark: does the LLM earn its place where there is free text, and in small books?

Over paired splits (seeds 0..n-1, `build_training_examples`' stratified 70/15/15, the same
splits `bench/gpu/text_inputs.py` wrote for the GPU), on Lending Club (free text) and on the
built-in German credit and UCI credit card sets, each split scores:

* classical models: `lightgbm` and `logistic` on the tabular columns; on Lending Club also the
  text-reading `logistic_tfidf`, `lightgbm_tfidf` and `lightgbm_embeddings`
  (`risk_app.evaluate.text_baselines`), and for the ablation TF-IDF and MiniLM embeddings of
  the text alone under a logistic regression (`tfidf_text`, `embeddings_text`);
* LLM-based: `frozen:<base>:<variant>` — a head on frozen features of a real base, chosen on
  validation (bench/frozen_heads.py), the variant being the whole serialization (`full`) or the
  free text alone (`text`); `hybrid:<...>` — that head stacked with LightGBM on the tabular
  columns (risk_app/evaluate/hybrid.py); `ft:<tag>` — a base fine-tuned on the GPU
  (bench/gpu/llm_text.py; learning rate and epoch chosen on validation; splits where it ran).

`--add-ft-to <stored results>` is the cheap path for fine-tuning runs that came back later: it
adds the `ft:` rows and their hybrids to the stored splits (all training rows, or the curve point a
run trained at: `llm_text.py finetune --train-rows`), after checking that LightGBM reproduces its
stored test AUC on each, and recomputes nothing else.

Learning curves repeat the split with the training rows cut to a stratified, seeded subset of
100, 250, 500, 1,000 rows (validation and test unchanged). Every paired comparison gives the
mean test-AUC difference, the plain 95 % t interval and the Nadeau-Bengio corrected one
(variance x (1/J + n_test/n_train)). Features must be in the cache already (computed on the
GPU and imported with `bench/gpu/llm_text.py import`); a missing text would be computed on the
CPU, slowly.

    python bench/text_accuracy.py --inputs .carry/a/inputs.json \
        --lc-spec docs/examples/lendingclub_2014_jan.yaml --ft .carry/results --json text-accuracy.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.frozen_heads import paired_difference, precompute  # noqa: E402
from bench.gpu.text_inputs import subsample  # noqa: E402
from risk_app.atomic import atomic_write_json  # noqa: E402

LAYERS = ["last", "middle"]
TEXT_CLASSICAL = ("logistic_tfidf", "lightgbm_tfidf", "lightgbm_embeddings")
VARIANTS = {
    "lc": {"full": "lc_full", "text": "lc_text"},
    "german": {"full": "german"},
    "uci": {"full": "uci"},
}
_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def text_only_rows(spec: Any, frames: dict[str, pd.DataFrame], y: dict[str, np.ndarray], seed: int) -> dict:
    """Ablation: TF-IDF and MiniLM embeddings of the free text alone, each under a logistic regression."""
    from sklearn.linear_model import LogisticRegressionCV

    from risk_app.evaluate.text_baselines import text_of, tfidf_vectorizer
    from risk_app.models.embed import load_sentence_encoder

    texts = {s: text_of(f, spec) for s, f in frames.items()}
    out = {}
    vec = tfidf_vectorizer().fit(texts["train"])
    x = {s: vec.transform(t) for s, t in texts.items()}
    model = LogisticRegressionCV(Cs=4, cv=3, scoring="roc_auc", max_iter=2000, random_state=seed)
    model.fit(x["train"], y["train"])
    out["tfidf_text"] = (model.predict_proba(x["validation"])[:, 1], model.predict_proba(x["test"])[:, 1])
    try:
        encoder = load_sentence_encoder()
    except Exception as exc:  # noqa: BLE001 - the embeddings row is skipped with its reason
        log(f"  embeddings_text skipped: {exc}")
        return out
    e = {s: encoder.embed(t.tolist()) for s, t in texts.items()}
    model = LogisticRegressionCV(Cs=4, cv=3, scoring="roc_auc", max_iter=2000, random_state=seed)
    model.fit(e["train"], y["train"])
    out["embeddings_text"] = (
        model.predict_proba(e["validation"])[:, 1],
        model.predict_proba(e["test"])[:, 1],
    )
    return out


def finetuned_rows(  # type: ignore[no-untyped-def]
    records: list[dict], dataset: str, seed: int, y_val: np.ndarray, split: dict[str, list[str]],
    n_train: int | None = None,
):  # fmt: skip
    """{ft:<tag>: (val P, test P, info)} for this split and training size (`n_train`, None = all rows;
    a run's `train_rows`): the learning rate with the best validation AUC (the epoch was chosen by
    the trainer on validation too), temperature-calibrated on validation. A run that recorded its
    training ids must have trained on this split's rows (`split["train"]`, already cut to the
    curve point's subset): the pairing with the classical models rests on it."""
    from risk_app.evaluate.calibration import fit_calibrator

    out = {}
    by_tag: dict[str, list[dict]] = {}
    val_ids, test_ids = split["validation"], split["test"]
    for r in records:
        if (r["seed"] == seed and "p_val" in r and r["variant"].split("_")[0] == dataset
                and r.get("train_rows") == n_train):  # fmt: skip
            if "train_ids" in r and r["train_ids"] != split["train"]:
                raise SystemExit(f"{dataset} split {seed}, {n_train} rows: run {r['tag']} (lr {r['lr']}) "
                                 "trained on other rows than this curve point's subset")  # fmt: skip
            by_tag.setdefault(r["tag"], []).append(r)
    for tag, runs in by_tag.items():
        best = max(runs, key=lambda r: auc(y_val, np.array([r["p_val"][i] for i in val_ids])))
        p_val = np.array([best["p_val"][i] for i in val_ids])
        p_test = np.array([best["p_test"][i] for i in test_ids])
        cal = fit_calibrator("temperature", y_val, p_val)  # type: ignore[arg-type]
        info = {"lr": best["lr"], "best_epoch": best["best_epoch"], "grid": sorted(r["lr"] for r in runs),
                "val_auc_per_epoch": best.get("val_auc_per_epoch")}  # fmt: skip
        out[f"ft:{tag}"] = (cal.transform(p_val), cal.transform(p_test), info)
    return out


def run_split(
    study: dict[str, Any], dataset: str, seed: int, n_train: int | None, args: argparse.Namespace
) -> dict:
    from bench.frozen_heads import frozen_rows
    from risk_app.evaluate.baselines import fit_baseline, predict_default
    from risk_app.evaluate.hybrid import fit_hybrid

    spec, valid, labels = study["specs"][dataset], study["valid"][dataset], study["labels"][dataset]
    split = dict(study["splits"][dataset][seed])
    y_train_all = np.array([labels[i] for i in split["train"]])
    split["train"] = subsample(split["train"], y_train_all, n_train, seed)
    frames = {s: valid.loc[ids].reset_index(drop=True) for s, ids in split.items()}
    y = {s: np.array([labels[i] for i in ids]) for s, ids in split.items()}
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    info: dict[str, Any] = {}
    for name in ("lightgbm", "logistic"):
        model = fit_baseline(name, frames["train"], seed=seed, spec=spec)  # type: ignore[arg-type]
        scores[name] = (
            predict_default(model, frames["validation"], spec),
            predict_default(model, frames["test"], spec),
        )
    if spec.text_columns and not args.add_ft_to:
        from risk_app.evaluate.text_baselines import score_text_baselines

        text_scores, notes = score_text_baselines(
            frames["train"], frames["validation"], frames["test"], seed=seed, spec=spec
        )
        scores |= text_scores
        info["notes"] = notes
        if args.ablation:
            scores |= text_only_rows(spec, frames, y, seed)
    for base, variant in args.frozen:
        short, key = base.split("-")[-1], VARIANTS[dataset].get(variant)
        if key is not None:
            features, row_of = study["features"][(base, key)]
            texts = {s: [study["texts"][key][i] for i in ids] for s, ids in split.items()}
            _raw, p_val, p_test, head, _sec = frozen_rows(
                base, features, row_of, texts, y, seed=seed, calibration="temperature", heads=("linear",)
            )
            name = f"frozen:{short}:{variant}"
            scores[name], info[name] = (p_val, p_test), head
    for name, (p_val, p_test, ft_info) in finetuned_rows(
        study["ft"], dataset, seed, y["validation"], split, n_train
    ).items():
        scores[name], info[name] = (p_val, p_test), ft_info
    for name in [n for n in scores if n.startswith(("frozen:", "ft:"))]:
        hybrid = fit_hybrid(
            y["validation"], scores[name][0], scores["lightgbm"][0], kind="logistic", seed=seed
        )
        scores["hybrid:" + name.split(":", 1)[1]] = (
            hybrid.val_oof,
            hybrid.predict(scores[name][1], scores["lightgbm"][1]),
        )
    result = {
        name: {"test_auc": auc(y["test"], p[1]), "val_auc": auc(y["validation"], p[0])}
        for name, p in scores.items()
    }
    return {
        "seed": seed,
        "n_train": len(split["train"]),
        "n_test": len(split["test"]),
        "auc": result,
        "info": info,
    }


def llm_based(name: str) -> bool:
    return name.startswith(("frozen:", "hybrid:", "ft:"))


def summarize(per_seed: list[dict]) -> dict[str, Any]:
    """Mean and std of test AUC per model, over the splits where every model of the table ran."""
    names = sorted({n for s in per_seed for n in s["auc"]})
    table = {}
    for name in names:
        values = [s["auc"][name]["test_auc"] for s in per_seed if name in s["auc"]]
        seeds = [s["seed"] for s in per_seed if name in s["auc"]]
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        table[name] = {"mean": float(np.mean(values)), "std": std, "n": len(values), "seeds": seeds,
                       "values": [round(v, 5) for v in values]}  # fmt: skip
    return table


def compare(per_seed: list[dict], a: str, b: str) -> dict[str, Any]:
    """Paired test-AUC difference a - b over the splits where both ran, with both 95 % intervals."""
    pairs = [
        (s["auc"][a]["test_auc"], s["auc"][b]["test_auc"], s)
        for s in per_seed
        if a in s["auc"] and b in s["auc"]
    ]
    if not pairs:
        return {}
    n_train, n_test = pairs[0][2]["n_train"], pairs[0][2]["n_test"]
    total = n_train + n_test
    d = paired_difference([p[0] for p in pairs], [p[1] for p in pairs],
                          test_fraction=n_test / total, train_fraction=n_train / total)  # fmt: skip
    return {"a": a, "b": b, **d}


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, each as the comparison that decides it."""
    out = []
    lc = results.get("lc", {}).get("all")
    if lc:
        table = summarize(lc)
        text_classical = [
            n for n in ("logistic_tfidf", "lightgbm_tfidf", "lightgbm_embeddings") if n in table
        ]
        best_classical = max(text_classical, key=lambda n: table[n]["mean"])
        full = [n for n in table if llm_based(n) and table[n]["n"] == len(lc)]
        best_llm = max(full, key=lambda n: table[n]["mean"])
        alone = [n for n in full if not n.startswith("hybrid:")]
        best_alone = max(alone, key=lambda n: table[n]["mean"])
        out.append({"goal": "LC: best LLM-based above best text-reading classical, corrected CI above 0",
                    **compare(lc, best_llm, best_classical)})  # fmt: skip
        out.append({"goal": "LC: LLM alone within 0.01 of the best text-reading classical",
                    **compare(lc, best_alone, best_classical)})  # fmt: skip
    for dataset, by_size in results.items():  # bf16 vs fp32 fine-tuning: ft:<x>_bf16 against ft:<x>_fp32
        rows = by_size.get("all") or []
        names = {n for s in rows for n in s["auc"] if n.startswith("ft:") and n.endswith("_bf16")}
        for name in sorted(names):
            twin = name[: -len("_bf16")] + "_fp32"
            if any(twin in s["auc"] for s in rows):
                out.append({"goal": f"{dataset}: bf16 fine-tuning within noise of fp32 (interval holds 0)",
                            **compare(rows, name, twin)})  # fmt: skip
    for dataset in ("german", "uci"):
        for size in ("100", "250"):
            rows = results.get(dataset, {}).get(size)
            if not rows:
                continue
            table = summarize(rows)
            full = [n for n in table if llm_based(n) and table[n]["n"] == len(rows)]  # run on every split
            best = max(full, key=lambda n: table[n]["mean"])
            out.append({"goal": f"{dataset}, {size} training rows: best LLM-based above LightGBM",
                        **compare(rows, best, "lightgbm")})  # fmt: skip
    return out


def render(results: dict[str, dict[str, list]]) -> str:
    """Markdown: per data set the table of all rows (mean ± std of test AUC, splits), the paired
    comparisons with LightGBM and with the best text-reading classical model, and the goals."""
    lines: list[str] = []
    for dataset, by_size in results.items():
        sizes = sorted(by_size, key=lambda k: (k == "all", int(k) if k.isdigit() else 0))
        tables = {size: summarize(rows) for size, rows in by_size.items()}
        names = sorted({n for t in tables.values() for n in t}, key=lambda n: (llm_based(n), n))
        lines += [f"### {dataset}: test ROC AUC by training rows", "",
                  "| model | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]  # fmt: skip
        for name in names:
            cells = []
            for size in sizes:
                row = tables[size].get(name)
                cells.append("" if row is None else f"{row['mean']:.4f} ± {row['std'] or 0:.4f} ({row['n']})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Mean ± std over splits (number of splits in brackets).", ""]
        for size in sizes:
            rows, table = by_size[size], tables[size]
            text_classical = [n for n in TEXT_CLASSICAL if n in table]
            refs = ["lightgbm"] + (
                [max(text_classical, key=lambda n: table[n]["mean"])] if text_classical else []
            )
            head = "| model | reference | mean | 95 % CI (plain) | 95 % CI (Nadeau–Bengio) | above | splits |"
            lines += [f"Paired differences, {dataset}, {size} training rows (model − reference, test AUC):",
                      "", head, "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
            for name in [n for n in table if llm_based(n)]:
                for ref in refs:
                    d = compare(rows, name, ref)
                    if "ci_low" in d:
                        plain, nb = (
                            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
                            f"[{d['nb_low']:+.4f}, {d['nb_high']:+.4f}]",
                        )
                        lines.append(
                            f"| {name} | {ref} | {d['mean']:+.4f} | {plain} | {nb} | {d['wins']} | {d['n']} |"
                        )
            lines.append("")
    lines += [
        "### Goals",
        "",
        "| goal | model | reference | mean | corrected 95 % CI | splits |",
        "|---|---|---|---:|---:|---:|",
    ]
    for g in verdicts(results):
        if "nb_low" in g:
            lines.append(f"| {g['goal']} | {g['a']} | {g['b']} | {g['mean']:+.4f} | "
                         f"[{g['nb_low']:+.4f}, {g['nb_high']:+.4f}] | {g['n']} |")  # fmt: skip
    return "\n".join(lines)


def load_study(args: argparse.Namespace) -> dict[str, Any]:
    from bench.gpu.text_inputs import load_valid

    inputs = json.loads(Path(args.inputs).read_text(encoding="utf-8"))
    study: dict[str, Any] = {"texts": inputs["texts"], "labels": inputs["labels"], "splits": inputs["splits"],
                             "specs": {}, "valid": {}, "features": {}, "ft": []}  # fmt: skip
    for dataset, ref in (("lc", args.lc_spec), ("german", "german_credit"), ("uci", "uci_credit_card")):
        spec, valid = load_valid(ref, args.lc_data if dataset == "lc" else None)
        study["specs"][dataset] = spec
        study["valid"][dataset] = valid.set_index(valid[spec.id_column].astype(str), drop=False)
    for base, variant in args.frozen:
        for dataset in args.datasets:
            for key in [VARIANTS[dataset][variant]] if variant in VARIANTS[dataset] else []:
                texts = list(dict.fromkeys(inputs["texts"][key].values()))
                features = precompute(
                    base, texts, LAYERS, precision="bf16", max_length=512, batch_size=8, log=log
                )
                study["features"][(base, key)] = (features, {t: i for i, t in enumerate(texts)})
    for path in sorted(Path(args.ft).glob("FT-*.jsonl")) if args.ft else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            study["ft"].append(json.loads(line) | {"tag": path.stem[3:]})
    return study


def add_finetuned(study: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, list]]:
    """The cheap path for fine-tuning runs that came back after the CPU benchmark: on every split of the
    stored results (`--add-ft-to`) at a training size some run trained at (all rows, or a learning-curve
    point: a run's `train_rows`), score only LightGBM, logistic and the `ft:` runs with their hybrids,
    check that LightGBM's test AUC is the stored one (same split, same rows, same model), and add the
    new rows to that split. Text baselines and frozen heads are not recomputed."""
    merged: dict[str, dict[str, list]] = {}
    for path in args.add_ft_to:
        for dataset, by_size in json.loads(Path(path).read_text(encoding="utf-8"))["results"].items():
            merged.setdefault(dataset, {}).update(by_size)
    tags = {"ft:" + r["tag"] for r in study["ft"]} | {"hybrid:" + r["tag"] for r in study["ft"]}
    sizes = {"all" if r.get("train_rows") is None else str(r["train_rows"]) for r in study["ft"]}
    for dataset in [d for d in args.datasets if d in merged]:
        for size, row in [(k, r) for k in merged[dataset] if k in sizes for r in merged[dataset][k]]:
            fresh = run_split(study, dataset, row["seed"], None if size == "all" else int(size), args)
            stored, now = row["auc"]["lightgbm"]["test_auc"], fresh["auc"]["lightgbm"]["test_auc"]
            if abs(stored - now) > 1e-9:
                raise SystemExit(f"{dataset} {size} split {row['seed']}: LightGBM test AUC {now:.6f}, stored "
                                 f"{stored:.6f}: the splits or the code differ, rerun in full")  # fmt: skip
            added = sorted(n for n in fresh["auc"] if n in tags)
            row["auc"] |= {n: fresh["auc"][n] for n in added}
            row["info"] |= {n: fresh["info"][n] for n in added if n in fresh["info"]}
            log(
                f"{dataset} {size} seed {row['seed']}: LightGBM as stored ({now:.4f}); "
                f"added {', '.join(added)}"
            )
    return merged


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", default=str(ROOT / ".carry" / "a" / "inputs.json"))
    p.add_argument("--lc-spec", required=True)
    p.add_argument("--lc-data", default=str(ROOT.parent / "shared" / "data" / "lendingclub_2014_jan.csv"))
    p.add_argument("--ft", help="folder of FT-*.jsonl files returned by bench/gpu/llm_text.py finetune")
    p.add_argument(
        "--frozen",
        default="qwen2.5-coder-0.5b:full,qwen2.5-coder-0.5b:text,qwen2.5-coder-1.5b:full",
        help="frozen-feature heads as base:variant (full = whole serialization, text = free text alone)",
    )
    p.add_argument("--datasets", default="lc,german,uci")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument(
        "--curve-seeds", default="100:20,250:20,500:10,1000:10", help="size:splits of the learning curve"
    )
    p.add_argument("--no-ablation", dest="ablation", action="store_false")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", required=True, help="results file (written as splits finish)")
    p.add_argument("--add-ft-to", nargs="*", default=[],
                   help="stored results files: add the --ft runs to their splits (all rows)")  # fmt: skip
    p.add_argument("--render", nargs="*", help="print the markdown tables of these results files and stop")
    args = p.parse_args()
    if args.render is not None:
        merged: dict[str, dict[str, list]] = {}
        for path in [args.json, *args.render]:
            for dataset, by_size in json.loads(Path(path).read_text(encoding="utf-8"))["results"].items():
                merged.setdefault(dataset, {}).update(by_size)
        print(render(merged))
        return
    args.frozen = [] if args.add_ft_to else [tuple(x.split(":")) for x in args.frozen.split(",") if x]
    args.datasets = [d for d in args.datasets.split(",") if d]
    import torch

    torch.set_num_threads(args.threads)
    study = load_study(args)
    results: dict[str, dict[str, list]] = add_finetuned(study, args) if args.add_ft_to else {}
    for dataset in [] if args.add_ft_to else args.datasets:
        results[dataset] = {}
        curve = [tuple(map(int, x.split(":"))) for x in args.curve_seeds.split(",") if x]
        plan = ([("all", None, args.seeds)] if args.seeds else []) + [(str(n), n, k) for n, k in curve]
        for label, n_train, seeds in plan:
            rows = results[dataset].setdefault(label, [])
            for seed in range(seeds):
                rows.append(run_split(study, dataset, seed, n_train, args))
                best = max(rows[-1]["auc"].items(), key=lambda kv: kv[1]["test_auc"])
                atomic_write_json(args.json, {"results": results, "command": " ".join(sys.argv)})
                log(f"{dataset} {label} seed {seed}: lightgbm {rows[-1]['auc']['lightgbm']['test_auc']:.4f}, "
                    f"best {best[0]} {best[1]['test_auc']:.4f}")  # fmt: skip
            atomic_write_json(args.json, {"results": results, "command": " ".join(sys.argv)})
    summary = {d: {size: summarize(rows) for size, rows in by_size.items()} for d, by_size in results.items()}
    atomic_write_json(args.json, {"command": " ".join(sys.argv), "results": results, "summary": summary,
                                  "goals": verdicts(results)})  # fmt: skip
    for goal in verdicts(results):
        log(json.dumps(goal))


if __name__ == "__main__":
    main()
