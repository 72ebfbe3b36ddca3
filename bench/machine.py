"""The machine a benchmark ran on, in words: every figure in docs/ names its machine.

Kept apart from the benchmarks themselves so a GPU run imports nothing but torch for it.
"""

from __future__ import annotations

import os
import platform

import torch


def machine_label(device: str) -> str:
    """'GPU NVIDIA H100 80GB HBM3' or 'CPU <model>, N cores' — every figure names its machine."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else (platform.processor() or platform.machine())
