"""Why `polyonnx bench` once reported 2-3x inflated latencies (issue #14), measured with raw ONNX Runtime.

Raw ONNX Runtime Python and raw onnxruntime-node (bench/isolation_raw.js), the same fp32 model,
batch 1, 2 intra-op threads, timed in five arrangements:

- ``alone``: one runtime in its own process, the other not started (with and without spinning);
- ``alternating``: both sessions alive, one run each in turn (how the old bench timed them);
- ``alternating, no spinning``: the same with ``session.intra_op.allow_spinning = 0`` in both;
- ``other idle``: the other runtime's session is alive but never runs while this one is timed;
- ``phases``: the other ran first, then closed its session, then this one is timed.

Latencies depend on the machine's load; the second table does not: the CPU time (Linux
schedstat) the idle runtime's process burns while the other runs, which is its spinning.

    .venv/bin/python bench/runtime_isolation.py [BUNDLE] [--seq 128] [--runs 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]


def py_session(model: Path, threads: int, spin: bool) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if not spin:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), o, providers=["CPUExecutionProvider"])


class Node:
    def __init__(self, model: Path, seq: int, threads: int, spin: bool):
        self.p = subprocess.Popen(["node", str(ROOT / "bench" / "isolation_raw.js"), str(model), str(seq),
                                   str(threads), "1" if spin else "0"], cwd=ROOT, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.p.stdout.readline().strip() == "ready"

    def run(self, n: int) -> list[float]:
        self.p.stdin.write(f"run {n}\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close_session(self) -> None:
        self.p.stdin.write("close\n")
        self.p.stdin.flush()
        self.p.stdout.readline()

    def stop(self) -> None:
        self.p.stdin.close()
        self.p.wait()


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far (Linux schedstat, nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total


def timed(sess, feeds, n) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p50(xs) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default=str(ROOT / "build" / "test-bundles" / "text_transformer"))
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    model = Path(a.bundle) / "model.onnx"
    ids = (np.arange(a.seq, dtype=np.int64) * 7919 % 8000).reshape(1, a.seq)
    feeds = {"input_ids": ids}
    warm = 10
    rows = []

    for label, spin in (("alone", True), ("alone, no spinning", False)):
        s = py_session(model, a.threads, spin)
        timed(s, feeds, warm)
        py = p50(timed(s, feeds, a.runs))
        del s
        n = Node(model, a.seq, a.threads, spin)
        n.run(warm)
        rows.append((label, py, p50(n.run(a.runs))))
        n.stop()

    idle_cpu = []
    for label, spin in (("alternating", True), ("alternating, no spinning", False)):
        s = py_session(model, a.threads, spin)
        n = Node(model, a.seq, a.threads, spin)
        py, nd = [], []
        # CPU the idle side burns while the other runs: Node's process during Python's run, and
        # this process (whose main thread only waits on the pipe) during Node's run.
        node_idle = py_idle = wall_py = wall_node = 0.0
        me = os.getpid()
        for i in range(warm + a.runs):
            c0 = cpu_ns(n.p.pid)
            t0 = time.perf_counter()
            s.run(None, feeds)
            dt = (time.perf_counter() - t0) * 1000
            c1 = cpu_ns(n.p.pid)
            m0, t1 = cpu_ns(me), time.perf_counter()
            ms = n.run(1)[0]
            m1, t2 = cpu_ns(me), time.perf_counter()
            if i >= warm:
                py.append(dt)
                nd.append(ms)
                node_idle += (c1 - c0) / 1e6
                wall_py += dt
                py_idle += (m1 - m0) / 1e6
                wall_node += (t2 - t1) * 1000
        rows.append((label, p50(py), p50(nd)))
        idle_cpu.append((label, node_idle / wall_py, py_idle / wall_node))
        n.stop()
        del s

    # other idle: both alive, each timed in a block while the other waits
    s = py_session(model, a.threads, True)
    n = Node(model, a.seq, a.threads, True)
    timed(s, feeds, warm)
    n.run(warm)
    py = timed(s, feeds, a.runs)
    nd = n.run(a.runs)
    rows.append(("blocks, other session open and idle", p50(py), p50(nd)))
    # phases: Node closed its session before Python is timed again, and the reverse
    n.close_session()
    py = timed(s, feeds, a.runs)
    del s
    n.stop()
    n = Node(model, a.seq, a.threads, True)
    n.run(warm)
    nd = n.run(a.runs)
    n.stop()
    rows.append(("phases (other closed)", p50(py), p50(nd)))

    load = os.getloadavg()[0]
    print(f"{model}, [1,{a.seq}], {a.threads} threads, p50 of {a.runs} runs (ms), load average {load:.1f}")
    print(f"{'arrangement':40s} {'python':>8s} {'node':>8s} {'node/python':>12s}")
    for label, py, nd in rows:
        print(f"{label:40s} {py:8.2f} {nd:8.2f} {nd / py:12.2f}")
    print("\nCPU the idle runtime used while the other ran, in cores (1.0 = one core busy the whole time)")
    print(f"{'arrangement':40s} {'node while python runs':>24s} {'python while node runs':>24s}")
    for label, node_idle, py_idle in idle_cpu:
        print(f"{label:40s} {node_idle:24.2f} {py_idle:24.2f}")


if __name__ == "__main__":
    main()
