#!/usr/bin/env bash
# GPU readiness check for tunesmith (docs/distributed.md): run it unattended on a machine with one or
# more CUDA GPUs, from the repository root:
#
#     bash benchmarks/gpu_check.sh                      # every check, all GPUs, ~10 minutes
#     bash benchmarks/gpu_check.sh --only lora,ddp,fsdp --steps 20
#
# It makes a virtual environment (.venv-gpu; VENV=... to choose), installs tunesmith with the GPU
# extras (bitsandbytes, deepspeed, vllm; flash-attn when a wheel builds, else that check is skipped)
# and runs benchmarks/gpu_check.py, which prints one table: tokens/s, MFU, peak memory, loss parity
# with the CPU. Arguments go to gpu_check.py (--help lists them). NO_INSTALL=1 skips the install.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi; this script needs CUDA GPUs" >&2; exit 2; }
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
VENV=${VENV:-.venv-gpu}
if [[ "${NO_INSTALL:-0}" != 1 ]]; then
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e . bitsandbytes deepspeed vllm pyyaml
    "$VENV/bin/pip" install -q flash-attn --no-build-isolation 2>/dev/null \
        || echo "gpu_check: flash-attn did not install; its check is skipped"
fi
export TOKENIZERS_PARALLELISM=false
exec timeout "${TIMEOUT:-1800}" "$VENV/bin/python" benchmarks/gpu_check.py "$@"
