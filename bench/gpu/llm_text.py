"""GPU side of the text lease (issue 22): the bf16 check, frozen features, fine-tuning runs.

Everything a model is judged on is computed back on the CPU machine (`bench/text_accuracy.py`);
this script only does what needs the GPU and returns plain files:

* `diagnose` — the cause of the bf16 NaN on the real base: one padded German-credit batch of
  width 192 (64 mod 128) through the 0.5B under bf16 autocast, forward + backward, counting
  non-finite gradients with torch's default attention backends, then inside
  `speed.training_attention` (no cuDNN attention), then in fp32 as the control.
* `features` — pooled frozen features (`risk_app.finetune.features.cached_features`, the same
  code and cache key as on the CPU) of every text in `inputs.json`, written as float16 chunks
  `F-<base>-L<layer>-<pooling>-<i>.npy` (under 16 MiB each) plus `F-<base>-keys.json`.
* `finetune` — `train_classifier` on the given splits of one text variant, over a grid of
  learning rates, best epoch chosen on validation by the trainer; one JSON line per run with
  the validation and test P(default) by application id (`FT-<tag>.jsonl`). `--train-rows N`
  trains on the learning curve's stratified subset of N training rows of each split
  (`text_inputs.subsample`, the rows the CPU benchmark's classical models get at that point) and
  records the ids, so the CPU side pairs the run with that curve point and checks the rows.

Inputs come from `bench/gpu/text_inputs.py`. Run from the repository root with the project on
PYTHONPATH; bench/gpu/README.md has the lease plan.

    python3 bench/gpu/llm_text.py diagnose --inputs .carry/a/inputs.json
    python3 bench/gpu/llm_text.py features --base qwen2.5-coder-0.5b --out /root/keep/out
    python3 bench/gpu/llm_text.py finetune --variant lc_full --seeds 0,1,2 --lrs 1e-5,3e-5
    python3 bench/gpu/llm_text.py finetune --variant german --precision fp32 --pad-multiple 64 --tag gc_fp32
    python3 bench/gpu/llm_text.py finetune --variant german --train-rows 100 --epochs 6 --token-budget 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHUNK_BYTES = 15 * 2**20


def _inputs(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _nonfinite_grads(model: Any) -> int:
    return sum(int((~p.grad.isfinite()).sum()) for p in model.parameters() if p.grad is not None)


def diagnose(args: argparse.Namespace) -> None:
    import torch

    from risk_app.finetune.predict import encode_texts, pad_batch
    from risk_app.finetune.speed import training_attention
    from risk_app.models.loader import load_classifier

    data = _inputs(args.inputs)
    labels = data["labels"]["german"]
    torch.manual_seed(0)
    model, tok = load_classifier(args.base, device="cuda")
    ids = list(data["texts"]["german"])[:64]
    seqs = encode_texts(tok, [data["texts"]["german"][i] for i in ids], 256)
    keep = [i for i, s in enumerate(seqs) if len(s) <= 192][:16]
    batch = {k: v.cuda() for k, v in pad_batch(tok, [seqs[i] for i in keep], multiple=192).items()}
    target = torch.tensor([labels[ids[i]] for i in keep], device="cuda")
    padded = int((batch["attention_mask"] == 0).sum())
    print(f"batch {tuple(batch['input_ids'].shape)}, padded positions {padded}")
    for name, dtype, guard in (
        ("bf16, default backends", torch.bfloat16, False),
        ("bf16, training_attention", torch.bfloat16, True),
        ("fp32, default backends", None, False),
    ):
        model.zero_grad(set_to_none=True)
        ctx = training_attention() if guard else contextlib.nullcontext()
        with ctx, torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(**batch).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
            loss.backward()
        print(f"{name}: loss {loss.item():.4f}, non-finite gradient entries {_nonfinite_grads(model):,}")
    try:  # the CUDA test's synthetic sink step, with and without the guard
        from tests.finetune.test_speed import _sink_attention_grads

        for width in (192, 200, 256):
            plain = int((~_sink_attention_grads(width).isfinite()).sum())
            with training_attention():
                guarded = int((~_sink_attention_grads(width).isfinite()).sum())
            print(f"sink step, width {width}: non-finite dQ {plain:,} default, {guarded:,} guarded")
    except Exception as exc:  # noqa: BLE001 - a diagnosis prints what it could not do
        print(f"sink step not run: {type(exc).__name__}: {exc}")


def _chunks(name: str, matrix: np.ndarray, out: Path) -> None:
    rows = max(1, CHUNK_BYTES // (matrix.shape[1] * 2))
    for i, start in enumerate(range(0, len(matrix), rows)):
        np.save(out / f"{name}-{i}.npy", matrix[start : start + rows].astype(np.float16))


def features(args: argparse.Namespace) -> None:
    from bench.frozen_heads import layer_index
    from risk_app.finetune.features import POOLINGS, FeatureSettings, cached_features, text_key

    data = _inputs(args.inputs)
    texts = list(dict.fromkeys(t for variant in data["texts"].values() for t in variant.values()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    short = args.base.split("-")[-1]
    (out / f"F-{short}-keys.json").write_text(json.dumps([text_key(t) for t in texts]))
    for layer in args.layers.split(","):
        index = layer_index(args.base, layer)
        settings = FeatureSettings(max_length=args.max_length, precision="bf16", layer=index)
        started = time.perf_counter()
        pooled = cached_features(
            args.base, texts, settings=settings, batch_size=args.batch_size, device="cuda"
        )
        print(
            f"{args.base} layer {index}: {len(texts)} texts in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        for pooling in POOLINGS:
            _chunks(f"F-{short}-L{index}-{pooling}", pooled[pooling], out)


def _by_id(ids: list[str], proba: Any) -> dict[str, float]:
    return dict(zip(ids, np.asarray(proba).round(6).tolist(), strict=True))


def finetune_queue(args: argparse.Namespace) -> None:
    """`finetune` once per job of `--queue` (a JSON list of {option: value} overrides, e.g.
    `[{"variant": "german", "precision": "fp32", "tag": "gc_fp32"}]`), in one process: each new
    process would spend seconds of device time importing torch and transformers again."""
    if not args.queue:
        return finetune(args)
    text = args.queue if args.queue.lstrip().startswith("[") else Path(args.queue).read_text(encoding="utf-8")
    for job in json.loads(text):
        finetune(argparse.Namespace(**(vars(args) | job)))


def finetune(args: argparse.Namespace) -> None:
    import torch

    from bench.gpu.text_inputs import subsample
    from risk_app.finetune.config import TrainConfig
    from risk_app.finetune.predict import predict_proba
    from risk_app.finetune.trainer import train_classifier

    data = _inputs(args.inputs)
    dataset = args.variant.split("_")[0]
    texts, labels = data["texts"][args.variant], data["labels"][dataset]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in [int(s) for s in args.seeds.split(",")]:
        split = dict(data["splits"][dataset][seed])
        if getattr(args, "train_rows", 0):  # the CPU's subset when the inputs hold it, else the same function
            subsets = data.get("subsets", {}).get(dataset, {}).get(str(args.train_rows))
            y_train = np.array([labels[i] for i in split["train"]])
            rows = subsets[seed] if subsets else subsample(split["train"], y_train, args.train_rows, seed)
            split["train"] = rows
        for lr in [float(x) for x in args.lrs.split(",")]:
            speed: dict[str, Any] = {}
            if args.device != "cpu":
                speed["token_budget"] = args.token_budget or None
            if args.pad_multiple:  # 64: widths 64 mod 128 (192, 320) come up on purpose, the old bf16 NaN
                speed["pad_to_multiple_of"] = args.pad_multiple
            config = TrainConfig(
                method=args.method, base_model=args.base, device=args.device, precision=args.precision,
                learning_rate=lr, epochs=args.epochs, patience=0, batch_size=16, seed=seed,
                max_length=args.max_length, speed=speed,
            )  # fmt: skip
            part = {s: ([texts[i] for i in split[s]], np.array([labels[i] for i in split[s]])) for s in split}
            started = time.perf_counter()
            row: dict[str, Any] = {"seed": seed, "lr": lr, "variant": args.variant, "method": args.method,
                                   "precision": args.precision, "base": args.base, "epochs": args.epochs,
                                   "speed": speed, "torch": torch.__version__,
                                   "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}  # fmt: skip
            if getattr(args, "train_rows", None):  # a learning-curve point: its rows, for the pairing check
                row |= {"train_rows": args.train_rows, "train_ids": split["train"]}
            try:
                result = train_classifier(*part["train"], *part["validation"], config, None, progress=False)
                p_test = predict_proba(result.model, result.tokenizer, part["test"][0], 64, args.max_length)
                row |= {
                    "best_epoch": result.best_epoch,
                    "val_auc_per_epoch": [round(h["val_auc"], 4) for h in result.history],
                    "train_loss_per_epoch": [round(h["train_loss"], 4) for h in result.history],
                    "p_val": _by_id(split["validation"], result.best_val_proba),
                    "p_test": _by_id(split["test"], p_test),
                    "tokens_per_second": round(result.tokens_per_second, 1),
                    "peak_memory_mb": round(result.peak_memory_mb, 1),
                }  # fmt: skip
                del result
            except Exception as exc:  # a diverged or failed run is a result too
                row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            row["seconds"] = round(time.perf_counter() - started, 1)
            row["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
            with open(out / f"FT-{args.tag}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            done = f"best epoch {row.get('best_epoch')} val {row.get('val_auc_per_epoch')} "
            done += row.get("error", "")
            print(f"{args.tag} seed {seed} lr {lr} {args.precision}: {done} ({row['seconds']}s)", flush=True)
            torch.cuda.empty_cache()


def collect(args: argparse.Namespace) -> None:
    """Copy finished files of `--out` not returned yet into $OUT (at most 8 files, 60 MB a call).

    A file counts as finished when untouched for 5 s; JSON lines (appended run by run) are sent
    again whenever they grew, so the latest copy always comes back."""
    import shutil

    src, dst = Path(args.out), Path(os.environ["OUT"])
    sent_file = src.parent / "sent.json"
    sent = json.loads(sent_file.read_text()) if sent_file.exists() else {}
    budget, count = 60 * 2**20, 0
    for path in sorted(src.iterdir(), key=lambda p: (p.suffix != ".jsonl", p.name)):
        stat = path.stat()
        if sent.get(path.name) == stat.st_size or time.time() - stat.st_mtime < 5:
            continue
        if count == 8 or stat.st_size > budget:
            break
        shutil.copy(path, dst / path.name)
        sent[path.name], budget, count = stat.st_size, budget - stat.st_size, count + 1
    sent_file.write_text(json.dumps(sent))
    pending = [p.name for p in src.iterdir() if sent.get(p.name) != p.stat().st_size]
    print(f"returned {count} file(s); still to return: {len(pending)} {pending[:6]}")


def import_features(args: argparse.Namespace) -> None:
    """Back on the CPU machine: merge the returned chunks of `--base` into the local feature cache."""
    from bench.frozen_heads import layer_index
    from risk_app.finetune.features import POOLINGS, FeatureSettings, FeatureStore, base_fingerprint

    folder, short = Path(args.out), args.base.split("-")[-1]
    keys = json.loads((folder / f"F-{short}-keys.json").read_text())
    for layer in args.layers.split(","):
        index = layer_index(args.base, layer)
        vectors = {}
        for pooling in POOLINGS:
            parts = sorted(
                folder.glob(f"F-{short}-L{index}-{pooling}-*.npy"),
                key=lambda p: int(p.stem.rsplit("-", 1)[1]),
            )
            vectors[pooling] = np.concatenate([np.load(p) for p in parts]).astype(np.float32)
            if len(vectors[pooling]) != len(keys):
                raise SystemExit(
                    f"{args.base} L{index} {pooling}: {len(vectors[pooling])} rows for {len(keys)} keys"
                )
        settings = FeatureSettings(max_length=args.max_length, precision="bf16", layer=index)
        stored = FeatureStore(base_fingerprint(args.base), settings).merge(keys, vectors)  # type: ignore[arg-type]
        print(f"{args.base} layer {index}: cache holds {len(stored['keys'])} texts")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["diagnose", "features", "finetune", "collect", "import"])
    p.add_argument("--inputs", default=".carry/a/inputs.json")
    p.add_argument("--base", default="qwen2.5-coder-0.5b")
    p.add_argument("--out", default=os.environ.get("OUT", "out"))
    p.add_argument("--layers", default="last,middle")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--variant", default="lc_full")
    p.add_argument("--seeds", default="0")
    p.add_argument("--lrs", default="2e-5")
    p.add_argument("--method", default="full")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-rows", type=int, default=0, help="the curve's N-row subset (0 = all)")
    p.add_argument("--token-budget", type=int, default=16384, help="padded tokens a batch; 0 = batches of 16")
    p.add_argument("--pad-multiple", type=int, default=0, help="round batch widths up to this (0 = none)")
    p.add_argument("--tag", default="run")
    p.add_argument("--device", default="cuda")
    p.add_argument("--queue", help="finetune: JSON list of jobs (or its file), each overriding options")
    args = p.parse_args()
    {
        "diagnose": diagnose,
        "features": features,
        "finetune": finetune_queue,
        "collect": collect,
        "import": import_features,
    }[args.mode](args)


if __name__ == "__main__":
    main()
