#!/usr/bin/env bash
# The main job: set up, then run the whole pipeline through Dagster on the bundled German
# credit data with the tiny default model. Ends with a printed summary and a scores file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD/var/dagster_home"
exec .venv/bin/risk-app run "$@"
