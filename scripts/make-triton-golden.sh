#!/usr/bin/env bash
# Regenerate tests/golden/triton/: the Triton repository `polyonnx triton` writes for each example
# bundle, config.pbtxt files only (model files are the bundles' own bytes, checked by sha256 in
# tests/python/test_triton.py). The model's sha256 changes with every export, so it is blanked.
#   bash scripts/make-triton-golden.sh               (exports build/test-bundles first when stale)
#   bash scripts/make-triton-golden.sh BUNDLES_DIR   (uses those bundles as they are)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ $# -ge 1 ]; then
  BUNDLES=$1
else
  BUNDLES=build/test-bundles
  "$PY" tests/make_bundles.py "$BUNDLES"
fi
GOLDEN=tests/golden/triton
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$GOLDEN"
for example in digits_cnn text_transformer gru_tagger; do
  "$PY" -m polyonnx triton "$BUNDLES/$example" -o "$tmp/$example"
  for config in "$tmp/$example"/*/config.pbtxt; do
    model=$(basename "$(dirname "$config")")
    mkdir -p "$GOLDEN/$example/$model"
    sed -E 's/\b[0-9a-f]{64}\b/<sha256>/g' "$config" > "$GOLDEN/$example/$model/config.pbtxt"
  done
done
echo "make-triton-golden: wrote $(find "$GOLDEN" -name config.pbtxt | wc -l) configs under $GOLDEN" >&2
