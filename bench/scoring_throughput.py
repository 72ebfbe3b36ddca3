"""Benchmark: batch scoring throughput, length-grouped batches vs plain in-order batches.

    python bench/scoring_throughput.py

Scores the 1000 bundled applications with the tiny default model twice in one run:
  - ours: `risk_app.finetune.predict.predict_proba` (texts sorted by token length, so each
    batch pads to its own longest text);
  - plain: the usual library loop, batches in file order padded to the batch's longest text;
and checks both give the same probabilities. Results go to docs/performance.md.
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_label  # noqa: E402
from bench.markdown import replace_section  # noqa: E402
from risk_app import paths  # noqa: E402
from risk_app.data.load import load_applications  # noqa: E402
from risk_app.data.serialize import serialize_frame  # noqa: E402
from risk_app.finetune.predict import predict_proba  # noqa: E402
from risk_app.models.loader import load_classifier  # noqa: E402

BATCH, MAX_LENGTH, REPEATS = 64, 256, 3


@torch.inference_mode()
def plain_predict(model: torch.nn.Module, tokenizer, texts: list[str]) -> np.ndarray:  # noqa: ANN001
    out = []
    for i in range(0, len(texts), BATCH):
        enc = tokenizer(
            texts[i : i + BATCH], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        out.append(torch.softmax(model(**enc).logits.float(), -1)[:, 1].numpy())
    return np.concatenate(out)


def best_of(fn, *args) -> tuple[float, np.ndarray]:  # noqa: ANN001
    times, result = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    model, tokenizer = load_classifier("tiny-qwen2")
    model.eval()
    # Real applications have varied lengths; shuffle so file order carries no length pattern.
    texts = serialize_frame(load_applications(paths.DEFAULT_DATASET)).sample(frac=1, random_state=0).tolist()
    ours_s, ours = best_of(lambda t: predict_proba(model, tokenizer, t, BATCH, MAX_LENGTH), texts)
    plain_s, plain = best_of(plain_predict, model, tokenizer, texts)
    assert np.allclose(ours, plain, atol=1e-5), "both paths must give the same probabilities"
    n = len(texts)
    section = "\n".join(
        [
            f"## Batch scoring throughput on {machine_label('cpu')}",
            "",
            f"`python bench/scoring_throughput.py`: {n} applications, `tiny-qwen2`, batch {BATCH}, "
            f"best of {REPEATS}; both paths give the same probabilities (max diff "
            f"{np.abs(ours - plain).max():.1e}).",
            "",
            "| path | seconds | applications/s |",
            "|---|---|---|",
            f"| ours: length-grouped batches | {ours_s:.2f} | {n / ours_s:,.0f} |",
            f"| plain: batches in file order | {plain_s:.2f} | {n / plain_s:,.0f} |",
            "",
        ]
    )
    replace_section(ROOT / "docs" / "performance.md", "scoring-throughput", section, header="# Performance\n")
    print(section)


if __name__ == "__main__":
    main()
