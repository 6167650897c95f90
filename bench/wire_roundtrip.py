"""Python <-> Node worker costs: tensor round trips and cold start.

    .venv/bin/python bench/wire_roundtrip.py [--bundle DIR] [--node PATH] [--repeat N]

- round trip: an `echo` request carrying one float32 tensor of 1 KB and of 4 MB (Python encodes,
  the worker decodes into a typed array and encodes back, Python decodes), median of many;
- cold start: a fresh worker's spawn + onnxruntime-node load + session creation + first run of
  the bundle (default: a small MLP built on the spot; pass --bundle for e.g. digits_cnn), median
  of several fresh workers;
- warm run: the same bundle's `run` on a warm session, for scale.

Prints one line per measurement; numbers are milliseconds. Machines are noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn, repeat: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def default_bundle() -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "python"))
    import _parity_bundles

    return _parity_bundles.mlp_bundle(Path(tempfile.mkdtemp(prefix="polyonnx-bench-")) / "mlp")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="bundle for the cold start (default: a small MLP)")
    parser.add_argument("--node", help="node executable (default: what polyonnx finds; sets POLYONNX_NODE)")
    parser.add_argument("--repeat", type=int, default=300, help="round trips per small-tensor measurement")
    parser.add_argument("--cold", type=int, default=7, help="fresh workers for the cold-start median")
    args = parser.parse_args(argv)
    if args.node:
        os.environ["POLYONNX_NODE"] = args.node

    import polyonnx
    from polyonnx import _node, feeds, runtimes, wire

    node = _node.find_node()
    print(f"node {node.version_text} ({node.source}: {node.path}); {os.cpu_count()} CPUs")
    bundle = polyonnx.load(args.bundle) if args.bundle else polyonnx.load(default_bundle())
    sizes = {d: v["example"] for d, v in bundle.dims.items()}
    feed = feeds.make_feeds(bundle.inputs, sizes)

    with _node.NodeWorker() as worker:
        worker.request("info")
        for label, count, repeat in (("1 KB", 256, args.repeat), ("4 MB", 1 << 20, max(20, args.repeat // 10))):
            arr = np.random.default_rng(0).standard_normal(count).astype(np.float32)
            med, p90 = median_ms(lambda: wire.decode_tensors(
                worker.request("echo", tensors=wire.encode_tensors({"a": arr}))["tensors"]), repeat)
            print(f"round trip {label:>5} float32 tensor: median {med:.3f} ms, p90 {p90:.3f} ms ({repeat} runs)")
            frame = wire.encode_frame({"a": wire.encode_tensor(arr)})
            enc, _ = median_ms(lambda: wire.encode_frame({"a": wire.encode_tensor(arr)}), repeat)
            dec, _ = median_ms(lambda: wire.decode_tensor(wire.decode_frame(frame)["a"]), repeat)
            print(f"  of which Python encode {enc:.3f} ms, decode {dec:.3f} ms")

    cold = []
    for _ in range(args.cold):
        t = time.perf_counter()
        with _node.NodeWorker() as worker:
            rt = runtimes.NodeRuntime(bundle, worker=worker)
            rt.run(feed)
            cold.append((time.perf_counter() - t) * 1000)
            warm, _ = median_ms(lambda: rt.run(feed), 50)
    print(f"cold start (spawn + onnxruntime-node + session + first run, {bundle.name}): "
          f"median {statistics.median(cold):.1f} ms, min {min(cold):.1f} ms ({args.cold} workers)")
    print(f"warm run ({bundle.name}, sizes {sizes}): median {warm:.3f} ms")
    with runtimes.PythonRuntime(bundle) as py:
        pywarm, _ = median_ms(lambda: py.run(feed), 50)
    print(f"same run in ONNX Runtime Python: median {pywarm:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
