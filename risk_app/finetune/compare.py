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

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import torch

from risk_app import paths
from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.metrics import choose_threshold, credit_metrics
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import list_methods, method_config_class
from risk_app.finetune.trainer import train_classifier


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a label, a registered method and its parameters."""

    label: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


def default_variants() -> list[Variant]:
    """Every registered method with its defaults, plus the quantum head's classical twin
    (same trainable-parameter count), so the quantum row always has its comparison. `rlhf`
    learns from the override ledger, empty in a comparison: it runs on the SYNTHETIC demo
    feedback instead, and its row says so."""
    variants = [
        Variant("rlhf (synthetic demo feedback)", name, {"feedback_source": "synthetic_demo"})
        if name == "rlhf"
        else Variant(name, name)
        for name, _ in list_methods()
    ]
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
    with PeakMemory(config.device if config.device != "auto" else auto_device()) as memory:
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


def auto_device() -> str:
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
        method_config_class(variant.method)  # unknown names fail before any training
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


def select_variants(names: Sequence[str]) -> list[Variant]:
    """The default variants, or only those named (by method or label); unknown names are refused."""
    variants = default_variants()
    if not names:
        return variants
    chosen = [v for v in variants if v.method in names or v.label in names]
    known = {v.method for v in variants} | {v.label for v in variants}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; registered: {sorted({v.method for v in variants})}")
    return chosen
