"""Latency of one run, batch 1, in each runtime: ONNX Runtime Python, onnxruntime-node, onnxruntime-web
(wasm) in Node, and onnxruntime-web in headless Chromium; at 1 and 2 threads.

Each number is the median of N runs after 3 warm-up runs, timed where the model runs (Python:
around session.run; Node/wasm: inside the worker; browser: performance.now() in the page), so
the pipes between processes are not counted. The browser page is cross-origin isolated (the demo
server's COOP/COEP), which is what lets wasm use 2 threads. wasm threads are fixed per process at
its first session, so each thread count gets a fresh worker.

    .venv/bin/python bench/browser_latency.py [BUNDLES_DIR] [--runs N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


import polyonnx
from polyonnx.feeds import make_feeds

ROOT = Path(__file__).resolve().parents[1]
# Batch 1 at a typical size per example (text at 128 tokens, like MEASURED.md's transformer row).
SIZES = {"digits_cnn": {"batch": 1}, "text_transformer": {"batch": 1, "seq": 128}, "gru_tagger": {"batch": 1, "time": 32}}


def time_python(bundle, variant, feeds, threads, runs):
    rt = polyonnx.runtime("python", bundle, variant, threads=threads)
    for _ in range(3):
        rt.run(feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rt.run(feeds)
        times.append((time.perf_counter() - t0) * 1000)
    rt.close()
    return statistics.median(times)


def time_node(bundle, variant, feeds, threads, runs, backend):
    from polyonnx._node import NodeWorker
    from polyonnx.runtimes import NodeRuntime

    worker = NodeWorker(backends=(backend,))
    try:
        rt = NodeRuntime(bundle, variant, backend=backend, threads=threads, worker=worker)
        for _ in range(3):
            rt.run(feeds)
        times = []
        for _ in range(runs):
            rt.run(feeds)
            times.append(rt.last_ms)
        rt.close()
        return statistics.median(times)
    finally:
        worker.close()


def time_browser(bundle, variant, feeds, threads, runs):
    from polyonnx._browser import BrowserRuntime

    with BrowserRuntime(bundle, variant, threads=threads) as rt:
        rt.run(feeds, repeat=3)
        rt.run(feeds, repeat=runs)
        assert rt.info["threads"]["count"] == threads, rt.info["threads"]
        return statistics.median(rt.last_times_ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundles", nargs="?", default=str(ROOT / "build" / "test-bundles"))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    rows = []
    for name, sizes in SIZES.items():
        bundle = polyonnx.load(Path(args.bundles) / name)
        feeds = make_feeds(bundle.inputs, sizes, seed=5)
        for variant in bundle.variants:
            for threads in (1, 2):
                row = {"bundle": name, "variant": variant, "sizes": sizes, "threads": threads}
                row["python"] = time_python(bundle, variant, feeds, threads, args.runs)
                row["node"] = time_node(bundle, variant, feeds, threads, args.runs, "node")
                row["wasm_in_node"] = time_node(bundle, variant, feeds, threads, args.runs, "wasm")
                row["browser"] = time_browser(bundle, variant, feeds, threads, args.runs)
                rows.append(row)
                print(f"{name:17s} {variant:5s} t={threads}  python {row['python']:8.3f}  node {row['node']:8.3f}  "
                      f"wasm(node) {row['wasm_in_node']:8.3f}  browser {row['browser']:8.3f}  ms", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
