#!/usr/bin/env bash
# Every serving benchmark with the settings the README reports, one after the other (about 15
# minutes on 2 cores). Results: bench/results/{overhead,load,pool,server_load,browser_wrapper,
# export_time}.json and polyonnx_bench_{text_transformer,digits_cnn,gru_tagger}.json. Not here
# (minutes to hours each): bench/quantize.py, bench/autoquant_latency.py, bench/large_model.py,
# bench/onnx_backend.py, bench/corpus.py.
# Needs the example bundles: .venv/bin/python tests/make_bundles.py build/test-bundles
set -euo pipefail
cd "$(dirname "$0")/.."
B="${POLYONNX_EXAMPLE_BUNDLES:-build/test-bundles}"
[ -f "$B/text_transformer/polyonnx.json" ] || { echo "bench: no bundles in $B; run: .venv/bin/python tests/make_bundles.py build/test-bundles" >&2; exit 2; }
export POLYONNX_EXAMPLE_BUNDLES="$B"
echo "== model.run overhead vs raw session.run";  node bench/overhead.js
echo "== load() vs raw InferenceSession.create";  node bench/load.mjs --bundles "$B" --only text_transformer,digits_cnn,gru_tagger --json bench/results/load.json
echo "== pool vs one session";                    node bench/pool.js --rounds 3 --requests 256
echo "== example server under load";              node bench/server_load.js --requests 1000 --duration-s 60
echo "== runtimes (python, node, wasm)"
BENCH=(.venv/bin/python -m polyonnx bench)
"${BENCH[@]}" "$B/text_transformer" --runtimes python,node,wasm --seq 128 --runs 300 --threads 2 \
  --save bench/results/polyonnx_bench_text_transformer.json
"${BENCH[@]}" "$B/digits_cnn" --runtimes python,node,wasm --runs 1000 --blocks 10 --threads 2 \
  --save bench/results/polyonnx_bench_digits_cnn.json
"${BENCH[@]}" "$B/gru_tagger" --runtimes python,node,wasm --seq 64 --runs 1000 --blocks 10 --threads 2 \
  --save bench/results/polyonnx_bench_gru_tagger.json
echo "== browser wrapper vs raw onnxruntime-web (one Chromium page)"
.venv/bin/python bench/browser_wrapper.py "$B" --runs 300 --loads 9 --json bench/results/browser_wrapper.json
echo "== polyonnx export vs the raw exporter (text_transformer, auto)"
.venv/bin/python bench/export_time.py --runs 3 --json bench/results/export_time.json
