#!/usr/bin/env bash
# Set up, then run the whole test suite (CPU only; GPU tests skip themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD/var/dagster_home"
.venv/bin/ruff check risk_app pipelines data_contracts tests bench
exec .venv/bin/python -m pytest -q "$@"
