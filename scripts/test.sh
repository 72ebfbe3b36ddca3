#!/usr/bin/env bash
# Set up, then run the whole test suite (CPU only; GPU tests skip themselves).
#
# Two pytest-xdist workers, one file per worker at a time (`--dist loadfile`): the tests train
# on one torch thread, so one process leaves a core idle ("Test suite time" in
# docs/performance.md). Files in collection order (`--no-loadscope-reorder`): tests/conftest.py
# puts the long ones first. Arguments go to pytest after these (`-n 0` runs in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD/var/dagster_home"
.venv/bin/ruff check risk_app pipelines data_contracts tests bench
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder "$@"
