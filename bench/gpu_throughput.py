"""Benchmark: training and scoring throughput on a GPU, our path beside the plain HF + PEFT loop.

    python bench/gpu_throughput.py --texts texts.json --smollm2 DIR [--out docs/performance.md]
    python bench/gpu_throughput.py --smoke          # CPU: tiny-qwen2, a few rows (checks the code)
    python bench/gpu_throughput.py --render rows.jsonl --out docs/performance.md

One run, one GPU, the same data, batch size and method parameters for both paths:

* plain: what a user writes by hand — `AutoModelForSequenceClassification` in fp32 weights,
  `peft.get_peft_model` (LoRA/QLoRA, same rank and targets as ours), torch AdamW, bf16
  autocast, shuffled fixed batches padded to their longest text, `loss.item()` every step;
* ours: `risk_app.finetune.trainer.train_classifier` with a ladder of `TrainConfig.speed`
  levers (token-budget batches, packing, flex attention, Liger kernels fixed or chosen by
  measurement, compiled decoder layers, activation checkpointing).

Repetitions: every training row runs one warm-up epoch and then `--timed-epochs` (default 3)
timed epochs; a row reports the median real (unpadded) tokens/s of the timed epochs and their
spread (min-max), MFU of the median, and the ratio to the plain loop's median from the same
run. Scoring rows (`--score-only`, run as separate processes by the lease script, one
repetition each) time a first pass over `--score-rows` texts (after 256 texts of warm-up) and a
second pass; `--render` groups the repetitions. Liger patches transformers' modules for every
later model of the same type, so each row runs inside a snapshot of those modules that is put
back afterwards (before this, rows after a Liger row measured Liger too).

MFU counts model FLOPs of real tokens only: 6N per token for full fine-tuning, 4N for a frozen
base (no weight gradients), plus 12·L·d·s for attention, against the datasheet's 989 TFLOP/s
dense bf16 for H100/H200 (a bf16 matmul measured here reaches ~790). Models: SmolLM2-135M (a
random init of its config) and random-init Qwen2.5-0.5B and 1.5B shapes; `--qlora-7b` builds a
Qwen2-7B-shaped classifier and reports QLoRA's peak memory at sequence 256, batch 8.
Every finished row is appended to `--json` at once, so a run cut short keeps its rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_BF16_FLOPS = 989e12
QWEN05_SHAPE = dict(
    hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
    intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768, tie_word_embeddings=True,
)  # fmt: skip
QWEN15_SHAPE = dict(
    hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
    intermediate_size=8960, vocab_size=151936, max_position_embeddings=32768, tie_word_embeddings=True,
)  # fmt: skip
QWEN7B_SHAPE = dict(
    hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
    intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768, tie_word_embeddings=False,
)  # fmt: skip
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}

# Our ladder (the names are what the table shows). "token_budget" is set per run.
TB = {"log_every": 50, "token_budget": None}
PACK = {**TB, "packing": True, "pack_length": 2048}
LADDER: list[tuple[str, dict[str, Any]]] = [
    ("ours, levers off", {"log_every": 1, "frozen_dtype": "fp32", "fused_adamw": "off"}),
    ("+ token-budget batches", TB),
    ("+ packing (SDPA block mask)", PACK),
    ("+ packing, flex attention", {**PACK, "attention": "flex_attention"}),
    ("+ Liger kernels (no packing)", {**TB, "fused_kernels": True}),
    ("+ packing + Liger", {**PACK, "fused_kernels": True}),
    ("+ packing + Liger by measurement", {**PACK, "fused_kernels": "measure"}),
    ("+ packing + Liger + compiled layers", {**PACK, "fused_kernels": True, "compile": True,
                                             "pad_to_multiple_of": 2048}),
    ("+ packing + activation checkpointing", {**PACK, "activation_checkpointing": True}),
    # Issue 26: toward 25 % MFU without packing (length buckets already pad little).
    ("+ Liger, token budget 32,768", {**TB, "fused_kernels": True, "token_budget": 32768}),
    ("+ Liger + activation checkpointing", {**TB, "fused_kernels": True, "activation_checkpointing": True}),
    ("+ compiled layers (widths of 64)", {**TB, "compile": True, "pad_to_multiple_of": 64}),
    ("+ compiled layers + Liger (widths of 64)", {**TB, "compile": True, "pad_to_multiple_of": 64,
                                                  "fused_kernels": True}),
    ("+ compiled layers, token budget 8,192", {**TB, "compile": True, "pad_to_multiple_of": 64,
                                               "token_budget": 8192}),
]  # fmt: skip
SHORT_LADDER = ("+ token-budget batches", "+ packing (SDPA block mask)", "+ packing + Liger")


# ---- data and models ---------------------------------------------------------------------
def load_texts(path: str | None, n: int) -> tuple[list[str], np.ndarray]:
    """`n` serialized applications (repeated when the file has fewer) and their labels."""
    if path:
        payload = json.loads(Path(path).read_text())
        texts, labels = payload["texts"], np.asarray(payload["labels"], dtype=np.int64)
    else:
        texts, labels = german_texts()
    reps = -(-n // len(texts))
    return (list(texts) * reps)[:n], np.tile(labels, reps)[:n]


def german_texts() -> tuple[list[str], np.ndarray]:
    """The bundled German credit applications, serialized as training serializes them."""
    from data_contracts.spec import load_spec
    from risk_app import workflow

    spec = load_spec("german_credit")
    valid = workflow.ingest_and_validate(spec.data_path, spec=spec).valid
    examples = workflow.prepare_examples(valid, spec=spec)
    return list(examples["text"]), examples["default"].to_numpy(dtype=np.int64)


def shape_model(folder: Path, tokenizer_src: str, shape: dict[str, Any]) -> Path:
    """A random-init Qwen2 classifier of `shape` saved to `folder` (bf16 on disk), with a tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_src)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = Qwen2Config(**shape, num_labels=2, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForSequenceClassification(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def real_or_random(source: str, work: Path) -> str:
    """`source` when it holds weights; else a random-init model of its config (same shapes, same speed)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    if any(Path(source).glob("*.safetensors")):
        return source
    folder = work / f"{Path(source).name}-random"
    if (folder / "config.json").is_file():
        return str(folder)
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = AutoConfig.from_pretrained(source, num_labels=2, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "score" not in n)


def flops_per_token(config: Any, n_params: int, method: str, seq: float) -> float:
    weights = (6 if method == "full" else 4) * n_params
    return weights + 12 * config.num_hidden_layers * config.hidden_size * seq


# ---- the plain loop ----------------------------------------------------------------------
def plain_model(folder: str, method: str, device: torch.device) -> tuple[Any, Any]:
    """Model and tokenizer as a user would set them up with transformers + peft."""
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(folder)
    kwargs: dict[str, Any] = {"num_labels": 2, "dtype": torch.float32}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=["score"],
        )  # fmt: skip
        kwargs["device_map"] = {"": str(device)}
    model = AutoModelForSequenceClassification.from_pretrained(folder, **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model.to(device)
    if method in ("lora", "qlora"):
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS, r=LORA["r"], lora_alpha=LORA["alpha"],
                lora_dropout=LORA["dropout"], target_modules=LORA["target_modules"],
            ),
        )  # fmt: skip
    return model, tokenizer


def plain_train(
    folder: str, method: str, texts: list[str], labels: np.ndarray, args: argparse.Namespace
) -> dict:
    """One warm-up epoch and `args.timed_epochs` timed epochs of the hand-written loop."""
    device = torch.device(args.device)
    model, tokenizer = plain_model(folder, method, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    rng = np.random.default_rng(0)
    model.train()
    _reset_memory(device)
    rates = []
    for _epoch in range(1 + args.timed_epochs):
        order = rng.permutation(len(texts))
        tokens, started = 0, _now(device)
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            batch = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=256,
                              return_tensors="pt").to(device)  # fmt: skip
            target = torch.as_tensor(labels[idx], device=device)
            with amp:
                loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()  # the per-step logging a hand-written loop does
            tokens += int(batch["attention_mask"].sum())
        rates.append(tokens / (_now(device) - started))
    return {**spread(rates[1:]), "peak_memory_mb": _peak_mb(device), "val_auc": float("nan"),
            "model": model}  # fmt: skip


# ---- our path ----------------------------------------------------------------------------
def ours_train(
    folder: str, method: str, texts: list[str], labels: np.ndarray, speed: dict, args: argparse.Namespace,
    extra: dict | None = None,
) -> dict:  # fmt: skip
    """A warm-up epoch and `args.timed_epochs` timed epochs through `train_classifier`; the
    rates of the timed epochs come from the run's history."""
    from risk_app.finetune import fused_kernels
    from risk_app.finetune.config import TrainConfig
    from risk_app.finetune.events import on_epoch_end
    from risk_app.finetune.trainer import train_classifier

    method_params: dict[str, Any] = {}
    if method in ("lora", "qlora"):
        method_params = {**LORA, **(extra or {})}
    n_val = min(256, len(texts) // 4)
    config = TrainConfig(
        method=method, method_params=method_params, base_model=folder, epochs=1 + args.timed_epochs,
        learning_rate=1e-4, batch_size=args.batch_size, eval_batch_size=128, max_length=256, patience=0,
        device=args.device, speed=speed,
    )  # fmt: skip
    device = torch.device(args.device)
    _reset_memory(device)
    before = set(fused_kernels.measured())
    peaks: list[tuple[float, float]] = []  # per epoch (training + validation): allocated, reserved

    def epoch_peak(_record: Any) -> None:
        if device.type == "cuda":
            peaks.append((torch.cuda.max_memory_allocated(device) / 2**20,
                          torch.cuda.max_memory_reserved(device) / 2**20))  # fmt: skip
            torch.cuda.reset_peak_memory_stats(device)

    with on_epoch_end(epoch_peak):
        result = train_classifier(
            texts[n_val:], labels[n_val:], texts[:n_val], labels[:n_val], config, None, progress=False
        )
    out = {
        **spread([h["train_tokens_per_second"] for h in result.history[1:]]),
        "peak_memory_mb": max([result.peak_memory_mb] + [a for a, _ in peaks]),
        "val_auc": result.best_val_auc,
        "model": result.model,
    }
    if peaks:  # the timed epochs' peaks (each from a reset): repetitions of the peak
        out["epoch_peak_allocated_mb"] = [a for a, _ in peaks[1:]]
        out["epoch_peak_reserved_mb"] = [r for _, r in peaks[1:]]
        out["peak_reserved_mb"] = max(r for _, r in peaks)
    new = [t for k, t in fused_kernels.measured().items() if k not in before]
    if new:  # what "measure" saw: one decoder layer, forward + backward, plain against Liger
        t = new[0]
        chosen = "Liger" if t.use_liger else "plain"
        out["kernel_timing"] = {"plain_ms": 1e3 * t.plain_s, "liger_ms": 1e3 * t.liger_s,
                                "chosen": chosen, "tokens": t.tokens}  # fmt: skip
    return out


def spread(rates: list[float]) -> dict:
    """Median and min-max of repeated rates (tokens/s or applications/s)."""
    return {"tokens_per_second": float(np.median(rates)), "rates": [float(r) for r in rates],
            "min": float(min(rates)), "max": float(max(rates))}  # fmt: skip


def ladder_for(
    method: str, rungs_wanted: list[str] | None, quick: bool, budget: int
) -> list[tuple[str, dict]]:
    rungs = [(name, dict(s)) for name, s in LADDER]
    if rungs_wanted:
        rungs = [(n, s) for n, s in rungs if n in rungs_wanted]
    elif quick:
        rungs = [(n, s) for n, s in rungs if n in SHORT_LADDER]
    if method == "qlora":  # 4-bit weights and paged 8-bit AdamW: the fused levers do not apply
        rungs = [(n, s) for n, s in rungs if n in ("+ token-budget batches", "+ packing (SDPA block mask)")]
    for _, speed in rungs:
        if "token_budget" in speed and speed["token_budget"] is None:  # a rung's own budget stays
            speed["token_budget"] = budget
    return rungs


# ---- scoring -----------------------------------------------------------------------------
def plain_scoring(model: Any, tokenizer: Any, texts: list[str], device: torch.device) -> float:
    model.eval()
    started = _now(device)
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tokenizer(texts[i : i + 64], padding=True, truncation=True, max_length=256,
                              return_tensors="pt").to(device)  # fmt: skip
            torch.softmax(model(**batch).logits.float(), -1)[:, 1].cpu()
    return len(texts) / (_now(device) - started)


def ours_scoring(model: Any, tokenizer: Any, texts: list[str], device: torch.device, fused: bool) -> float:
    from risk_app.finetune.predict import cast_for_gpu_inference, predict_proba

    # What load_risk_model(folder, device="cuda") does to a model that will only score (once:
    # the fused kernels are measured and applied on the first call, then it does nothing).
    model = cast_for_gpu_inference(model, fused=fused)
    model.eval()
    started = _now(device)
    predict_proba(model, tokenizer, texts, batch_size=64, max_length=256)
    return len(texts) / (_now(device) - started)


def scoring_rows(folder: str, texts: list[str], args: argparse.Namespace) -> list[dict]:
    """One repetition (one process, so its first pass is the only first pass it has): after 256
    texts of warm-up per path, the plain loop's pass (unless `--score-no-plain`) and our first
    and second pass with `--score-kernels` (`fused`: Liger's RMSNorm + SwiGLU where one layer
    measured faster, as load_risk_model does; `library`: transformers' own). The first pass
    meets its batch shapes for the first time (kernel choices, allocator growth); the second
    is the steady state of a long file. With fused kernels, the scores of the first 512 texts
    are compared with a second copy of the model on the library's kernels (max |dP|)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from risk_app.finetune import fused_kernels
    from risk_app.finetune.predict import cast_for_gpu_inference, predict_proba

    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(folder)

    def load() -> Any:
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, dtype=torch.float32)
        model.config.pad_token_id = tokenizer.pad_token_id
        return model.to(device)

    model = load()
    fused = args.score_kernels == "fused"
    rows: list[dict] = []
    if not args.score_no_plain:
        plain_scoring(model, tokenizer, texts[:256], device)  # warm-up
        rows.append({"path": "plain no_grad fp32 loop",
                     "apps_per_second": plain_scoring(model, tokenizer, texts, device)})  # fmt: skip
    before = set(fused_kernels.measured())
    started = time.perf_counter()
    ours_scoring(model, tokenizer, texts[:256], device, fused)  # warm-up; the kernels measured here
    warmup_s = time.perf_counter() - started
    timing = [t for k, t in fused_kernels.measured().items() if k not in before]
    label = "fused kernels by measurement" if fused else "library kernels"
    extra: dict[str, Any] = {"kernels": args.score_kernels, "warmup_s": warmup_s}
    if timing:
        t = timing[0]
        chosen = "Liger" if t.use_liger else "plain"
        extra["kernel_timing"] = {"plain_ms": 1e3 * t.plain_s, "liger_ms": 1e3 * t.liger_s,
                                  "chosen": chosen, "tokens": t.tokens}  # fmt: skip
    for run in ("first pass", "second pass"):
        rate = ours_scoring(model, tokenizer, texts, device, fused)
        rows.append({"path": f"ours ({label}), {run}", "apps_per_second": rate, **extra})
    if fused and getattr(model, fused_kernels.FUSED_FOR_SCORING, False):
        reference = cast_for_gpu_inference(load(), fused=False)
        p_ref = predict_proba(reference, tokenizer, texts[:512])
        p_fused = predict_proba(model, tokenizer, texts[:512])
        for row in rows[-2:]:
            row["max_abs_dp_vs_library"] = float(np.max(np.abs(p_fused - p_ref)))
        del reference
    mean_len = float(np.mean([min(len(ids), 256) for ids in tokenizer(texts[:512])["input_ids"]]))
    config = model.config
    n = non_embedding_params(model)
    for row in rows:  # forward FLOPs of real tokens: 2N + attention (4 L d s)
        flops = 2 * n + 4 * config.num_hidden_layers * config.hidden_size * mean_len
        row["mfu"] = row["apps_per_second"] * mean_len * flops / PEAK_BF16_FLOPS
    return rows


# ---- helpers -----------------------------------------------------------------------------
def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")


def machine() -> str:
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU ({os.cpu_count()} cores), torch {torch.__version__}"


@contextlib.contextmanager
def transformers_modules_kept() -> Any:
    """Put every loaded `transformers.models.*` module back as it was (Liger patches them)."""
    saved = {n: dict(vars(m)) for n, m in list(sys.modules.items()) if n.startswith("transformers.models.")}
    try:
        yield
    finally:
        for name, before in saved.items():
            module = sys.modules[name]
            for key, value in before.items():
                if vars(module).get(key) is not value:
                    setattr(module, key, value)


def timed(record: Callable[[dict], None], base: dict, fn: Callable[[], dict]) -> dict | None:
    """Run one measurement; a failure becomes a row saying why, never the end of the run."""
    try:
        with transformers_modules_kept():
            out = fn()
    except Exception as exc:  # noqa: BLE001 - a lever that fails is a result to report
        traceback.print_exc()
        record({**base, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"})
        return None
    finally:
        torch._dynamo.reset()  # compiled layers of this row's model
    model = out.pop("model", None)
    record({**base, **out})
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return out


# ---- the run -----------------------------------------------------------------------------
def train_rows(name: str, folder: str, texts: list[str], labels: np.ndarray, args: argparse.Namespace,
               record: Callable[[dict], None]) -> None:  # fmt: skip
    """plain, then our ladder, for each method on one model."""
    for method in args.methods:
        base = {"kind": "train", "model": name, "method": method}
        quick = args.quick or method != "lora"
        timed(record, {**base, "path": "plain HF + PEFT loop"},
              lambda m=method: plain_train(folder, m, texts, labels, args))  # fmt: skip
        for rung, speed in ladder_for(method, args.rungs, quick, args.token_budget):
            timed(record, {**base, "path": rung, "speed": speed},
                  lambda s=speed, m=method: ours_train(folder, m, texts, labels, s, args))  # fmt: skip


def add_mfu(row: dict, folder: str, mean_len: float) -> dict:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if "tokens_per_second" not in row or not torch.cuda.is_available():
        return row
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        n = non_embedding_params(AutoModelForSequenceClassification.from_config(config))
    row["mfu"] = (
        row["tokens_per_second"] * flops_per_token(config, n, row["method"], mean_len) / PEAK_BF16_FLOPS
    )
    row["non_embedding_params"] = n
    return row


def qlora_7b_row(
    args: argparse.Namespace, tokenizer_src: str, texts: list[str], labels: np.ndarray, extra: dict
) -> dict:
    """Peak GPU memory of our QLoRA on a Qwen2-7B-shaped classifier, sequence 256, batch 8."""
    folder = shape_model(Path(args.work) / "qwen2-7b-shape", tokenizer_src, QWEN7B_SHAPE)
    n = args.qlora_7b_rows
    long_texts = [" ".join([t] * 3) for t in texts[:n]]  # about 256 tokens after truncation
    sub = argparse.Namespace(**{**vars(args), "batch_size": 8})
    out = ours_train(str(folder), "qlora", long_texts, labels[:n], {"log_every": 50}, sub, extra)
    out.pop("model", None)
    return {"kind": "qlora-7b", "model": "Qwen2-7B shape", "method": "qlora", "path": "ours",
            "method_params": extra, **out}  # fmt: skip


def _fmt_rate(row: dict) -> str:
    lo, hi = row.get("min"), row.get("max")
    span = f" ({lo:,.0f}–{hi:,.0f})" if lo is not None else ""
    return f"{row['tokens_per_second']:,.0f}{span}"


def render(rows: list[dict], label: str) -> str:
    """The markdown section for docs/performance.md: training (median and min–max of the timed
    epochs, ratio to the plain loop of the same run, MFU), scoring (median and min–max over the
    repetitions, each a separate process), QLoRA 7B."""
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {label} with `python bench/gpu_throughput.py`.", "",
             "| model | method | path | real tokens/s, median (min–max) | × plain | MFU | peak GPU MiB "
             "| val AUC |",
             "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    plain: dict[tuple[str, str], float] = {}
    for row in rows:
        if row["kind"] != "train":
            continue
        key = (row["model"], row["method"])
        if "error" in row:
            lines.append(
                f"| {row['model']} | {row['method']} | {row['path']} | failed: {row['error']} | | | | |"
            )
            continue
        if row["path"].startswith("plain"):
            plain[key] = row["tokens_per_second"]
        ratio = row["tokens_per_second"] / plain[key] if key in plain else float("nan")
        path = row["path"] + (f" [call {row['lease_call']}]" if "lease_call" in row else "")
        if "kernel_timing" in row:
            t = row["kernel_timing"]
            path += f" (layer: plain {t['plain_ms']:.2f} ms, Liger {t['liger_ms']:.2f} ms → {t['chosen']})"
        lines.append(
            f"| {row['model']} | {row['method']} | {path} | {_fmt_rate(row)} | {ratio:.2f} | "
            f"{100 * row.get('mfu', float('nan')):.1f} % | {row['peak_memory_mb']:,.0f} | "
            f"{row['val_auc']:.3f} |"
        )
    lines += render_scoring([r for r in rows if r["kind"] == "score"])
    lines += render_qlora_7b([r for r in rows if r["kind"] == "qlora-7b"])
    return "\n".join(lines) + "\n"


def _mid(values: list[float]) -> str:
    return f"{np.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def render_qlora_7b(rows: list[dict]) -> list[str]:
    """QLoRA 7B rows: the peak of each timed epoch (allocated and reserved), median (min–max)."""
    if not rows:
        return []
    lines = ["", "| QLoRA, Qwen2-7B shape (sequence 256, batch 8) | peak allocated MiB, median (min–max) "
             "| peak reserved MiB | epochs | real tokens/s | ≤ 5.5 GB (5,245 MiB)? |",
             "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in (r.get("method_params") or {}).items()) or "defaults"
        if "error" in r:
            lines.append(f"| {params} | failed: {r['error']} | | | | |")
            continue
        alloc = r.get("epoch_peak_allocated_mb") or [r["peak_memory_mb"]]
        reserved = r.get("epoch_peak_reserved_mb") or [float("nan")]
        met = "yes" if max(alloc) <= 5.5e9 / 2**20 else "no"
        lines.append(
            f"| {params} | {_mid(alloc)} | {_mid(reserved)} | {len(alloc)} | {_fmt_rate(r)} | {met} |"
        )
    return lines


def render_scoring(rows: list[dict]) -> list[str]:
    """Scoring rows grouped by (model, path) over repetitions (each a process): median (min–max),
    ratio to the plain loop's median, MFU of the median, and fused against library scores."""
    if not rows:
        return []
    groups: dict[tuple[str, str], list[dict]] = {}
    failed: list[str] = []
    for r in rows:
        if "error" in r:
            failed.append(f"| {r['model']} | {r['path']} | failed: {r['error']} | | | | |")
            continue
        groups.setdefault((r["model"], r["path"]), []).append(r)
    lines = ["", "| model | scoring path | applications/s, median (min–max) | repetitions | × plain | MFU "
             "| max \\|ΔP\\| vs library kernels |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for (model, path), group in groups.items():
        rates = [r["apps_per_second"] for r in group]
        plain = [r["apps_per_second"] for r in groups.get((model, "plain no_grad fp32 loop"), [])]
        ratio = float(np.median(rates)) / float(np.median(plain)) if plain else float("nan")
        mfus = [r["mfu"] for r in group if "mfu" in r]
        mfu = f"{100 * float(np.median(mfus)):.1f} %" if mfus else ""
        dps = [r["max_abs_dp_vs_library"] for r in group if "max_abs_dp_vs_library" in r]
        dp = f"{max(dps):.1e}" if dps else ""
        lines.append(f"| {model} | {path} | {_mid(rates)} | {len(rates)} | {ratio:.2f} | {mfu} | {dp} |")
    return lines + failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", help="JSON {texts: [...], labels: [...]} (default: the bundled German data)")
    p.add_argument("--smollm2", help="folder of SmolLM2-135M converted to safetensors")
    p.add_argument(
        "--models", default="smollm2,qwen0.5b-shape",
        help="comma-separated: smollm2, qwen0.5b-shape, qwen1.5b-shape",
    )  # fmt: skip
    p.add_argument("--timed-epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    p.add_argument(
        "--rungs",
        type=lambda s: [r for r in s.split(";") if r],
        default=None,
        help="';'-separated ladder rung names to run (default: the whole ladder, or --quick's)",
    )
    p.add_argument("--score-only", action="store_true", help="only the scoring rows (one repetition)")
    p.add_argument(
        "--score-kernels",
        choices=("fused", "library"),
        default="fused",
        help="our scoring path: fused kernels by measurement (as load_risk_model) or the library's",
    )
    p.add_argument("--score-no-plain", action="store_true", help="scoring rows without the plain loop")
    p.add_argument(
        "--rows-1.5b",
        dest="rows_15b",
        type=int,
        default=None,
        help="training rows per epoch for the 1.5B shape (default: --rows)",
    )
    p.add_argument("--qlora-7b-rows", type=int, default=160)
    p.add_argument("--methods", default="full,lora,qlora", type=lambda s: [m for m in s.split(",") if m])
    p.add_argument("--rows", type=int, default=2304, help="training rows per epoch (+ 256 validation)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--token-budget", type=int, default=16384)
    p.add_argument("--score-rows", type=int, default=8192)
    p.add_argument("--quick", action="store_true", help="short ladder for every method")
    p.add_argument("--qlora-7b", action="store_true")
    p.add_argument(
        "--qlora-7b-params",
        type=json.loads,
        default=[{}, {"embedding_offload": True}],
        help="JSON list of qlora method_params, one 7B row each (default: as is, then offloaded embeddings)",
    )
    p.add_argument(
        "--activation-mib",
        type=int,
        default=None,
        help="GPU inference batches hold about this much activation memory (predict.GPU_ACTIVATION_BYTES)",
    )
    p.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/gpu_throughput"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None, help="append each row here as a JSON line")
    p.add_argument("--out", default=None, help="write the table into this markdown file's GPU section")
    p.add_argument("--smoke", action="store_true", help="CPU check: tiny-qwen2, 96 rows")
    p.add_argument("--render", help="no run: write the table of the rows saved in this JSON-lines file")
    p.add_argument("--machine", default=None, help="with --render: the machine the rows came from")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        saved = [json.loads(line) for line in Path(args.render).read_text().splitlines() if line.strip()]
        table = render(saved, args.machine or machine())
        print(table)
        if args.out:
            from bench.markdown import replace_section

            replace_section(Path(args.out), "gpu-throughput", table)
        return
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "speed"}), flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(row) + "\n")

    if args.activation_mib:
        from risk_app.finetune import predict

        predict.GPU_ACTIVATION_BYTES = args.activation_mib << 20
    texts, labels = load_texts(args.texts, max(args.rows + 256, args.score_rows))
    models: dict[str, str] = {}
    if args.smoke:
        from risk_app.models.tiny import ensure_tiny_qwen2

        models["tiny-qwen2"] = str(ensure_tiny_qwen2())
        args.rows, args.score_rows = 96, 64
        texts, labels = texts[:160], labels[:160]
    else:
        names = args.models.split(",")
        if "smollm2" in names and args.smollm2:
            folder = real_or_random(args.smollm2, Path(args.work))
            weights = "real weights" if folder == args.smollm2 else "random init of its config"
            models[f"SmolLM2-135M ({weights})"] = folder
        tokenizer_src = args.smollm2 or str(ensure_tiny())
        for key, label, shape in (("qwen0.5b-shape", "Qwen2.5-0.5B shape", QWEN05_SHAPE),
                                  ("qwen1.5b-shape", "Qwen2.5-1.5B shape", QWEN15_SHAPE)):  # fmt: skip
            if key in names:
                models[label] = str(shape_model(Path(args.work) / key, tokenizer_src, shape))
    from transformers import AutoTokenizer

    for name, folder in models.items():
        # One row per scoring path; a failure becomes one row saying why, as for training.
        def record_scoring(r: dict, model_name: str = name) -> None:
            for row in r.get("rows", [r]):
                record({"kind": "score", "model": model_name, **row})

        if args.score_only:
            timed(record_scoring, {"path": "scoring"},
                  lambda f=folder: {"rows": scoring_rows(f, texts[: args.score_rows], args)})  # fmt: skip
            continue
        tok = AutoTokenizer.from_pretrained(folder)
        mean_len = float(np.mean([min(len(ids), 256) for ids in tok(texts[:512])["input_ids"]]))
        rows_here = args.rows_15b if "1.5B" in name and args.rows_15b else args.rows
        n_train = rows_here + 256
        train_rows(
            name, folder, texts[:n_train], labels[:n_train], args,
            lambda r, f=folder, m=mean_len: record(add_mfu(r, f, m)),
        )  # fmt: skip
    if args.qlora_7b:
        # As configured by default, then with the embedding table in host memory.
        source = args.smollm2 or str(ensure_tiny())
        for extra in args.qlora_7b_params:
            base = {"kind": "qlora-7b", "model": "Qwen2-7B shape", "method": "qlora", "path": "ours"}
            timed(record, {**base, "method_params": extra},
                  lambda e=extra: qlora_7b_row(args, source, texts, labels, e))  # fmt: skip
    table = render(rows, machine())
    print(table)
    if args.out:
        from bench.markdown import replace_section

        replace_section(Path(args.out), "gpu-throughput", table)


def ensure_tiny() -> Path:
    from risk_app.models.tiny import ensure_tiny_qwen2

    return ensure_tiny_qwen2()


if __name__ == "__main__":
    main()
