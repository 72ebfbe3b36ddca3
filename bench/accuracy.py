"""Accuracy benchmark: does the fine-tuned LLM match the classical baselines on German credit?

For each seed s in 0..n-1 the bundled German credit file is split 70/15/15 (stratified on
default, grouped by source application, `build_training_examples(seed=s)`), and on that split:

* `logistic` and `lightgbm` are fitted on the train rows (typed columns);
* `llm` is fine-tuned on the train texts, `llm+aug` on the train texts plus augmented copies
  of them (validation and test are never augmented; copies share their source's split);
* each LLM's P(default) is calibrated on validation (`--calibration`, default temperature);
* `hybrid` stacks the better LLM (by validation AUC) with LightGBM, fitted on validation with
  cross-fitting (see risk_app/evaluate/hybrid.py).

Every model's decline threshold is chosen on validation; test is scored once. The table gives
mean ± std over seeds of test ROC AUC, KS, Brier and F1, plus validation AUC and wall time.
Results replace this machine+model+method's section of docs/accuracy.md (other sections are
kept) and, with --json, go to a JSON file with per-seed numbers and all settings.

    # CPU, the embedded tiny model (a few minutes; --threads 1 is much faster on a busy CPU):
    python bench/accuracy.py --base-model tiny-qwen2 --device cpu --seeds 5 --threads 1
    # baselines only (seconds):
    python bench/accuracy.py --skip-llm --seeds 5
    # GPU, SmolLM2-135M from a GGUF file (converted once to a safetensors folder and reused):
    python bench/accuracy.py --base-model /path/SmolLM2-135M-Instruct.Q4_1.gguf --device cuda \
        --seeds 5 --method lora --lr 2e-4 --epochs 4 --json accuracy-gpu.json
    python bench/accuracy.py --base-model /path/SmolLM2-135M-Instruct.Q4_1.gguf --device cuda \
        --seeds 5 --method full --lr 3e-5 --epochs 3 --batch-size 16
    # CPU, heads on frozen features of real bases (features computed once, cached; ~5 min
    # per base and layer for the 0.5B in bf16 on 2 cores, then seconds per split):
    python bench/accuracy.py --skip-llm --seeds 10 --threads 2 \
        --frozen-bases smollm2-135m,qwen2.5-coder-0.5b

`--frozen-bases` adds, per base, `frozen:<base>` (a head on pooled frozen features, chosen on
validation; see bench/frozen_heads.py) and `hybrid:<base>` (that head stacked with LightGBM).
Every row is compared with LightGBM on the same splits: the mean paired difference of test
AUC with its plain and its Nadeau-Bengio corrected 95 % interval.

Only risk_app.data / finetune / evaluate / augment / models are imported (no MLflow, no
Dagster, no artifacts). Needs pandera, scikit-learn, lightgbm; with the LLM also torch,
transformers, peft, and nlpaug for augmentation.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/accuracy.py` without an installed package
    sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from risk_app import paths  # noqa: E402
from risk_app.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from risk_app.errors import ConfigError, RiskAppError  # noqa: E402

MODEL_ROWS = ("logistic", "lightgbm", "llm", "llm+aug", "hybrid")  # then frozen:/hybrid:<base> rows
SUMMARY_METRICS = (("roc_auc", "test ROC AUC"), ("ks", "KS"), ("brier", "Brier"), ("f1", "F1"))
DEFAULT_OUT = ROOT / "docs" / "accuracy.md"
DOC_HEADER = (
    "# Accuracy benchmark: fine-tuned LLM vs classical baselines\n\n"
    "Sections below are written by `python bench/accuracy.py`; each run replaces only the "
    "section of its own machine, base model and method.\n"
)
_START = "<!-- BEGIN accuracy-bench: {key} -->"
_END = "<!-- END accuracy-bench: {key} -->"
_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


# ---- setup -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--base-model", default="tiny-qwen2", help="'tiny-qwen2', a local folder, a hub id or a .gguf file"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seeds", type=int, default=5, help="number of splits: seeds 0..N-1")
    p.add_argument("--method", default="lora", help="registered fine-tuning method (lora, full, freeze ...)")
    p.add_argument("--method-params", default="{}", help="JSON object of the method's parameters")
    p.add_argument("--epochs", type=int, help="max epochs (TrainConfig default if omitted)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--batch-size", type=int, help="training batch size")
    p.add_argument("--max-length", type=int, help="token limit per text")
    p.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs (0 = off)")
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="autocast (auto = bf16 on CUDA)"
    )
    p.add_argument("--max-train-rows", type=int, help="LLM trains on a stratified subset of this many rows")
    p.add_argument("--calibration", choices=["none", "temperature", "isotonic"], default="temperature")
    p.add_argument(
        "--hybrid", choices=["logistic", "convex"], default="logistic", help="stacker of LLM + LightGBM"
    )
    p.add_argument("--threshold-objective", choices=["f1", "youden"], default="f1")
    p.add_argument(
        "--augment-copies", type=int, default=1, help="augmented copies per train row (0 = no llm+aug)"
    )
    p.add_argument(
        "--skip-llm", action="store_true", help="no fine-tuning (baselines, and frozen heads if asked)"
    )
    p.add_argument("--frozen-bases", default="", help="comma-separated bases for frozen-feature heads")
    p.add_argument("--frozen-layers", default="last,middle", help="feature layers: last, middle or an index")
    p.add_argument(
        "--frozen-heads", default="linear", help="head kinds tried on validation: linear, logistic"
    )
    p.add_argument(
        "--frozen-precision", choices=["fp32", "bf16"], default="bf16", help="feature forward pass"
    )
    p.add_argument("--frozen-max-length", type=int, default=256, help="token limit for features")
    p.add_argument("--frozen-batch-size", type=int, default=8, help="texts per feature forward pass")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument(
        "--dataset", default=None, help="built-in data set name or spec file (default german_credit)"
    )
    p.add_argument("--data", default=None, help="labelled applications (default: the data set's own file)")
    p.add_argument("--model-cache", help="folder for the safetensors copy of a .gguf base model")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="markdown file to update")
    p.add_argument("--json", help="also write all numbers here (JSON)")
    p.add_argument("--verbose", action="store_true", help="show per-batch progress bars and library logs")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    if args.augment_copies < 0:
        p.error("--augment-copies must be >= 0")
    args.frozen_bases = [b.strip() for b in args.frozen_bases.split(",") if b.strip()]
    args.frozen_layers = [x.strip() for x in args.frozen_layers.split(",") if x.strip()]
    args.frozen_heads = tuple(h.strip() for h in args.frozen_heads.split(",") if h.strip())
    if not set(args.frozen_heads) <= {"logistic", "linear"} or not args.frozen_heads:
        p.error("--frozen-heads: choose from logistic, linear")
    try:
        args.method_params = json.loads(args.method_params)
    except json.JSONDecodeError as exc:
        p.error(f"--method-params is not JSON: {exc}")
    if not isinstance(args.method_params, dict):
        p.error("--method-params must be a JSON object, e.g. '{\"r\": 16}'")
    return args


def check_requirements(args: argparse.Namespace) -> None:
    """Fail at once, naming every missing package, rather than after the first seed."""
    needed = {"pandera": "data validation", "sklearn": "baselines/metrics", "lightgbm": "LightGBM baseline"}
    if args.frozen_bases:
        needed.update({"torch": "frozen features", "transformers": "base models"})
    if not args.skip_llm:
        needed.update({"torch": "fine-tuning", "transformers": "base models", "peft": "fine-tuning methods"})
        if args.augment_copies:
            needed["nlpaug"] = "augmentation (or pass --augment-copies 0)"
    missing = [f"{name} ({why})" for name, why in needed.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            "bench/accuracy.py needs packages that are not installed: "
            + ", ".join(missing)
            + "; install them or carry their site-packages folders"
        )


def train_config_values(args: argparse.Namespace, base_model: str) -> dict[str, Any]:
    """TrainConfig fields set on the command line (the rest keep TrainConfig's defaults)."""
    values: dict[str, Any] = {
        "method": args.method,
        "method_params": args.method_params,
        "base_model": base_model,
        "device": args.device,
    }
    optional = {
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "label_smoothing": args.label_smoothing,
        "patience": args.patience,
        "precision": args.precision,
        "max_train_rows": args.max_train_rows,
    }
    values.update({k: v for k, v in optional.items() if v is not None})
    return values


def resolve_base_model(name: str, cache: str | None) -> str:
    """The folder/name to load each seed; a .gguf file is converted once and the folder reused."""
    if not name.lower().endswith(".gguf"):
        return name
    from risk_app.models.convert import convert_gguf_to_safetensors

    gguf = Path(name).expanduser().resolve()
    if not gguf.is_file():
        raise ConfigError(f"--base-model {name!r}: GGUF file does not exist")
    if cache:
        target = Path(cache).expanduser()
    elif os.access(gguf.parent, os.W_OK):
        target = gguf.parent / f"{gguf.stem}-safetensors"
    else:
        target = paths.models_dir() / f"{gguf.stem}-safetensors"
    if (target / "config.json").is_file():
        log(f"reusing converted base model {target}")
        return str(target)
    log(f"converting {gguf.name} to safetensors at {target} (once) ...")
    started = time.perf_counter()
    convert_gguf_to_safetensors(gguf, target)
    log(f"converted in {time.perf_counter() - started:.1f}s")
    return str(target)


def machine_info(device: str) -> dict[str, Any]:
    cpu = cpu_model()
    info: dict[str, Any] = {
        "node": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": None,
    }
    versions = {}
    for package in (
        "torch",
        "transformers",
        "peft",
        "scikit-learn",
        "lightgbm",
        "pandas",
        "pandera",
        "nlpaug",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    info["versions"] = versions
    if "torch" in versions:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if device != "cpu" and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def section_key(machine: dict[str, Any], args: argparse.Namespace) -> str:
    hardware = f"GPU {machine['gpu']}" if machine["gpu"] else f"CPU {machine['cpu']}"
    if args.spec.name != "german_credit":  # German credit's sections predate data-set names
        hardware = f"{args.spec.name} / {hardware}"
    if args.skip_llm and args.frozen_bases:
        return f"{hardware} / frozen heads on {', '.join(Path(b).name for b in args.frozen_bases)}"
    if args.skip_llm:
        return f"{hardware} / baselines only"
    return f"{hardware} / {Path(args.base_model).name} / {args.method}"


# ---- one split ---------------------------------------------------------------------------
def split_frames(valid: pd.DataFrame, examples: pd.DataFrame, id_column: str) -> dict[str, pd.DataFrame]:
    """The structured rows of each split, in the same order as that split's original texts."""
    by_id = valid.set_index(valid[id_column].astype(str), drop=False)
    frames = {}
    for split in ("train", "validation", "test"):
        ids = examples.loc[
            (examples["split"] == split) & ~examples["augmented"].astype(bool), "application_id"
        ]
        frames[split] = by_id.loc[ids.to_numpy()].reset_index(drop=True)
    return frames


def score_model(
    name: str,
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    seconds: float,
    objective: str,
    threshold_scores: np.ndarray | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Threshold on validation (or on `threshold_scores`, the hybrid's out-of-fold ones), test metrics."""
    from risk_app.evaluate.metrics import choose_threshold, credit_metrics

    val_for_threshold = p_val if threshold_scores is None else threshold_scores
    threshold = choose_threshold(y_val, val_for_threshold, objective=objective)  # type: ignore[arg-type]
    test = credit_metrics(y_test, p_test, threshold)
    val = credit_metrics(y_val, val_for_threshold, threshold)
    row = {k: v for k, v in test.items() if k != "confusion_matrix"}
    row.update(
        {"confusion_matrix": test["confusion_matrix"], "val_roc_auc": val["roc_auc"], "seconds": seconds}
    )
    row.update(extra)
    log(f"  {name:9s} test AUC {row['roc_auc']:.4f}  val AUC {row['val_roc_auc']:.4f}  ({seconds:.1f}s)")
    return row


def fine_tune(
    train: pd.DataFrame,
    val_texts: list[str],
    y_val: np.ndarray,
    test_texts: list[str],
    config_values: dict[str, Any],
    calibration: str,
    verbose: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], float]:
    """Train on `train` texts; return raw val P, calibrated val P, calibrated test P, info, seconds."""
    import torch

    from risk_app.evaluate.calibration import fit_calibrator
    from risk_app.finetune.config import TrainConfig
    from risk_app.finetune.predict import predict_proba
    from risk_app.finetune.trainer import train_classifier

    config = TrainConfig.from_dict(config_values)
    started = time.perf_counter()
    result = train_classifier(
        train["text"].tolist(),
        train["default"].to_numpy(dtype=np.int64),
        val_texts,
        y_val,
        config,
        checkpoint_dir=None,
        progress=verbose,
    )
    p_val_raw = result.best_val_proba
    if p_val_raw is None:
        p_val_raw = predict_proba(
            result.model, result.tokenizer, val_texts, config.eval_batch_size, config.max_length
        )
    p_test_raw = predict_proba(
        result.model, result.tokenizer, test_texts, config.eval_batch_size, config.max_length
    )
    seconds = time.perf_counter() - started
    calibrator = fit_calibrator(calibration, y_val, p_val_raw)  # type: ignore[arg-type]
    info = {
        "train_rows": len(train) if config.max_train_rows is None else min(len(train), config.max_train_rows),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "val_auc_per_epoch": [round(h["val_auc"], 4) for h in result.history],
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "tokens_per_second": round(result.tokens_per_second, 1),
        "calibration": calibrator.describe(),
        "device": result.device,
    }
    del result
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return p_val_raw, calibrator.transform(p_val_raw), calibrator.transform(p_test_raw), info, seconds


def run_seed(
    seed: int,
    valid: pd.DataFrame,
    args: argparse.Namespace,
    base_model: str,
    frozen: dict[str, dict[str, np.ndarray]] | None = None,
    row_of: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every model on the split of `seed`; returns {model name: metrics row} plus split sizes.

    `frozen` holds each frozen base's precomputed features ({base: {"L<i>/<pooling>": matrix}}),
    whose rows `row_of` maps from text.
    """
    from risk_app.data.examples import build_training_examples
    from risk_app.evaluate.baselines import fit_baseline, predict_default
    from risk_app.evaluate.hybrid import fit_hybrid

    examples = build_training_examples(valid, seed=seed, spec=args.spec)
    frames = split_frames(valid, examples, args.spec.id_column)
    originals = examples.loc[~examples["augmented"].astype(bool)]
    texts = {s: originals.loc[originals["split"] == s, "text"].tolist() for s in ("validation", "test")}
    y_val = frames["validation"]["default"].to_numpy(dtype=int)
    y_test = frames["test"]["default"].to_numpy(dtype=int)
    sizes = {s: len(f) for s, f in frames.items()}
    log(f"seed {seed}: train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}")
    models: dict[str, dict[str, Any]] = {}
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    for name in ("logistic", "lightgbm"):
        started = time.perf_counter()
        model = fit_baseline(name, frames["train"], seed=seed, spec=args.spec)  # type: ignore[arg-type]
        p_val = predict_default(model, frames["validation"], args.spec)
        p_test = predict_default(model, frames["test"], args.spec)
        scores[name] = (p_val, p_test)
        models[name] = score_model(
            name, y_val, p_val, y_test, p_test, time.perf_counter() - started, args.threshold_objective
        )
    if frozen and row_of is not None:
        split_texts = {**texts, "train": originals.loc[originals["split"] == "train", "text"].tolist()}
        labels = {s: f["default"].to_numpy(dtype=int) for s, f in frames.items()}
        for base, features in frozen.items():
            run_frozen(base, features, row_of, split_texts, labels, seed, args, models, scores)

    if not args.skip_llm:
        config_values = train_config_values(args, base_model) | {"seed": seed}
        variants = [("llm", examples)]
        if args.augment_copies:
            from risk_app.augment import AugmentConfig, augment_training_examples

            aug_config = AugmentConfig(enabled=True, copies_per_row=args.augment_copies, seed=seed)
            variants.append(("llm+aug", augment_training_examples(examples, valid, aug_config).frame))
        raw_val_auc = {}
        for name, frame in variants:
            train = frame.loc[frame["split"] == "train"]
            cap = f" (capped at {args.max_train_rows})" if args.max_train_rows else ""
            log(f"  {name}: fine-tuning on {len(train)} texts{cap} ...")
            p_raw, p_val, p_test, info, seconds = fine_tune(
                train,
                texts["validation"],
                y_val,
                texts["test"],
                config_values,
                args.calibration,
                args.verbose,
            )
            from sklearn.metrics import roc_auc_score

            raw_val_auc[name] = float(roc_auc_score(y_val, p_raw))
            scores[name] = (p_val, p_test)
            models[name] = score_model(
                name, y_val, p_val, y_test, p_test, seconds, args.threshold_objective, training=info
            )
        # The hybrid's LLM is chosen on validation too: whichever variant ranked validation better.
        source = max(raw_val_auc, key=lambda n: raw_val_auc[n])
        started = time.perf_counter()
        hybrid = fit_hybrid(y_val, scores[source][0], scores["lightgbm"][0], kind=args.hybrid, seed=seed)
        p_test = hybrid.predict(scores[source][1], scores["lightgbm"][1])
        models["hybrid"] = score_model(
            "hybrid",
            y_val,
            hybrid.val_oof,
            y_test,
            p_test,
            time.perf_counter() - started,
            args.threshold_objective,
            llm_source=source,
            stacker=hybrid.params,
        )
    return {"seed": seed, "sizes": sizes, "models": models}


def run_frozen(
    base: str,
    features: dict[str, np.ndarray],
    row_of: dict[str, int],
    texts: dict[str, list[str]],
    y: dict[str, np.ndarray],
    seed: int,
    args: argparse.Namespace,
    models: dict[str, dict[str, Any]],
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Add `frozen:<base>` (head on frozen features) and `hybrid:<base>` (stacked with LightGBM)."""
    from bench.frozen_heads import frozen_rows
    from risk_app.evaluate.hybrid import fit_hybrid

    name = f"frozen:{Path(base).name}"
    _raw, p_val, p_test, info, seconds = frozen_rows(
        base, features, row_of, texts, y, seed=seed, calibration=args.calibration, heads=args.frozen_heads
    )
    scores[name] = (p_val, p_test)
    models[name] = score_model(
        name, y["validation"], p_val, y["test"], p_test, seconds, args.threshold_objective, frozen=info
    )
    started = time.perf_counter()
    hybrid = fit_hybrid(y["validation"], p_val, scores["lightgbm"][0], kind=args.hybrid, seed=seed)
    models[f"hybrid:{Path(base).name}"] = score_model(
        f"hybrid:{Path(base).name}",
        y["validation"],
        hybrid.val_oof,
        y["test"],
        hybrid.predict(p_test, scores["lightgbm"][1]),
        time.perf_counter() - started,
        args.threshold_objective,
        llm_source=name,
        stacker=hybrid.params,
    )


# ---- summary and report ------------------------------------------------------------------
def summarize(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """mean and std (ddof=1; None for one seed) of each scalar metric, per model."""
    summary: dict[str, dict[str, Any]] = {}
    names = list(MODEL_ROWS) + [n for s in per_seed for n in s["models"] if n not in MODEL_ROWS]
    for name in dict.fromkeys(names):
        rows = [seed["models"][name] for seed in per_seed if name in seed["models"]]
        if not rows:
            continue
        stats: dict[str, Any] = {"n_seeds": len(rows)}
        for metric in ("roc_auc", "ks", "brier", "f1", "precision", "recall", "val_roc_auc", "seconds"):
            values = np.array([row[metric] for row in rows], dtype=float)
            stats[metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "values": values.round(6).tolist(),
            }
        summary[name] = stats
    if "lightgbm" in summary:
        from bench.frozen_heads import paired_difference

        reference = summary["lightgbm"]["roc_auc"]["values"]
        for name, stats in summary.items():
            if name != "lightgbm" and stats["n_seeds"] == len(reference):
                stats["vs_lightgbm"] = paired_difference(stats["roc_auc"]["values"], reference)
    return summary


def _pm(stat: dict[str, Any], digits: int = 4) -> str:
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def render_section(key: str, results: dict[str, Any]) -> str:
    summary, settings, machine = results["summary"], results["settings"], results["machine"]
    lines = [_START.format(key=key), f"## {key}", ""]
    lines.append(
        f"Run {results['finished_utc']} on `{machine['node']}` ({machine['cpu']}, {machine['cpu_count']} CPUs"
        + (f", GPU {machine['gpu']}" if machine["gpu"] else "")
        + f"), commit `{machine.get('git_commit')}`, {results['wall_seconds']:.0f}s in total."
    )
    lines += ["", "```", results["command"], "```", ""]
    header = (
        "| model | " + " | ".join(label for _, label in SUMMARY_METRICS) + " | val ROC AUC | seconds / seed |"
    )
    lines += [header, "|---|" + "---:|" * (len(SUMMARY_METRICS) + 2)]
    for name, stats in summary.items():
        cells = [_pm(stats[m]) for m, _ in SUMMARY_METRICS] + [
            _pm(stats["val_roc_auc"]),
            _pm(stats["seconds"], 1),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    seeds = [s["seed"] for s in results["per_seed"]]
    lines += [
        "",
        f"Mean ± sample std over {len(seeds)} split(s) (seeds {seeds[0]}..{seeds[-1]}). "
        "Thresholds (max F1 unless noted in settings) chosen on validation; test seen once. "
        "The hybrid's seconds are the stacking alone.",
        "",
    ]
    lines += [
        "Test ROC AUC per seed:",
        "",
        "| model | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---:|" * len(seeds),
    ]
    for name, stats in summary.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in stats["roc_auc"]["values"]) + " |")
    from bench.frozen_heads import render_frozen, render_paired

    lines += render_paired(summary)
    lines += render_frozen(results["per_seed"])
    if any("llm" in s["models"] for s in results["per_seed"]):
        lines += ["", "LLM runs per seed (best epoch / epochs run, calibration, hybrid):", ""]
        for seed in results["per_seed"]:
            parts = []
            for name in ("llm", "llm+aug"):
                if name in seed["models"]:
                    t = seed["models"][name]["training"]
                    cal = t["calibration"]
                    cal_text = f"T={cal['temperature']:.2f}" if "temperature" in cal else cal["kind"]
                    parts.append(
                        f"{name}: {t['train_rows']} rows, epoch {t['best_epoch']}/{t['epochs_run']}, "
                        f"{cal_text}"
                    )
            hybrid = seed["models"].get("hybrid")
            if hybrid:
                stacker = ", ".join(
                    f"{k}={v:.3f}" for k, v in hybrid["stacker"].items() if isinstance(v, float)
                )
                parts.append(f"hybrid on {hybrid['llm_source']} ({stacker})")
            lines.append(f"- seed {seed['seed']}: " + "; ".join(parts))
    shown = {k: v for k, v in settings.items() if k not in ("out", "json", "verbose", "spec")}
    lines += [
        "",
        "<details><summary>Settings and library versions</summary>",
        "",
        "```json",
        json.dumps({"settings": shown, "versions": machine["versions"]}, indent=1, default=str),
        "```",
        "",
        "</details>",
        _END.format(key=key),
        "",
    ]
    return "\n".join(lines)


def update_markdown(path: Path, key: str, section: str) -> None:
    """Replace the section with this key (or append it); other sections stay as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_HEADER
    pattern = re.compile(
        re.escape(_START.format(key=key)) + r".*?" + re.escape(_END.format(key=key)) + r"\n?", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(path, text)


# ---- entry point -------------------------------------------------------------------------
def prepare_frozen(
    valid: pd.DataFrame, args: argparse.Namespace
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Features of every application's text for each frozen base, computed once (cached on disk)."""
    if not args.frozen_bases:
        return {}, {}
    from bench.frozen_heads import precompute
    from risk_app.data.examples import build_training_examples

    texts = list(dict.fromkeys(build_training_examples(valid, seed=0, spec=args.spec)["text"].tolist()))
    frozen = {
        base: precompute(
            base,
            texts,
            args.frozen_layers,
            precision=args.frozen_precision,
            max_length=args.frozen_max_length,
            batch_size=args.frozen_batch_size,
            log=log,
        )
        for base in args.frozen_bases
    }
    return frozen, {text: i for i, text in enumerate(texts)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns everything written to the JSON file."""
    args = parse_args(argv)
    check_requirements(args)
    started = time.perf_counter()
    if not args.skip_llm or args.frozen_bases:
        import torch
        import transformers

        if args.threads:
            torch.set_num_threads(args.threads)
        if not args.verbose:
            # Library chatter (load reports, deprecation notices) would drown the progress lines.
            warnings.filterwarnings("ignore", category=FutureWarning)
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
    if not args.skip_llm:
        from risk_app.finetune.registry import resolve_method  # registers the built-in methods on first use

        resolve_method(args.method, args.method_params)  # bad method/params fail before any work

    from risk_app.data.load import load_applications
    from risk_app.data.validate import validate_applications
    from risk_app.finetune.config import TrainConfig

    base_model = args.base_model
    if not args.skip_llm:
        TrainConfig.from_dict(train_config_values(args, base_model))  # fail fast on bad options
        base_model = resolve_base_model(args.base_model, args.model_cache)
    from data_contracts.spec import load_spec

    args.spec = load_spec(args.dataset)
    args.data = args.data or str(args.spec.data_path)
    validation = validate_applications(
        load_applications(args.data, spec=args.spec), source=args.data, spec=args.spec
    )
    if validation.n_quarantined:
        log(f"{validation.n_quarantined} row(s) of {args.data} failed the contract and are left out")
    machine = machine_info(args.device)
    key = section_key(machine, args)
    log(f"accuracy benchmark: {key}; {validation.n_valid} applications, {args.seeds} seed(s)")

    frozen, row_of = prepare_frozen(validation.valid, args)
    per_seed = [
        run_seed(seed, validation.valid, args, base_model, frozen, row_of) for seed in range(args.seeds)
    ]
    summary = summarize(per_seed)
    results = {
        "command": "python bench/accuracy.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "finished_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": time.perf_counter() - started,
        "section": key,
        "machine": machine,
        "settings": {
            **{k: v for k, v in vars(args).items() if k != "spec"},
            "dataset": args.spec.name,
            "resolved_base_model": base_model,
            "train_config": None
            if args.skip_llm
            else TrainConfig.from_dict(train_config_values(args, base_model)).model_dump(exclude={"seed"}),
        },
        "summary": summary,
        "per_seed": per_seed,
    }
    update_markdown(Path(args.out), key, render_section(key, results))
    log(f"wrote section {key!r} of {args.out}")
    if args.json:
        atomic_write_json(args.json, results)
        log(f"wrote {args.json}")
    for name, stats in summary.items():
        cells = "  ".join(f"{label} {_pm(stats[metric])}" for metric, label in SUMMARY_METRICS)
        log(f"{name:9s} {cells}")
    return results


if __name__ == "__main__":
    try:
        main()
    except RiskAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
