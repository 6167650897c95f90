"""Latency and throughput of a bundle per runtime x variant x batch size (``polyonnx bench``).

``bench_bundle(bundle, runtimes=..., variants=..., batches=..., seqs=..., runs=..., threads=...)``
opens each variant in each runtime once (``polyonnx.runtime``), runs generated feeds
(``polyonnx.feeds.make_feeds``) at each size, and returns a JSON-ready dict: one result per
runtime x variant x size with p50/p90/p99 latency and throughput, the Node / ONNX Runtime Python
ratio per variant and size, and what was skipped and why.

How each runtime is timed (the ``timing`` field of a result):

- ``python``: ``in-process``, around ``runtime.run(feeds)`` (feed-name check + ``session.run``).
- ``node`` / ``wasm``: ``in-worker``, the ``ms`` the Node worker measures around ``model.run``
  (shared-schemas/WIRE.md, op ``run``), so the msgpack round trip is not counted; the round trip
  is reported beside it (``round_trip_p50_ms``).

The runtimes of a variant take turns, one run each per round, so a busy machine slows them alike.

Every runtime gets the same intra-op thread count, and onnxruntime-node is asked for the graph
optimization level ONNX Runtime Python uses here ("extended"), so Node vs Python compares the
same model under the same settings.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone

import numpy as np

from .errors import PolyonnxError

NODE_OVER_PYTHON_TARGET = 1.1
PERCENTILES = (50, 90, 99)


def _percentile(xs: list[float], p: float) -> float:
    # Nearest-rank, like bench/_common.js: a value that was measured, not an interpolation.
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(np.ceil(p / 100 * len(s))) - 1))
    return float(s[i])


def _batch_dim(bundle) -> str | None:
    """The named dim at axis 0 of every input (what --batch sets), or None."""
    first = [spec["shape"][0] if spec["shape"] else None for spec in bundle.inputs]
    return first[0] if first and isinstance(first[0], str) and all(d == first[0] for d in first) else None


def size_sets(bundle, batches: list[int], seqs: list[int] | None) -> list[dict]:
    """Dim sizes to run at: the batch dim at each of ``batches``; every other dynamic input dim at
    each of ``seqs`` (default: its example size)."""
    batch = _batch_dim(bundle)
    dims = bundle.dims
    used = {d for spec in bundle.inputs for d in spec["shape"] if isinstance(d, str)}
    others = [d for d in dims if d in used and d != batch]
    plans = []
    for b in (batches if batch else [None]):
        for s in (seqs or [None]):
            sizes = {d: int(dims[d]["example"]) for d in others}
            if s is not None:
                sizes.update({d: int(s) for d in others})
            if batch:
                sizes[batch] = int(b)
            plans.append(sizes)
    return plans


def _runtime_ok(name: str) -> tuple[bool, str]:
    from .runtimes import available

    return available(name)


def _open(name: str, bundle, variant: str, threads: int | None):
    import polyonnx

    options = {"threads": threads}
    if name in ("node", "wasm"):
        # ONNX Runtime Python here uses "extended" (runtimes.py); onnxruntime-node would use "all".
        options["session_options"] = {"graphOptimizationLevel": "extended"}
    return polyonnx.runtime(name, bundle, variant=variant, **options)


class _PythonTimer:
    """Times ``runtime.run(feeds)`` in this process."""

    timing = "in-process"

    def __init__(self, rt, feeds: dict):
        self.rt, self.feeds = rt, feeds
        self.ms: list[float] = []

    def once(self, record: bool = True) -> None:
        t0 = time.perf_counter()
        self.rt.run(self.feeds)
        if record:
            self.ms.append((time.perf_counter() - t0) * 1000)


class _WorkerTimer:
    """Times a node/wasm run by the ``ms`` the worker measures around ``model.run`` (WIRE.md, op
    ``run``), and the round trip beside it. Feeds are encoded once, so the round trip counts pipes
    and msgpack, not numpy -> bytes."""

    timing = "in-worker"

    def __init__(self, rt, feeds: dict):
        from . import wire

        rt.run(feeds)  # loads the session again if the shared worker was restarted
        self.rt = rt
        # NodeRuntime.run returns outputs only; the worker's own timing needs the request itself.
        self.session = getattr(rt, "_session", None)
        self.encoded = wire.encode_tensors(feeds)
        self.feeds = feeds
        self.ms: list[float] = []
        self.round_trip_ms: list[float] = []
        if self.session is None:
            self.timing = "round-trip"

    def once(self, record: bool = True) -> None:
        t0 = time.perf_counter()
        if self.session is None:
            self.rt.run(self.feeds)
            inside = (time.perf_counter() - t0) * 1000
        else:
            result = self.rt.worker.request("run", timeout=self.rt.timeout, session=self.session,
                                            feeds=self.encoded, outputs=None)
            inside = float(result["ms"])
        if record:
            self.ms.append(inside)
            self.round_trip_ms.append((time.perf_counter() - t0) * 1000)


def bench_bundle(bundle, *, runtimes=("python", "node"), variants=None, batches=(1,), seqs=None,
                 runs: int = 50, warmup: int | None = None, threads: int | None = None,
                 progress=None) -> dict:
    """Benchmark ``bundle`` (a path or Bundle); returns the report (see module docstring).

    The runtimes of one variant run in turn, one run each per round, so load from elsewhere on
    the machine hits them alike and their ratio stays meaningful on a busy machine."""
    from .bundle import Bundle
    from .feeds import make_feeds
    from .runtimes import MANIFEST_NAMES, RUNTIMES

    bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    if runs < 1:
        raise PolyonnxError("bench", f"--runs is {runs}", "pass at least 1 (50 or more for a stable p99)")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise PolyonnxError("bench", f"unknown runtime(s) {', '.join(map(repr, unknown))}",
                            f"use some of {', '.join(RUNTIMES)}")
    variants = list(variants or bundle.variants)
    missing = [v for v in variants if v not in bundle.variants]
    if missing:
        raise PolyonnxError("bench", f"bundle '{bundle.name}' has no variant(s) {', '.join(map(repr, missing))}",
                            f"use some of {', '.join(bundle.variants)}")
    threads = threads or os.cpu_count() or 1
    warmup = max(2, runs // 10) if warmup is None else warmup
    plans = size_sets(bundle, list(batches), list(seqs) if seqs else None)
    batch = _batch_dim(bundle)
    say = progress or (lambda _msg: None)
    results, skipped = [], []
    usable = []
    for name in runtimes:
        ok, why = _runtime_ok(name)
        if ok:
            usable.append(name)
        else:
            skipped.append({"runtime": name, "variant": None, "reason": why})
    for variant in variants:
        opened = {}
        try:
            for name in usable:
                allowed = bundle.variants[variant].get("runtimes", [])
                if MANIFEST_NAMES[name] not in allowed:
                    skipped.append({"runtime": name, "variant": variant,
                                    "reason": f"variant lists runtimes {allowed}, not '{MANIFEST_NAMES[name]}'"})
                    continue
                try:
                    opened[name] = _open(name, bundle, variant, threads)
                except PolyonnxError as e:
                    skipped.append({"runtime": name, "variant": variant, "reason": str(e)})
            for sizes in plans:
                if not opened:
                    break
                feeds = make_feeds(bundle.inputs, sizes, seed=0)
                say(f"{variant} {sizes}: {runs} runs each of {', '.join(opened)}, in turn")
                timers = {name: (_PythonTimer if name == "python" else _WorkerTimer)(rt, feeds)
                          for name, rt in opened.items()}
                for _ in range(warmup):
                    for t in timers.values():
                        t.once(record=False)
                for _ in range(runs):
                    for t in timers.values():
                        t.once()
                rows = sizes.get(batch, 1) if batch else 1
                for name, t in timers.items():
                    mean = float(np.mean(t.ms))
                    row = {
                        "runtime": name, "variant": variant, "batch": rows, "sizes": sizes, "threads": threads,
                        "runs": runs, "timing": t.timing,
                        **{f"p{p}_ms": _percentile(t.ms, p) for p in PERCENTILES},
                        "mean_ms": mean,
                        "throughput_per_s": rows * 1000.0 / mean if mean > 0 else None,
                    }
                    if getattr(t, "round_trip_ms", None):
                        row["round_trip_p50_ms"] = _percentile(t.round_trip_ms, 50)
                    results.append(row)
        finally:
            for rt in opened.values():
                rt.close()
    return {
        "bench": "polyonnx bench",
        "bundle": bundle.name,
        "path": str(bundle.path),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "settings": {"runtimes": list(runtimes), "variants": variants, "batches": list(batches),
                     "seqs": list(seqs) if seqs else None, "runs": runs, "warmup": warmup, "threads": threads},
        "results": results,
        "ratios": ratios(results),
        "skipped": skipped,
    }


def ratios(results: list[dict]) -> list[dict]:
    """node (and wasm) p50 over python p50 for each variant and size measured in both."""
    py = {(r["variant"], tuple(sorted(r["sizes"].items()))): r for r in results if r["runtime"] == "python"}
    out = []
    for r in results:
        if r["runtime"] == "python":
            continue
        ref = py.get((r["variant"], tuple(sorted(r["sizes"].items()))))
        if not ref:
            continue
        ratio = r["p50_ms"] / ref["p50_ms"] if ref["p50_ms"] > 0 else None
        entry = {"runtime": r["runtime"], "variant": r["variant"], "sizes": r["sizes"], "over_python_p50": ratio}
        if r["runtime"] == "node":
            entry["target"] = NODE_OVER_PYTHON_TARGET
            entry["within_target"] = ratio is not None and ratio <= NODE_OVER_PYTHON_TARGET
        out.append(entry)
    return out


def format_report(report: dict) -> str:
    """The report as text tables (results, ratios, skipped)."""
    cols = ["runtime", "variant", "sizes", "timing", "p50_ms", "p90_ms", "p99_ms", "throughput_per_s", "round_trip_p50_ms"]
    heads = ["runtime", "variant", "sizes", "timing", "p50 ms", "p90 ms", "p99 ms", "items/s", "round trip p50 ms"]

    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, dict):
            return ",".join(f"{k}={x}" for k, x in v.items())
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    def table(headers, rows):
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    s = report["settings"]
    text = [f"bundle '{report['bundle']}', {s['threads']} intra-op thread(s), {s['runs']} runs after {s['warmup']} warm-up"]
    if report["results"]:
        text.append(table(heads, [[cell(r.get(c)) for c in cols] for r in report["results"]]))
    if report["ratios"]:
        text.append("\np50 over ONNX Runtime Python (same model, threads, optimization level)")
        text.append(table(["runtime", "variant", "sizes", "ratio", "target"],
                          [[r["runtime"], r["variant"], cell(r["sizes"]), cell(r["over_python_p50"]),
                            f"<= {r['target']}" if "target" in r else "-"] for r in report["ratios"]]))
    if any(r["timing"] == "round-trip" for r in report["results"]):
        text.append("\nround-trip: timed around the worker request (pipes and msgpack included)")
    for sk in report["skipped"]:
        text.append(f"skipped {sk['runtime']}{'/' + sk['variant'] if sk['variant'] else ''}: {sk['reason']}")
    return "\n".join(text)
