#!/usr/bin/env bash
# GPU call 3+: install bitsandbytes and the data stack, then run what is asked:
#   bash bench/gpu/step3.sh tests | accuracy METHOD LR [TIMEOUT [ARGS]] | methods EPOCHS [TIMEOUT [ARGS]]
set -uo pipefail
if [ -d .whlC2 ] && ls .whlC2/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/keep/site .whlC2/*.whl
fi
export PYTHONPATH=/root/keep/site:$PWD PYTHONUNBUFFERED=1 RISK_APP_HOME=/root/keep/home
BASE=/root/keep/SmolLM2-135M-Instruct
case "$1" in
  tests)
    python3 -m pytest -q -p no:cacheprovider -m gpu tests/finetune/test_qlora.py tests/finetune/test_quantum.py 2>&1 | tail -15 ;;
  accuracy)
    cp -n docs/accuracy.md "$OUT/accuracy.md" 2>/dev/null || true
    timeout "${4:-420}" python3 bench/accuracy.py --base-model "$BASE" --device cuda --seeds 5 \
      --method "$2" --lr "$3" --epochs 3 --out "$OUT/accuracy.md" --json "$OUT/accuracy-$2.json" "${@:5}" ;;
  methods)
    cp -n docs/methods.md "$OUT/methods.md" 2>/dev/null || true
    timeout "${3:-420}" python3 bench/compare_methods.py --base-model "$BASE" --device cuda --epochs "$2" \
      --lr 2e-4 --out "$OUT/methods.md" --json "$OUT/methods-gpu.json" "${@:4}" ;;
esac
