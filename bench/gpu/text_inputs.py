"""CPU side of the text lease: the serialized texts and the paired splits the GPU run needs.

Writes one JSON file (`--out`, default `.carry/a/inputs.json`, an ignored folder that travels
with `run`'s `carry`):

    {"texts": {variant: {application id: text}},
     "labels": {data set: {application id: 0/1}},
     "splits": {data set: [{"train": [ids], "validation": [ids], "test": [ids]}, ...]},
     "subsets": {data set: {"100": [[training ids of split 0], ...], "250": ...}}}

`subsets` are the learning curve's training rows (`--curve`, default 100,250), for fine-tuning
runs at a curve point (`llm_text.py finetune --train-rows`); `--add-subsets-to FILE` adds them
to an inputs file written before they existed, leaving everything else as it is.

Variants: `lc_full` (the Lending Club spec's whole serialization: tabular clauses and the free
texts), `lc_text` (the free-text columns alone), `german`, `uci` (the built-in data sets). The
splits are `build_training_examples(seed=s)`'s stratified 70/15/15 splits, seeds 0..n-1, the
same ones `bench/accuracy.py` and `bench/text_accuracy.py` use, so GPU predictions and CPU
models pair by split. The Lending Club file is read from `<repo>/../shared/data/` (never
copied into the repository); its spec is passed with `--lc-spec`.

    python bench/gpu/text_inputs.py --lc-spec docs/examples/lendingclub_2014_jan.yaml --seeds 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # appended: a PYTHONPATH checkout (e.g. one with newer text rules) wins
    sys.path.append(str(ROOT))

from risk_app.atomic import atomic_write_json  # noqa: E402

LC_FILE = ROOT.parent / "shared" / "data" / "lendingclub_2014_jan.csv"


def load_valid(spec_ref: str | None, data: str | None = None):  # type: ignore[no-untyped-def]
    """(spec, validated rows) of a data set."""
    from data_contracts.spec import load_spec
    from risk_app.data.load import load_applications
    from risk_app.data.validate import validate_applications

    spec = load_spec(spec_ref)
    source = data or str(spec.data_path)
    return spec, validate_applications(load_applications(source, spec=spec), source=source, spec=spec).valid


def splits_of(valid, spec, seeds: int) -> list[dict[str, list[str]]]:  # type: ignore[no-untyped-def]
    from risk_app.data.examples import build_training_examples

    out = []
    for seed in range(seeds):
        ex = build_training_examples(valid, seed=seed, spec=spec)
        out.append(
            {s: ex.loc[ex["split"] == s, "application_id"].tolist() for s in ("train", "validation", "test")}
        )
    return out


def subsample(ids: list[str], y, n: int | None, seed: int) -> list[str]:  # type: ignore[no-untyped-def]
    """A stratified, seeded subset of `n` training ids (all of them when n is None or too big): the
    learning curve's rows. `bench/text_accuracy.py` (CPU) and `bench/gpu/llm_text.py finetune
    --train-rows` (GPU) both call this, so a fine-tuning run and the classical models of a curve
    point train on the same rows; the GPU run records its ids and the CPU side checks them."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(ids):
        return ids
    keep, _ = train_test_split(np.arange(len(ids)), train_size=n, stratify=y, random_state=seed)
    return [ids[i] for i in sorted(keep)]


def add_subsets(result: dict, sizes: list[int]) -> None:
    """`result["subsets"][data set][str(n)]`: per split, the training ids of the curve point with `n`
    rows, from `result`'s own splits and labels (computed here, on the CPU, so the GPU side needs
    neither sklearn nor its version to agree)."""
    import numpy as np

    for dataset, splits in result["splits"].items():
        labels = result["labels"][dataset]
        result.setdefault("subsets", {})[dataset] = {
            str(n): [
                subsample(s["train"], np.array([labels[i] for i in s["train"]]), n, seed)
                for seed, s in enumerate(splits)
            ]  # fmt: skip
            for n in sizes
        }


def variant_texts(valid, spec, keep: list[str] | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Application id -> serialized text (all features, or only the fields in `keep`)."""
    from risk_app.data.serialize import serialize_frame

    exclude = () if keep is None else tuple(c for c in spec.feature_columns if c not in keep)
    texts = serialize_frame(valid.reset_index(drop=True), exclude=exclude, spec=spec)
    return dict(zip(valid[spec.id_column].astype(str), texts, strict=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lc-spec", help="the Lending Club spec file (needed unless --add-subsets-to)")
    p.add_argument("--lc-data", default=str(LC_FILE))
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / ".carry" / "a" / "inputs.json"))
    p.add_argument("--curve", default="100,250", help="training sizes of the curve points' subsets")
    p.add_argument("--add-subsets-to", help="an existing inputs file: add the subsets to it and stop")
    args = p.parse_args()
    sizes = [int(x) for x in args.curve.split(",") if x]
    if args.add_subsets_to:
        import json

        result = json.loads(Path(args.add_subsets_to).read_text(encoding="utf-8"))
        add_subsets(result, sizes)
        atomic_write_json(args.add_subsets_to, result)
        print({d: {n: len(v[0]) for n, v in by.items()} for d, by in result["subsets"].items()})
        return
    if not args.lc_spec:
        p.error("--lc-spec is needed to write the inputs")
    result: dict[str, dict] = {"texts": {}, "labels": {}, "splits": {}}
    lc_spec, lc = load_valid(args.lc_spec, args.lc_data)
    result["texts"]["lc_full"] = variant_texts(lc, lc_spec)
    result["texts"]["lc_text"] = variant_texts(lc, lc_spec, list(lc_spec.text_columns))
    for name, (spec, valid) in {
        "lc": (lc_spec, lc),
        "german": load_valid("german_credit"),
        "uci": load_valid("uci_credit_card"),
    }.items():
        if name != "lc":
            result["texts"][name] = variant_texts(valid, spec)
        ids = valid[spec.id_column].astype(str)
        result["labels"][name] = dict(zip(ids, valid["default"].astype(int).tolist(), strict=True))
        result["splits"][name] = splits_of(valid, spec, args.seeds)
    add_subsets(result, sizes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print({k: len(v) for k, v in result["texts"].items()}, "->", args.out)


if __name__ == "__main__":
    main()
