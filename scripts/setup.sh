#!/usr/bin/env bash
# Idempotent setup on a fresh machine: a virtual environment in .venv with risk_app installed
# (editable) at exactly the versions and hashes in requirements.lock.
#
#   bash scripts/setup.sh                 set up; does nothing when .venv already matches the lock
#   bash scripts/setup.sh --relock [ARG]  re-resolve requirements.lock after editing pyproject.toml
#                                         (ARG: extra `uv pip compile` options, e.g. --upgrade-package X)
#
# uv, not pip, installs the lock: it downloads and unpacks in parallel, which more than halves
# the fresh install on 2 cores ("Set-up time" in docs/performance.md). uv itself comes from
# PyPI through pip, pinned and hash-checked from the same lock.
#
# torch: the lock pins torch==2.13.0+cpu, a CPU build that exists only as a file in
# $RISK_APP_WHEELS (/opt/wheels, pip's find-links on these machines). PyPI has no "+cpu"
# release, so uv can only take that file: if it is missing the install fails instead of
# silently pulling the multi-GB CUDA build that any other torch request resolves to.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOCK=requirements.lock
WHEELS=${RISK_APP_WHEELS:-/opt/wheels}

# The uv requirement line and its hashes, cut out of the lock so that pip installs the pinned uv.
uv_requirement() {
  awk '/^uv==/ {on=1} on && /^[^ #]/ && !/^uv==/ {exit} on && !/^ *#/' "$LOCK"
}

bootstrap() {
  # The venv starts without pip (ensurepip alone took 10 s on a busy 2-core machine): the
  # interpreter's own pip puts the pinned uv into it, and uv installs pip from the lock.
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv --without-pip .venv
  fi
  local want_uv
  want_uv=$(uv_requirement | head -1 | cut -d' ' -f1 | cut -d= -f3)
  if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$want_uv" ]; then
    # A file, not <(...): pip --python re-runs itself in a child that cannot see our pipe.
    # -qq hides the warnings about this machine's local indexes, which have no uv.
    uv_requirement > .venv/uv-requirement.txt
    "$PY" -m pip --python .venv/bin/python install -qq --no-deps --require-hashes \
      -r .venv/uv-requirement.txt
  fi
}

relock() {
  # The torch line pins the CPU build from the local folder; uv, pip and setuptools are the
  # tools setup itself uses (torch needs setuptools at run time). Pins already in the lock
  # are kept unless an --upgrade option says otherwise.
  local torch_pin
  torch_pin=$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
  printf '%s\n' "${torch_pin}+cpu" uv pip setuptools |
    .venv/bin/uv pip compile pyproject.toml - --extra dev --generate-hashes \
      --find-links "$WHEELS" --python .venv/bin/python \
      --custom-compile-command "bash scripts/setup.sh --relock" --quiet "$@" -o "$LOCK"
}

bootstrap
if [ "${1:-}" = "--relock" ]; then
  shift
  relock "$@"
fi

stamp=.venv/.risk_app_installed
want=$(cat pyproject.toml "$LOCK" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # Every package must be in the lock with a matching hash. The project itself is then added
  # without dependencies, built with the lock's setuptools, and `uv pip check` fails when
  # pyproject.toml asks for something the lock lacks. Bytecode is compiled up front, as pip
  # did: with PYTHONDONTWRITEBYTECODE set, every process would otherwise recompile torch,
  # transformers and dagster on import (about 40 s more per process on a busy machine).
  uv=(.venv/bin/uv pip --quiet)
  "${uv[@]}" install --python .venv/bin/python --require-hashes --find-links "$WHEELS" \
    --compile-bytecode -r "$LOCK"
  "${uv[@]}" install --python .venv/bin/python --no-deps --build-constraints "$LOCK" -e ".[dev]"
  if ! "${uv[@]}" check --python .venv/bin/python; then
    echo "setup: $LOCK does not match pyproject.toml; run: bash scripts/setup.sh --relock" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
mkdir -p var/dagster_home
cp dagster.yaml var/dagster_home/dagster.yaml
