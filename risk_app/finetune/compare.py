"""Train every registered fine-tuning method on the same split and compare them.

    risk-app compare-methods                                   # tiny-qwen2 on this CPU
    risk-app compare-methods --base-model SmolLM2.gguf --device cuda --epochs 3

Each method gets the same data, seed, epochs and learning rate (a method may override the
learning rate where its parameters need a different scale, listed in `LR_OVERRIDES`). The
table gives trainable share, wall time, peak memory, tokens per second and test AUC / KS /
Brier at a validation-chosen threshold, and is written into docs/methods.md under a heading
naming the machine, so CPU and GPU results live side by side.
"""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import torch

from risk_app import paths
from risk_app.errors import RiskAppError
from risk_app.evaluate.metrics import choose_threshold, credit_metrics
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import get_method, list_methods
from risk_app.finetune.trainer import train_classifier
from risk_app.markdown import replace_section


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a label, a registered method and its parameters."""

    label: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


def default_variants() -> list[Variant]:
    """Every registered method with its defaults, plus the quantum head's classical twin
    (same trainable-parameter count), so the quantum row always has its comparison."""
    variants = [Variant(name, name) for name, _ in list_methods()]
    if any(v.method == "quantum" for v in variants):
        variants.append(Variant("quantum (classical head)", "quantum", {"head": "classical"}))
    return variants


class PeakMemory:
    """Peak memory of one run: CUDA's allocator peak, or sampled process RSS on the CPU.

    `ru_maxrss` is the process-lifetime peak and would charge every method with the largest
    earlier one, so on the CPU a thread samples RSS every 20 ms instead.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            process = psutil.Process()
            self.start_mb = self.peak_mb = process.memory_info().rss / 2**20

            def sample() -> None:
                while not self._stop.is_set():
                    self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
                    self._stop.wait(0.02)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()


def run_variant(
    variant: Variant, examples: pd.DataFrame, base: TrainConfig, checkpoint_root: Path
) -> dict[str, Any]:
    """Train one variant on the shared split; return its row of the comparison table."""
    config = base.model_copy(update={"method": variant.method, "method_params": dict(variant.params)})
    config = TrainConfig.from_dict(config.model_dump())
    parts = {s: examples.loc[examples["split"] == s] for s in ("train", "validation", "test")}
    with PeakMemory(config.device if config.device != "auto" else _auto_device()) as memory:
        started = time.perf_counter()
        result = train_classifier(
            parts["train"]["text"].tolist(), parts["train"]["default"].to_numpy(),
            parts["validation"]["text"].tolist(), parts["validation"]["default"].to_numpy(),
            config, checkpoint_dir=checkpoint_root / re.sub(r"\W+", "_", variant.label), progress=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
    y_val = parts["validation"]["default"].to_numpy()
    p_val = result.best_val_proba
    threshold = choose_threshold(y_val, p_val)
    y_test = parts["test"]["default"].to_numpy()
    p_test = predict_proba(
        result.model,
        result.tokenizer,
        parts["test"]["text"].tolist(),
        config.eval_batch_size,
        config.max_length,
    )
    test = credit_metrics(y_test, p_test, threshold)
    return {
        "method": variant.label,
        "trainable_params": result.trainable_params,
        "trainable_percent": result.trainable_percent,
        "wall_seconds": wall,
        "peak_memory_mb": memory.peak_mb,
        # On the CPU the process already holds the libraries and data; the growth is the run's own.
        "memory_growth_mb": memory.peak_mb - memory.start_mb,
        "tokens_per_second": result.tokens_per_second,
        "epochs_run": len(result.history),
        "val_roc_auc": float(result.best_val_auc),
        "test_roc_auc": test["roc_auc"],
        "test_ks": test["ks"],
        "test_brier": test["brier"],
    }


def _auto_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def compare_methods(
    examples: pd.DataFrame,
    base: TrainConfig,
    variants: Sequence[Variant] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Train each variant on the same examples; a failing method becomes a row with its error."""
    rows = []
    root = paths.runs_dir() / f"compare-{time.strftime('%Y%m%dT%H%M%S')}"
    for variant in variants or default_variants():
        get_method(variant.method)  # unknown names fail before any training
        try:
            row = run_variant(variant, examples, base, root)
        except (RiskAppError, RuntimeError, ValueError) as exc:
            # One method that cannot run here (e.g. paged optimizers without CUDA) must not
            # hide the others' results; the table says why that row is empty.
            row = {"method": variant.label, "error": f"{type(exc).__name__}: {exc}"[:300]}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return pd.DataFrame(rows)


def machine_label(device: str) -> str:
    """'GPU NVIDIA H100 80GB HBM3' or 'CPU <model>, N cores' — every figure names its machine."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def render_table(table: pd.DataFrame) -> str:
    columns = [
        ("method", "method", "{}"), ("trainable_percent", "trainable %", "{:.3f}"),
        ("trainable_params", "trainable params", "{:,.0f}"), ("wall_seconds", "wall s", "{:.1f}"),
        ("peak_memory_mb", "peak MB", "{:.0f}"),
        ("memory_growth_mb", "growth MB", "{:.0f}"), ("tokens_per_second", "tokens/s", "{:,.0f}"),
        ("val_roc_auc", "val AUC", "{:.3f}"), ("test_roc_auc", "test AUC", "{:.3f}"),
        ("test_ks", "test KS", "{:.3f}"), ("test_brier", "test Brier", "{:.3f}"),
    ]  # fmt: skip
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in table.to_dict("records"):
        if isinstance(row.get("error"), str):
            lines.append(f"| {row['method']} | failed: {row['error']} |" + " |" * (len(columns) - 2))
            continue
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append(
                "" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DOC_HEADER = (
    "# Fine-tuning methods compared\n\n"
    "Written by `risk-app compare-methods` (or `python bench/compare_methods.py`). Every method "
    "trains on the same stratified split (seed 42) with the same epochs and learning rate; the "
    "threshold is chosen on validation and AUC/KS/Brier are measured once on test. Peak memory "
    "is CUDA's allocator peak on a GPU and sampled process RSS on a CPU (growth = peak minus "
    "the RSS before that method's run). Each section names the machine that produced it.\n"
)


def write_section(path: Path, key: str, body: str) -> None:
    """Replace this machine/base-model section in the doc (or append it); keep the others."""
    replace_section(path, f"methods: {key}", f"## {key}\n\n{body}", header=DOC_HEADER)
