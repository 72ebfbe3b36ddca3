#!/usr/bin/env bash
# One GPU lease for issue 22 (bench/gpu/README.md, "The text lease"); every call within 30 s of
# the last. The code runs from /root/keep/repo (copied in call 1 from .carry/code, or from the
# sent tree), so jobs started detached outlive the call that started them.
#   bash text_lease.sh install     # call 1: wheels (.carry/w), inputs (.carry/a), code, first GGUF part
#   bash text_lease.sh part        # keep the GGUF part in .carry/p; return finished files
#   bash text_lease.sh start05     # detached: join + convert the 0.5B, diagnose, features, fine-tuning
#   bash text_lease.sh start15     # detached: join + convert the 1.5B, features, fine-tuning
#   bash text_lease.sh wait N      # sleep up to N s (less once q05's queue is done), return files and logs' tails
# The code comes from .carry/code or .carry/code_<helper> when carried (a helper's worktree copy).
set -uo pipefail
K=/root/keep
export PYTHONPATH=$K/site:$K/repo PYTHONUNBUFFERED=1 RISK_APP_HOME=$K/home TOKENIZERS_PARALLELISM=false
mkdir -p $K/out $K/parts $K/home $K/log
ret() { cd $K/repo && python3 bench/gpu/llm_text.py collect --out $K/out; tail -n 4 $K/log/*.log 2>/dev/null | cut -c1-300; }
case "$1" in
  install)
    src=.; for d in .carry/code .carry/code_*; do [ -d "$d" ] && src=$d; done
    rm -rf $K/repo && cp -r "$src" $K/repo && cp -r .carry/a $K/a && gunzip -f $K/a/*.gz
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $K/site .carry/w/*.whl || exit 1
    cp -n .carry/p*/q* $K/parts/ 2>/dev/null
    # Import what the queue imports now, in call 1, so a module the lease lacks stops here and
    # not after the conversion (the second text lease's queue died on duckdb at its first import).
    (cd $K/repo && python3 -c "import torch, transformers, peft, pydantic, pandera, bench.gpu.llm_text, bench.gpu.text_inputs, sklearn.model_selection, risk_app.finetune.trainer, risk_app.finetune.features, risk_app.models.loader; print(torch.__version__, transformers.__version__, peft.__version__, pydantic.VERSION, torch.cuda.get_device_name(0), torch.backends.cudnn.version(), 'tf32', torch.backends.cuda.matmul.allow_tf32)") || exit 1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; ls -la $K/parts ;;
  part)
    cp -n .carry/p*/q* $K/parts/; ls $K/parts | tr '\n' ' '; echo; ret ;;
  start05)
    cp -n .carry/p*/q* $K/parts/ 2>/dev/null
    cd $K/repo && setsid nohup bash -c "
      python3 bench/gpu/frozen_features.py join --base qwen2.5-coder-0.5b --parts $K/parts --prefix q05. &&
      ${DIAGNOSE05-python3 bench/gpu/llm_text.py diagnose --inputs $K/a/inputs.json > $K/out/diagnose.log 2>&1};
      ${FEATURES05-python3 bench/gpu/llm_text.py features --inputs $K/a/inputs.json --out $K/out};
      ${FT05:-true}; echo EXIT \$?" > $K/log/q05.log 2>&1 < /dev/null &
    sleep 2; ret ;;
  start15)
    cp -n .carry/p*/q* $K/parts/ 2>/dev/null
    cd $K/repo && setsid nohup bash -c "
      python3 bench/gpu/frozen_features.py join --base qwen2.5-coder-1.5b --parts $K/parts --prefix q15. &&
      python3 bench/gpu/llm_text.py features --base qwen2.5-coder-1.5b --inputs $K/a/inputs.json --out $K/out;
      ${FT15:-true}; echo EXIT \$?" > $K/log/q15.log 2>&1 < /dev/null &
    sleep 2; ret ;;
  wait)  # up to N s, sooner once the 0.5B's queue has printed EXIT
    for _ in $(seq "${2:-0}"); do grep -q '^EXIT' $K/log/q05.log 2>/dev/null && { sleep 6; break; }; sleep 1; done; ret ;;
esac
