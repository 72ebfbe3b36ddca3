"""GPU: frozen-feature vectors of a catalogue base for the accuracy benchmark, returned as files.

The CPU path (`risk_app.finetune.features`) takes ~5-15 min per base and layer for the 0.5B on a
busy 2-core machine; on one H200 it takes seconds. The GGUF travels in parts under 64 MiB
(one part per call, kept in /root/keep while the machine stays warm), the texts as JSON
(`{dataset: [text, ...]}`, serialized here on the CPU machine). This script joins the parts,
checks the SHA-256 pinned in the catalogue, converts once with the project's fetch code (no
download: the joined file is already where fetch looks), computes the features with the same
`cached_features` the CPU uses (same precision and layers, so the cache key is the same), and
writes them to $OUT in float16 pieces under 16 MiB: `keys.json` and `L<layer>-<pooling>.npy`.
`import_features` (below, run on the CPU machine) merges them into the local cache.

    # on the GPU, last call (after the parts are in /root/keep):
    python3 bench/gpu/frozen_features.py gpu --base qwen2.5-coder-0.5b --texts .carry/a/texts.json
    # back here:
    python bench/gpu/frozen_features.py import --base qwen2.5-coder-0.5b --folder /work/.device/...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _layers(spec_layers: int, names: list[str]) -> list[int]:
    return [-1 if n == "last" else spec_layers // 2 if n == "middle" else int(n) for n in names]


def join(args: argparse.Namespace) -> None:
    """Join the parts in order, check the pinned SHA-256, convert once (no download)."""
    from risk_app.models.catalogue import bases_dir, get_base
    from risk_app.models.fetch import fetch_base

    spec = get_base(args.base)
    gguf = bases_dir() / spec.gguf_name
    parts = sorted(Path(args.parts).glob(f"{args.prefix}*"))
    digest = hashlib.sha256()
    with open(gguf, "wb") as out:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != spec.sha256:
        gguf.unlink()
        raise SystemExit(f"joined {len(parts)} parts: sha256 {digest.hexdigest()} != pinned {spec.sha256}")
    print(f"joined {len(parts)} parts, sha256 ok", flush=True)
    fetch_base(args.base, progress=False)


def gpu(args: argparse.Namespace) -> None:
    from risk_app.finetune.features import POOLINGS, FeatureSettings, cached_features, text_key
    from risk_app.models.catalogue import get_base

    spec = get_base(args.base)
    join(args)
    texts = [t for group in json.loads(Path(args.texts).read_text()).values() for t in group]
    texts = list(dict.fromkeys(texts))
    keys = [text_key(t) for t in texts]
    out_dir = Path(os.environ.get("OUT", "out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "keys.json").write_text(json.dumps(keys))
    for layer in _layers(spec.n_layers, args.layers.split(",")):
        settings = FeatureSettings(max_length=args.max_length, precision=args.precision, layer=layer)
        started = time.perf_counter()
        pooled = cached_features(
            args.base, texts, settings=settings, batch_size=args.batch_size, device="cuda"
        )
        print(f"layer {layer}: {len(texts)} texts in {time.perf_counter() - started:.1f}s", flush=True)
        for pooling in POOLINGS:
            np.save(out_dir / f"L{layer}-{pooling}.npy", pooled[pooling].astype(np.float16))


def import_features(args: argparse.Namespace) -> None:
    """Merge files written by `gpu` into this machine's feature cache."""
    from risk_app.finetune.features import POOLINGS, FeatureSettings, FeatureStore, base_fingerprint

    folder = Path(args.folder)
    keys = json.loads((folder / "keys.json").read_text())
    for path in sorted(folder.glob("L*-last.npy")):
        layer = int(path.name[1:].split("-last")[0])
        settings = FeatureSettings(max_length=args.max_length, precision=args.precision, layer=layer)
        vectors = {p: np.load(folder / f"L{layer}-{p}.npy").astype(np.float32) for p in POOLINGS}
        stored = FeatureStore(base_fingerprint(args.base), settings).merge(keys, vectors)  # type: ignore[arg-type]
        print(f"layer {layer}: cache now holds {len(stored['keys'])} texts")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["gpu", "join", "import"])
    p.add_argument("--base", default="qwen2.5-coder-0.5b")
    p.add_argument("--texts", default=".carry/a/texts.json")
    p.add_argument("--parts", default="/root/keep")
    p.add_argument("--prefix", default="q05_")
    p.add_argument("--layers", default="last,middle")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--folder", help="import: the folder of files the gpu mode wrote")
    args = p.parse_args()
    {"gpu": gpu, "join": join, "import": import_features}[args.mode](args)


if __name__ == "__main__":
    main()
