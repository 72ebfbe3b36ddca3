#!/usr/bin/env bash
# One GPU lease for issue 26 (bench/gpu/README.md, "The speed lease"); every call within 30 s of
# the last. The code runs from /root/keep/repo (copied from .carry/code_speed in call 1), so the
# detached queue outlives the call that started it.
#   bash .carry/code_speed/bench/gpu/speed_lease.sh install   # call 1: code, inputs, wheels (.carry/whl_speed)
#   bash /root/keep/repo/bench/gpu/speed_lease.sh start       # call 2: duckdb (.carry/whl_speed2), start $QUEUE
#   bash /root/keep/repo/bench/gpu/speed_lease.sh wait N      # sleep N s, return rows and the logs' tails
# (from call 2 on, .carry/code_speed is not carried, so the copy made in call 1 is called)
# QUEUE (default "lora05 score q7b lora15") names the steps, run one after another; ROWS05,
# RUNGS05 (';'-separated rung names), REPS and SCORE_ROWS shorten them for a small budget.
set -uo pipefail
K=/root/keep
export PYTHONPATH=$K/site:$K/repo PYTHONUNBUFFERED=1 RISK_APP_HOME=$K/home
mkdir -p $K/out $K/home $K/log $K/work
ret() { cp $K/out/*.jsonl "$OUT/" 2>/dev/null; for f in $K/log/*.log; do echo "== $f"; grep -v -e Warning -e warn "$f" | tail -n 6 | cut -c1-400; done 2>/dev/null; }
case "$1" in
  install)
    rm -rf $K/repo && cp -r .carry/code_speed $K/repo && cp -r .carry/a_speed $K/a
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $K/site .carry/whl_speed/*.whl || exit 1
    python3 -c "import torch, transformers, peft, bitsandbytes, liger_kernel, pydantic; print(torch.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__, torch.cuda.get_device_name(0))"
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader ;;
  start)
    export ROWS05="${ROWS05:-}" RUNGS05="${RUNGS05:-}" REPS="${REPS:-}" SCORE_ROWS="${SCORE_ROWS:-}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $K/site .carry/whl_speed2/*.whl || exit 1
    cd $K/repo && setsid nohup bash -c '
      B="python3 bench/gpu_throughput.py --texts '$K'/a/texts.json --smollm2 '$K'/a/smollm2 --work '$K'/work"
      for step in '"${QUEUE:-lora05 score q7b lora15}"'; do
        case $step in
          lora05) $B --models qwen0.5b-shape --methods lora --rows ${ROWS05:-1536} ${RUNGS05:+--rungs "$RUNGS05"} --json '$K'/out/train.jsonl ;;
          score) for r in $(seq ${REPS:-3}); do $B --models qwen0.5b-shape,smollm2 --methods= --score-only --score-rows ${SCORE_ROWS:-4096} --json '$K'/out/score.jsonl; done ;;
          q7b) $B --models= --methods= --qlora-7b --qlora-7b-rows 96 --json '$K'/out/q7b.jsonl ;;
          lora15) $B --models qwen1.5b-shape --methods lora --rows 768 --rungs "+ token-budget batches;+ packing (SDPA block mask);+ packing + Liger by measurement;+ packing + activation checkpointing" --json '$K'/out/train15.jsonl ;;
        esac > '$K'/log/$step.log 2>&1
      done; echo EXIT > '$K'/log/zz_done.log' > $K/log/queue.log 2>&1 < /dev/null &
    sleep 15; ret ;;
  wait)
    sleep "${2:-0}"; ret ;;
esac
