#!/usr/bin/env bash
# Every example bundle on CUDA (and TensorRT when onnxruntime has it) against CPU in ONNX Runtime
# Python: accuracy per tolerances.json and p50 latency, in one table (scripts/gpu_check.py).
#   bash scripts/gpu-check.sh [BUNDLES_DIR]        (default build/test-bundles, exported if missing)
#   PY=/path/to/python bash scripts/gpu-check.sh   (a Python whose onnxruntime is onnxruntime-gpu)
# Without an NVIDIA GPU, or without a Python that has onnxruntime's CUDA provider, it says so and
# exits 0: nothing here can be checked then.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLES=${1:-build/test-bundles}

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi is not on PATH): nothing to check"
  exit 0
fi
if ! gpus=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null) || [ -z "$gpus" ]; then
  echo "gpu-check: nvidia-smi lists no GPU (no driver loaded, or no device in this container): nothing to check"
  exit 0
fi
echo "gpu-check: $gpus"

# The first Python whose onnxruntime offers CUDAExecutionProvider. onnxruntime and onnxruntime-gpu
# install the same module, so the CPU build in .venv and the GPU build cannot share one venv.
has_cuda() { "$1" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; }
GPU_PY=""
for cand in ${PY:-} build/gpu-venv/bin/python .venv/bin/python python3; do
  if [ -x "$cand" ] || command -v "$cand" >/dev/null 2>&1; then
    if has_cuda "$cand"; then GPU_PY=$cand; break; fi
  fi
done
if [ -z "$GPU_PY" ]; then
  echo "gpu-check: a GPU is here, but no Python with onnxruntime-gpu (tried: ${PY:-} build/gpu-venv/bin/python .venv/bin/python python3)."
  echo "gpu-check: to check: python3 -m venv build/gpu-venv && build/gpu-venv/bin/pip install onnxruntime-gpu numpy, then run this again"
  exit 0
fi

if ! ls "$BUNDLES"/*/polyonnx.json >/dev/null 2>&1; then
  echo "gpu-check: exporting the example bundles into $BUNDLES (.venv, CPU torch)"
  .venv/bin/python tests/make_bundles.py "$BUNDLES" || { echo "gpu-check: exporting the examples failed" >&2; exit 2; }
fi
exec "$GPU_PY" scripts/gpu_check.py "$BUNDLES"
