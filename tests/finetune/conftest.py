"""Fixtures for these tests: one torch thread.

On a small shared machine, torch's default of one OpenMP thread per core thrashes as soon as
other processes compete for the cores (10x slower measured on 2 cores); one thread is
steady. The setting is process-wide, so it is restored after each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
