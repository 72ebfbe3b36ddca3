#!/usr/bin/env bash
# GPU call 2: join the GGUF, install transformers/peft/gguf, convert the GGUF once.
set -euo pipefail
cat /root/keep/part_aa .gguf2/part_ab > /root/keep/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum /root/keep/SmolLM2-135M-Instruct.Q4_1.gguf
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/keep/site .whlA2/*.whl
export PYTHONPATH=/root/keep/site:$PWD
python3 -c "import transformers, peft; print('transformers', transformers.__version__, 'peft', peft.__version__)"
time python3 -c "
from risk_app.models.convert import convert_gguf_to_safetensors as convert
convert('/root/keep/SmolLM2-135M-Instruct.Q4_1.gguf', '/root/keep/SmolLM2-135M-Instruct')"
ls -la /root/keep/SmolLM2-135M-Instruct
