#!/usr/bin/env bash
# One GPU lease for issue 26 (bench/gpu/README.md, "The speed lease"); every call within 30 s of
# the last. Call 1 copies the code to /root/keep/repo and starts the queue there detached
# (setsid), so it outlives the call; later calls only collect what it wrote.
#   bash .carry/code_speed26/bench/gpu/speed_lease.sh go       # call 1: code, inputs, wheels, start $QUEUE
#   bash /root/keep/repo/bench/gpu/speed_lease.sh wait N       # sleep N s (returns early once the queue
#                                                              # is done), return rows and the logs' tails
# QUEUE (default "score q7b lora05 lora15 lora05c q7b_base") names the steps, run one after another; REPS,
# SCORE_ROWS, ROWS05, RUNGS05 (';'-separated rung names) shorten them for a small budget.
# Carried: .carry/code_speed26 (git archive of the branch without docs/ and tests/),
# .carry/a_speed (texts.json; SmolLM2-135M's config and tokenizer), .carry/whl_speed (wheels).
set -uo pipefail
K=/root/keep
export PYTHONPATH=$K/site:$K/repo PYTHONUNBUFFERED=1 RISK_APP_HOME=$K/home
mkdir -p $K/out $K/home $K/log $K/work
ret() {
  cp $K/out/*.jsonl "$OUT/" 2>/dev/null
  for f in $K/log/*.log; do echo "== $f"; grep -v -e Warning -e warn "$f" | tail -n 5 | cut -c1-300; done 2>/dev/null
}
case "$1" in
  go)
    rm -rf $K/repo && cp -r "${CODE:-.carry/code_speed26}" $K/repo && cp -r .carry/a_speed $K/a
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $K/site .carry/whl_speed/*.whl || exit 1
    python3 -c "import torch, transformers, peft, bitsandbytes, liger_kernel, pydantic; print(torch.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__, torch.cuda.get_device_name(0))"
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
    export REPS="${REPS:-3}" SCORE_ROWS="${SCORE_ROWS:-2048}" ROWS05="${ROWS05:-768}"
    export RUNGS05="${RUNGS05:-+ token-budget batches;+ Liger kernels (no packing);+ Liger, token budget 32,768;+ Liger + activation checkpointing;+ compiled layers (widths of 64)}"
    cd $K/repo && setsid nohup bash -c '
      B="python3 bench/gpu_throughput.py --texts '$K'/a/texts.json --smollm2 '$K'/a/smollm2 --work '$K'/work"
      for step in '"${QUEUE:-score q7b lora05 lora15 lora05c q7b_base}"'; do
        echo "$step start $(date +%T)" >> '$K'/log/steps.log
        case $step in
          score) for r in $(seq $REPS); do
                   $B --models smollm2,qwen0.5b-shape --methods= --score-only --score-rows $SCORE_ROWS --score-kernels library --json '$K'/out/score.jsonl
                   $B --models smollm2,qwen0.5b-shape --methods= --score-only --score-rows $SCORE_ROWS --score-kernels fused --score-no-plain --json '$K'/out/score.jsonl
                 done ;;
          q7b) $B --models= --methods= --qlora-7b --qlora-7b-rows 96 --qlora-7b-params "[{\"embedding_offload\": true}]" --json '$K'/out/q7b.jsonl ;;
          q7b_base) $B --models= --methods= --qlora-7b --qlora-7b-rows 96 --qlora-7b-params "[{}]" --json '$K'/out/q7b.jsonl ;;
          lora05) $B --models qwen0.5b-shape --methods lora --rows $ROWS05 --rungs "$RUNGS05" --json '$K'/out/train.jsonl ;;
          lora05c) $B --models qwen0.5b-shape --methods lora --rows $ROWS05 --rungs "+ compiled layers + Liger (widths of 64);+ compiled layers, token budget 8,192" --json '$K'/out/train.jsonl ;;
          lora15) $B --models qwen1.5b-shape --methods lora --rows 384 --rungs "+ token-budget batches;+ Liger kernels (no packing);+ Liger, token budget 32,768" --json '$K'/out/train15.jsonl ;;
        esac > '$K'/log/$step.log 2>&1
      done; echo "EXIT $(date +%T)" >> '$K'/log/steps.log' > $K/log/queue.log 2>&1 < /dev/null &
    sleep 5; ret ;;
  wait)
    for _ in $(seq "${2:-0}"); do grep -q EXIT $K/log/steps.log 2>/dev/null && break; sleep 1; done
    ret ;;
esac
