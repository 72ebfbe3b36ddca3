"""A lender's Flower ClientApp imports what a lender trains with, not the whole product.

Flower's Deployment Engine starts a fresh `flwr-clientapp` process for every message (join,
train, evaluate, final test), and each one imports `risk_app.federated.apps`. It imported all of
`risk_app.workflow` (the run's stages, MLflow, the augmenters, LightGBM, DuckDB) for two helpers
that only need the data layer; those now live in `risk_app.data.ingest`.
"""

from __future__ import annotations

import subprocess
import sys

from risk_app.paths import REPO_ROOT

# What the product has and a lender does not use.
NOT_FOR_A_LENDER = ("risk_app.workflow", "risk_app.run.stages", "mlflow", "nlpaug", "lightgbm", "duckdb",
                    "matplotlib", "dagster")  # fmt: skip
CLIENT_PROCESS = f"""
import sys
import risk_app.federated.apps
print("loaded:", *[m for m in {NOT_FOR_A_LENDER!r} if m in sys.modules])
"""


def test_the_client_app_imports_no_run_stages_tracking_or_augmenters() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_PROCESS], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (loaded,) = [line for line in done.stdout.splitlines() if line.startswith("loaded:")]
    assert loaded == "loaded:", loaded


def test_the_workflow_still_offers_the_data_stages() -> None:
    from risk_app import workflow
    from risk_app.data import ingest

    assert workflow.ingest_and_validate is ingest.ingest_and_validate
    assert workflow.prepare_examples is ingest.prepare_examples
