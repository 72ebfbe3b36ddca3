"""Benchmark: every fine-tuning method on the same split → docs/methods.md.

    python bench/compare_methods.py                                    # tiny-qwen2, this CPU
    python bench/compare_methods.py --base-model model.gguf --device cuda --epochs 3

A thin wrapper over `risk-app compare-methods` (same options), kept here so every benchmark
is one command under bench/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from risk_app.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["compare-methods", *sys.argv[1:]])
