"""Frozen-feature LLM rows for the accuracy benchmark (used by bench/accuracy.py).

For each base named with `--frozen-bases` (catalogue names such as `qwen2.5-coder-0.5b`, a
folder or a .gguf file), the pooled features of every application are computed once
(`risk_app.finetune.features`, cached on disk across runs) at each requested layer. On each
split a head is then chosen on validation only — by default the linear `score` head
(learning rate, weight decay, epochs; `--frozen-heads logistic,linear` adds sklearn's logistic
regression over C, 5-10x slower on 900-1500 features), over the poolings and layers — calibrated
on validation like the fine-tuned LLM, and stacked with LightGBM into a hybrid.

Also here: the paired difference of two models' per-split test AUCs with its 95 % interval,
both the plain t interval and the Nadeau–Bengio corrected one (repeated random splits share
training rows, so the plain interval is too narrow).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FrozenFeatures = dict[str, dict[str, np.ndarray]]  # {"<layer>/<pooling>": {text: vector}} per base


def layer_index(base: str, layer: str) -> int:
    """'last' → -1, 'middle' → half the decoder layers, or an integer.

    A catalogue base's layer count comes from the catalogue, so a base whose features are all
    cached is never loaded (nor fetched); other bases are resolved to read their config.
    """
    from risk_app.models.catalogue import get_base, is_catalogue_name
    from risk_app.models.loader import resolve_source

    if layer == "last":
        return -1
    if layer != "middle":
        return int(layer)
    if is_catalogue_name(base):
        return get_base(base).n_layers // 2
    folder, _ = resolve_source(base)
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    return int(config["num_hidden_layers"]) // 2


def precompute(
    base: str,
    texts: list[str],
    layers: list[str],
    *,
    precision: str,
    max_length: int,
    batch_size: int,
    log: Callable[[str], None],
) -> dict[str, dict[str, np.ndarray]]:
    """{"L<index>/<pooling>": (n_texts, hidden)} for every text, computed once and cached."""
    from risk_app.finetune.features import POOLINGS, FeatureSettings, cached_features

    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        index = layer_index(base, layer)
        settings = FeatureSettings(max_length=max_length, precision=precision, layer=index)  # type: ignore[arg-type]
        started = time.perf_counter()
        pooled = cached_features(
            base, texts, settings=settings, batch_size=batch_size, progress=False, log=log
        )
        log(
            f"  features of {base} at layer {index}: {len(texts)} texts ready "
            f"in {time.perf_counter() - started:.0f}s"
        )
        for pooling in POOLINGS:
            out[f"L{index}/{pooling}"] = pooled[pooling]
    return out


def frozen_rows(
    base: str,
    features: dict[str, np.ndarray],
    row_of: dict[str, int],
    texts: dict[str, list[str]],
    y: dict[str, np.ndarray],
    *,
    seed: int,
    calibration: str,
    heads: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], float]:
    """Raw val P, calibrated val P, calibrated test P, the chosen head's description, seconds."""
    from risk_app.evaluate.calibration import fit_calibrator
    from risk_app.finetune.frozen_head import select_head

    started = time.perf_counter()
    index = {
        split: np.asarray([row_of[t] for t in texts[split]]) for split in ("train", "validation", "test")
    }
    candidates = {key: (x[index["train"]], x[index["validation"]]) for key, x in features.items()}
    head = select_head(candidates, y["train"], y["validation"], kinds=heads, seed=seed)  # type: ignore[arg-type]
    p_val_raw = head.predict(features[head.pooling][index["validation"]])
    p_test_raw = head.predict(features[head.pooling][index["test"]])
    calibrator = fit_calibrator(calibration, y["validation"], p_val_raw)  # type: ignore[arg-type]
    info = {
        "base": base,
        "head": head.kind,
        "features": head.pooling,
        "params": head.params,
        "val_auc_raw": round(head.val_auc, 4),
        "calibration": calibrator.describe(),
    }
    seconds = time.perf_counter() - started
    return p_val_raw, calibrator.transform(p_val_raw), calibrator.transform(p_test_raw), info, seconds


def paired_difference(
    model: list[float], reference: list[float], *, test_fraction: float = 0.15, train_fraction: float = 0.7
) -> dict[str, float]:
    """Mean of (model − reference) over splits, its plain 95 % t interval and the corrected one.

    Nadeau & Bengio (2003): with repeated random splits the per-split differences are
    correlated, so the variance of their mean is inflated by (1/n + n_test/n_train) instead of 1/n.
    """
    from scipy import stats

    d = np.asarray(model, dtype=float) - np.asarray(reference, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "n": n}
    sd = float(d.std(ddof=1))
    t = float(stats.t.ppf(0.975, n - 1))
    plain = t * sd / np.sqrt(n)
    corrected = t * sd * np.sqrt(1 / n + test_fraction / train_fraction)
    return {
        "mean": mean,
        "n": n,
        "sd": sd,
        "ci_low": mean - plain,
        "ci_high": mean + plain,
        "nb_low": mean - corrected,
        "nb_high": mean + corrected,
        "wins": int((d > 0).sum()),
    }


def render_paired(summary: dict[str, dict[str, Any]]) -> list[str]:
    """Test AUC minus LightGBM's on the same split: mean, 95 % intervals, splits won."""
    rows = [(name, s["vs_lightgbm"]) for name, s in summary.items() if "ci_low" in s.get("vs_lightgbm", {})]
    if not rows:
        return []
    lines = [
        "",
        "Paired difference in test ROC AUC against LightGBM on the same splits (model − LightGBM): "
        "the plain 95 % t interval, and the Nadeau–Bengio corrected one, which allows for the "
        "overlap between repeated random splits (use that one to call a difference real):",
        "",
        "| model | mean difference | 95 % CI (plain t) | 95 % CI (corrected) | splits above LightGBM |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, d in rows:
        lines.append(
            f"| {name} | {d['mean']:+.4f} | [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | "
            f"[{d['nb_low']:+.4f}, {d['nb_high']:+.4f}] | {d['wins']}/{d['n']} |"
        )
    return lines


def render_frozen(per_seed: list[dict[str, Any]]) -> list[str]:
    """Which head, features and hyper-parameters validation chose for each frozen base and split."""
    lines: list[str] = []
    for seed in per_seed:
        parts = []
        for name, row in seed["models"].items():
            if "frozen" in row:
                f = row["frozen"]
                params = ", ".join(f"{k}={v}" for k, v in f["params"].items())
                parts.append(
                    f"{name}: {f['head']} on {f['features']} ({params}), val AUC {f['val_auc_raw']:.3f}"
                )
        if parts:
            lines.append(f"- seed {seed['seed']}: " + "; ".join(parts))
    if lines:
        lines = ["", "Frozen-feature heads chosen on validation per split:", "", *lines]
    return lines
