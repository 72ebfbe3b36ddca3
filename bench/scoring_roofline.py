"""Why GPU scoring gains less on a narrow model: matmul FLOPs and memory traffic per token.

    python bench/scoring_roofline.py --smollm2 DIR [--out docs/performance.md]

Counts, on the CPU, what one scoring forward of our GPU path does per real token (bf16 weights,
eval mode, one padded batch of a bucket's shape): the FLOPs of the matrix products (aten linear,
mm, addmm, bmm, attention) and the bytes every other op reads and writes (norms, RoPE, SiLU,
residual adds, casts, the mask; views move nothing and are not counted). Then a roofline
estimate for a GPU: seconds per token = FLOPs / matmul rate + bytes / memory bandwidth, with
the rates given (defaults: 600 TFLOP/s, about what bf16 products of these shapes reach on an
H100, and 3.0 TB/s, the device-to-device copy measured on the lent H100). The same again with
the norms and the SwiGLU product as one pass each (what Liger's fused kernels do: read the
input once, write the output once), to say what fusing them can give before a lease measures
it. Counts, not timings: one run is the answer; the estimate is a model, not a measurement.

Models: SmolLM2-135M's config (`--smollm2`, the folder of config.json and the tokenizer) and the
Qwen2.5-0.5B shape (`bench/gpu_throughput.py`'s QWEN05_SHAPE), both with random weights (the
counts do not depend on them) and SmolLM2's tokenizer, as in the GPU benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_throughput import QWEN05_SHAPE  # noqa: E402
from risk_app.finetune.predict import BUCKET_WIDTH, pad_batch  # noqa: E402

MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm"}
ATTENTION_PREFIX = "_scaled_dot_product"
# Ops that only reinterpret memory (no bytes move on a GPU).
VIEW_OPS = {
    "view", "_unsafe_view", "reshape", "expand", "slice", "select", "transpose", "t", "unsqueeze",
    "squeeze", "permute", "as_strided", "alias", "detach", "unbind", "split", "split_with_sizes",
    "lift_fresh", "_to_copy_noop",
}  # fmt: skip
NORM_OPS = {"pow", "mean", "rsqrt", "add", "mul", "_to_copy"}  # what an unfused RMSNorm runs


def _bytes(tree: Any) -> int:
    total = 0
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return total


class Traffic(TorchDispatchMode):
    """FLOPs of matrix products and bytes of everything else, by the module that ran them."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.bytes: dict[str, int] = defaultdict(int)
        self.where = "other"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name == "linear":  # reaches the mode undecomposed under inference_mode
            self.flops += 2 * args[0].numel() * args[1].shape[0]
        elif name in MATMUL_OPS or name.startswith(ATTENTION_PREFIX):
            packet = func._overloadpacket
            if packet in flop_registry:
                self.flops += flop_registry[packet](*args, **kwargs, out_val=out)
        elif name not in VIEW_OPS:
            self.bytes[self.where] += _bytes(args) + _bytes(kwargs) + _bytes(out)
        return out


def tag_modules(model: torch.nn.Module, mode: Traffic) -> None:
    """Attribute each op's bytes to 'norm', 'mlp' (outside its matmuls) or 'other'."""

    def enter(kind: str) -> Any:
        def hook(_module: Any, _args: Any) -> None:
            mode.where = kind

        return hook

    def leave(_module: Any, _args: Any, _out: Any) -> None:
        mode.where = "other"

    for name, module in model.named_modules():
        kind = "norm" if name.endswith("norm") else "mlp" if name.endswith(".mlp") else None
        if kind:
            module.register_forward_pre_hook(enter(kind))
            module.register_forward_hook(leave)


def count(model: Any, tokenizer: Any, texts: list[str], rows: int) -> dict[str, float]:
    """Per real token: matmul FLOPs, bytes by kind, and the fused-kernel bytes of norms and MLP."""
    ids = tokenizer(texts[:rows], truncation=True, max_length=256)["input_ids"]
    width = -(-max(len(x) for x in ids) // BUCKET_WIDTH) * BUCKET_WIDTH
    batch = pad_batch(tokenizer, ids, multiple=width)
    real = int(batch["attention_mask"].sum())
    mode = Traffic()
    tag_modules(model, mode)
    with torch.inference_mode(), mode:
        model(**batch)
    config = model.config
    padded = rows * width
    # Fused: a norm reads its input and writes its output once (bf16), a SwiGLU product reads
    # gate and up and writes one tensor; the weights are negligible per token.
    hidden, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    fused_norm = padded * (2 * layers + 1) * 2 * hidden * 2
    fused_mlp = padded * layers * 3 * inter * 2
    return {
        "width": width, "rows": rows, "real_tokens": real, "padded_tokens": padded,
        "flops_per_token": mode.flops / real,
        "norm_bytes_per_token": mode.bytes["norm"] / real,
        "mlp_bytes_per_token": mode.bytes["mlp"] / real,
        "other_bytes_per_token": mode.bytes["other"] / real,
        "fused_norm_bytes_per_token": fused_norm / real,
        "fused_mlp_bytes_per_token": fused_mlp / real,
    }  # fmt: skip


def roofline(c: dict[str, float], tflops: float, tbps: float, mean_len: float) -> dict[str, float]:
    """Applications/s by the roofline model, unfused and with fused norms and MLP products."""
    matmul_s = c["flops_per_token"] / (tflops * 1e12)
    unfused = c["norm_bytes_per_token"] + c["mlp_bytes_per_token"] + c["other_bytes_per_token"]
    fused = c["fused_norm_bytes_per_token"] + c["fused_mlp_bytes_per_token"] + c["other_bytes_per_token"]
    out = {"matmul_share_unfused": matmul_s / (matmul_s + unfused / (tbps * 1e12))}
    for label, nbytes in (("unfused", unfused), ("fused", fused)):
        out[f"apps_per_second_{label}"] = 1 / ((matmul_s + nbytes / (tbps * 1e12)) * mean_len)
    return out


def build(config_source: Path | None, shape: dict[str, Any] | None) -> Any:
    from transformers import AutoConfig, AutoModelForSequenceClassification, Qwen2Config

    torch.manual_seed(0)
    if shape is not None:
        config = Qwen2Config(**shape, num_labels=2, pad_token_id=0)
    else:
        config = AutoConfig.from_pretrained(config_source, num_labels=2, pad_token_id=0)
    model = AutoModelForSequenceClassification.from_config(config).to(torch.bfloat16)
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smollm2", required=True, help="folder with SmolLM2-135M's config.json and tokenizer")
    p.add_argument("--texts", help="JSON {texts: [...]} (default: the bundled German credit texts)")
    p.add_argument("--rows", type=int, default=16, help="rows of the counted batch")
    p.add_argument("--tflops", type=float, default=600.0)
    p.add_argument("--tbps", type=float, default=3.0)
    p.add_argument("--json", help="write the counts and estimates here")
    args = p.parse_args(argv)
    from transformers import AutoTokenizer

    from bench.gpu_throughput import load_texts

    texts, _ = load_texts(args.texts, 512)
    tokenizer = AutoTokenizer.from_pretrained(args.smollm2)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    mean_len = float(np.mean([min(len(x), 256) for x in tokenizer(texts)["input_ids"]]))
    results = {}
    for name, source, shape in (("SmolLM2-135M", Path(args.smollm2), None),
                                ("Qwen2.5-0.5B shape", None, QWEN05_SHAPE)):  # fmt: skip
        model = build(source, shape)
        c = count(model, tokenizer, texts, args.rows)
        results[name] = {**c, **roofline(c, args.tflops, args.tbps, mean_len), "mean_len": mean_len}
        del model
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
