"""Every benchmark script imports: a library change that breaks a benchmark fails here, not on
the day someone needs the numbers."""

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__"))
def test_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
