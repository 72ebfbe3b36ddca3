#!/usr/bin/env bash
# Idempotent setup on a fresh machine: a virtual environment in .venv with risk_app installed
# (editable) at the pinned versions in constraints.txt. torch==2.13.0 is installed first and
# alone, because any other torch request pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.risk_app_installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
mkdir -p var/dagster_home
cp dagster.yaml var/dagster_home/dagster.yaml
