#!/usr/bin/env bash
# One GPU lease for issues 14 and 15 (bench/gpu/README.md, "One lease, two benchmarks"):
#   bash bench/gpu/lease.sh install   # call 1: wheels from .whlA/, start the throughput benchmark detached
#   bash bench/gpu/lease.sh part      # calls 2..n: keep the GGUF part in .carry/p/, show the benchmark's tail
#   bash bench/gpu/lease.sh accuracy  # last call: join + check + convert the 0.5B, wait, run accuracy
# The throughput benchmark runs under setsid while the GGUF parts travel, so transfers and
# measurement overlap; its rows land in /root/keep/out and every call copies them to $OUT.
set -uo pipefail
export PYTHONPATH=/root/keep/site:$PWD PYTHONUNBUFFERED=1 RISK_APP_HOME=/root/keep/home
export TOKENIZERS_PARALLELISM=false
mkdir -p /root/keep/out /root/keep/parts
collect() { cp /root/keep/out/* "$OUT/" 2>/dev/null; tail -c 3000 /root/keep/out/throughput.log 2>/dev/null; }
case "$1" in
  install)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/keep/site .whlA/*.whl || exit 1
    cp -r .carry/a /root/keep/a
    python3 -c "import torch, transformers, peft, bitsandbytes, liger_kernel, pydantic, pandera; print(torch.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__, torch.cuda.get_device_name(0))"
    cp -r "$PWD" /root/keep/repo   # the benchmark keeps running after this call's tree is replaced
    cd /root/keep/repo && setsid nohup bash -c "python3 bench/gpu_throughput.py --texts /root/keep/a/texts.json \
        --smollm2 /root/keep/a/smollm2 --models ${MODELS:-qwen0.5b-shape,smollm2} --work /root/keep/work \
        --json /root/keep/out/throughput.jsonl --out /root/keep/out/performance.md ${ARGS:-}; echo EXIT \$? " \
        > /root/keep/out/throughput.log 2>&1 < /dev/null &
    sleep 20; collect ;;
  part)
    cp .carry/p/* /root/keep/parts/ && ls /root/keep/parts | wc -l; collect ;;
  accuracy)
    cp .carry/p/* /root/keep/parts/ 2>/dev/null
    python3 bench/gpu/frozen_features.py join --base qwen2.5-coder-0.5b --parts /root/keep/parts --prefix q05. || exit 1
    while ! grep -q "^EXIT" /root/keep/out/throughput.log; do sleep 5; done
    for run in ${RUNS:-full:2e-5 full:5e-5 lora:2e-4}; do
      timeout "${EACH:-170}" python3 bench/accuracy.py --base-model qwen2.5-coder-0.5b --device cuda \
        --seeds "${SEEDS:-10}" --method "${run%%:*}" --lr "${run##*:}" --epochs 3 --augment-copies 0 \
        --json "/root/keep/out/acc-${run%%:*}-${run##*:}.json" --out /root/keep/out/accuracy.md 2>&1 | grep -v Warning | tail -12
    done
    collect ;;
esac
