"""Fine-tuning imports only what it trains with: a GPU lease carries torch and transformers,
not the warehouse (duckdb) nor the tracking server (mlflow).

The second text lease of issue 22 died at import because `trainer` imported every objective,
`rlhf`'s override-ledger feedback imported the outcome book and that imported duckdb, which the
lease had not carried. The trainer now imports an objective's module when a run uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

from risk_app.finetune.objectives.base import get_objective
from risk_app.finetune.types import ObjectiveName

REPO_ROOT = Path(__file__).resolve().parents[2]

# What bench/gpu/llm_text.py's `finetune` and `features` import, with the method and objective a
# full fine-tuning run resolves, in a fresh interpreter where duckdb and mlflow cannot be imported
# (a None entry in sys.modules makes `import duckdb` raise ImportError, as on the bare lease).
LEASE = """
import sys
sys.modules["duckdb"] = None
sys.modules["mlflow"] = None
import risk_app.finetune.config, risk_app.finetune.features, risk_app.finetune.predict
import risk_app.finetune.speed, risk_app.models.loader, bench.frozen_heads, bench.gpu.llm_text
from risk_app.finetune.objectives.base import get_objective
from risk_app.finetune.registry import resolve_method
from risk_app.finetune.trainer import train_classifier
print(get_objective(resolve_method("full").objective).__name__)
"""


def test_full_fine_tuning_imports_without_duckdb_or_mlflow() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEASE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "supervised_fit"


def test_every_objective_name_resolves_to_its_function() -> None:
    for name in get_args(ObjectiveName):
        objective = get_objective(name)
        assert callable(objective)
        assert objective.__module__ == f"risk_app.finetune.objectives.{name}"
