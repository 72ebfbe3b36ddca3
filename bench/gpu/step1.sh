#!/usr/bin/env bash
# GPU call 1: keep the first GGUF part, install trl/datasets/pennylane outside the repo.
set -euo pipefail
mkdir -p /root/keep
cp .gguf1/part_aa /root/keep/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/keep/site .whlB2/*.whl
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
