"""Latency and throughput of a bundle per runtime x variant x batch size (``polyonnx bench``).

``bench_bundle(bundle, runtimes=..., variants=..., batches=..., seqs=..., runs=..., threads=...)``
runs generated feeds (``polyonnx.feeds.make_feeds``) at each size in each runtime
(``polyonnx.runtime``) and returns a JSON-ready dict: one result per runtime x variant x size with
p50/p90/p99 latency and throughput, the Node / ONNX Runtime Python ratio per variant and size
with its spread, a self-check against standalone runs, and what was skipped and why.

Each runtime is timed alone (issue #14). ONNX Runtime's intra-op threads spin after a run; with
two runtimes' sessions alive and timed run by run in turn, each runtime's spinning threads took
the cores from the other: text_transformer fp32 measured 12.8 ms in Python that way against
4.2-4.5 ms alone (quiet machine, 2 cores), and on a loaded machine the idle spinning dominated
every figure (bench/runtime_isolation.py measures it). So the runs are cut into ``blocks``; a
block opens one runtime's session, warms it up, times its runs and closes it, so no other
runtime's session (and no thread pool of one) exists while it is timed. The blocks of the
runtimes alternate, and each runtime's first block rotates, so load from elsewhere on the machine
hits them alike; the ratio's spread is the min-max of the per-block ratios of neighbouring blocks.

Self-check: every runtime is also timed by a reference process of its own, started fresh for
this benchmark, that opens that runtime and nothing else (for node and wasm, its own Node
worker). Each block the benchmark times is paired with a block of the same size in the
reference process (same variant, sizes, threads, warm-up), timed right before or after it (the
order flips block by block), so the two see the same machine: a
drift of the machine's speed over minutes (measured: up to 28% a minute apart on 2 shared vCPUs,
which failed a reference taken after the rows) moves both alike, and what is left is what the
benchmark adds. A row is flagged when its p50 differs from the reference's p50 over the same
number of runs by more than ``SELF_CHECK_LIMIT`` (10%); a flagged row means the benchmark's own
process distorts that runtime, or the machine changed within a block: repeat before quoting it.
wasm runs in a Node worker started with ``WASM_NODE_ARGS`` (see there).

How each runtime is timed (the ``timing`` field of a result):

- ``python``: ``in-process``, around each ``runtime.run(feeds)`` (feed checks + ``session.run``), the
  block's runs as ``runtime.run(feeds, repeat=N)``.
- ``node`` / ``wasm``: ``in-worker``, the ``ms`` the Node worker measures around each
  ``model.run``, the block's runs back to back in one request (``runtime.run(feeds, repeat=N)``,
  shared-schemas/WIRE.md op ``run`` with ``repeat``), as the Python loop runs them; so the msgpack
  round trip is not counted. The round trip is reported beside it (``round_trip_p50_ms``: single
  ``run`` calls timed from Python after each block, numpy conversion included).

Every runtime gets the same intra-op thread count, and onnxruntime-node is asked for the graph
optimization level ONNX Runtime Python uses here ("extended"), so Node vs Python compares the
same model under the same settings.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .errors import PolyonnxError

NODE_OVER_PYTHON_TARGET = 1.1
PERCENTILES = (50, 90, 99)
DEFAULT_BLOCKS = 5
# A row's p50 may differ from its reference process's p50 over the same blocks by this much.
SELF_CHECK_LIMIT = 0.10


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


# V8 compiles onnxruntime-web's wasm with its baseline compiler first and optimizes it lazily in
# the background: text_transformer int8 ran at ~30 ms for the first ~10 s of a fresh Node process
# and ~21 ms after (2 cores, 2 wasm threads), so a fresh process's figure (the self-check's
# standalone run) depended on how long it had run. wasm is therefore timed in a worker whose
# V8 optimizes the module up front (--no-liftoff: ~5 s at the first session, then ~21 ms from the
# first runs): the steady state a long-lived page or server reaches, from the first timed run.
WASM_NODE_ARGS = ("--no-liftoff",)
_wasm_worker = None


def _worker_for_wasm():
    global _wasm_worker
    from . import _node

    if _wasm_worker is None or _wasm_worker.closed:
        _wasm_worker = _node.NodeWorker(backends=("node", "wasm"), node_args=WASM_NODE_ARGS)
    return _wasm_worker


def _open(name: str, bundle, variant: str, threads: int | None, placement: dict | None = None):
    import polyonnx

    # placement: {"providers": [...], "fallback": ...} (see _providers), the same option as verify's.
    options = {"threads": threads, **(placement or {})}
    if name in ("node", "wasm"):
        # ONNX Runtime Python here uses "extended" (runtimes.py); onnxruntime-node would use "all".
        options["session_options"] = {"graphOptimizationLevel": "extended"}
    if name == "wasm":
        options["worker"] = _worker_for_wasm()
    return polyonnx.runtime(name, bundle, variant=variant, **options)


# Warm-up lasts at least this long (in extra runs, at most MAX_EXTRA_WARMUP), see _time_block.
WARMUP_MIN_MS = 100.0
MAX_EXTRA_WARMUP = 10000
# Single runs timed from Python after each block for the round trip column (node/wasm).
ROUND_TRIPS_PER_BLOCK = 10


class _Timer:
    """Times a block as ``runtime.run(feeds, repeat=runs)`` and its ``last_times_ms``: the runs back
    to back where the model runs, each a whole ``run`` (checks included). python: in this process.
    node/wasm: in the Node worker, around each ``model.run``; one request per run, as before, left
    ONNX Runtime's threads idle for a round trip between runs (digits_cnn measured 0.22 ms that
    way against 0.05 ms back to back). Their round trip, a single ``run`` timed from Python (pipes,
    msgpack, numpy), is reported beside it from a few runs after each block."""

    def __init__(self, rt, feeds: dict, name: str):
        self.rt, self.feeds = rt, feeds
        self.timing = {"python": "in-process", "browser": "in-page"}.get(name, "in-worker")
        self.ms: list[float] = []
        self.round_trip_ms: list[float] = []

    def block(self, runs: int, record: bool = True) -> list[float]:
        self.rt.run(self.feeds, repeat=runs)
        ms = list(self.rt.last_times_ms)
        if record:
            self.ms += ms
            if self.timing != "in-process":
                for _ in range(min(runs, ROUND_TRIPS_PER_BLOCK)):
                    t0 = time.perf_counter()
                    self.rt.run(self.feeds)
                    self.round_trip_ms.append((time.perf_counter() - t0) * 1000)
        return ms


def _time_block(name: str, bundle, variant: str, sizes: dict, feeds: dict, *, threads: int, warmup: int,
                runs: int, placement: dict | None = None) -> tuple[str, list[float], list[float]]:
    """Open ``name`` alone, run ``warmup`` untimed runs, time ``runs``, close it.

    Returns (timing, ms, round-trip ms)."""
    rt = _open(name, bundle, variant, threads, placement)
    try:
        timer = _Timer(rt, feeds, name)
        spent = sum(timer.block(warmup, record=False)) if warmup else 0.0
        # A small model's warm-up runs are over in a millisecond, before ONNX Runtime's threads and
        # the caches settle (digits_cnn's block p50s ranged 32-58 us that way, against 32-33 us
        # after 2000 runs): warm up for at least WARMUP_MIN_MS, in doubling steps (the first runs
        # are slow, so they cannot tell how many more it takes).
        step, extra = max(warmup, 1), 0
        while warmup and spent < WARMUP_MIN_MS and extra < MAX_EXTRA_WARMUP:
            step = min(step * 2, MAX_EXTRA_WARMUP - extra)
            spent += sum(timer.block(step, record=False))
            extra += step
        timer.block(runs)
        return timer.timing, timer.ms, timer.round_trip_ms
    finally:
        rt.close()


def _row(name, variant, sizes, batch, threads, runs, timing, ms, round_trip, blocks) -> dict:
    rows = sizes.get(batch, 1) if batch else 1
    mean = float(np.mean(ms))
    row = {
        "runtime": name, "variant": variant, "batch": rows, "sizes": sizes, "threads": threads,
        "runs": runs, "timing": timing,
        **{f"p{p}_ms": _percentile(ms, p) for p in PERCENTILES},
        "mean_ms": mean,
        "throughput_per_s": rows * 1000.0 / mean if mean > 0 else None,
        "block_p50_ms": [_percentile(b, 50) for b in blocks],
    }
    if round_trip:
        row["round_trip_p50_ms"] = _percentile(round_trip, 50)
    return row


def bench_bundle(bundle, *, runtimes=("python", "node"), variants=None, batches=(1,), seqs=None,
                 runs: int = 50, warmup: int | None = None, threads: int | None = None, blocks: int = DEFAULT_BLOCKS,
                 self_check: bool = True, progress=None, providers=None, fallback: str | None = None) -> dict:
    """Benchmark ``bundle`` (a path or Bundle); returns the report (see module docstring).

    ``providers`` / ``fallback``: where every runtime runs (see _providers; default the CPU); each
    row records the providers its sessions actually ran on.

    ``runs`` timed runs per row, cut into ``blocks`` blocks; ``warmup`` untimed runs after each
    load (default: a quarter of a block, at least 2); ``self_check``: time every block again in
    that runtime's reference process, right after it, and flag rows whose p50 differs by over 10%."""
    from .bundle import Bundle
    from .runtimes import RUNTIMES

    bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    if runs < 1:
        raise PolyonnxError("bench", f"--runs is {runs}", "pass at least 1 (50 or more for a stable p99)")
    if blocks < 1:
        raise PolyonnxError("bench", f"--blocks is {blocks}", "pass at least 1 (5 gives a ratio spread)")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise PolyonnxError("bench", f"unknown runtime(s) {', '.join(map(repr, unknown))}",
                            f"use some of {', '.join(RUNTIMES)}")
    variants = list(variants or bundle.variants)
    missing = [v for v in variants if v not in bundle.variants]
    if missing:
        raise PolyonnxError("bench", f"bundle '{bundle.name}' has no variant(s) {', '.join(map(repr, missing))}",
                            f"use some of {', '.join(bundle.variants)}")
    placement = {}
    if providers is not None or fallback is not None:
        from ._providers import check_request

        names_, policy = check_request(providers, fallback, stage="bench")
        placement = {"providers": names_, "fallback": policy}
    threads = threads or os.cpu_count() or 1
    blocks = min(blocks, runs)
    per_block = [runs // blocks + (1 if i < runs % blocks else 0) for i in range(blocks)]
    warmup = max(2, per_block[0] // 4) if warmup is None else warmup
    cfg = _Settings(bundle=bundle, runtimes=tuple(runtimes), variants=tuple(variants),
                    plans=tuple(size_sets(bundle, list(batches), list(seqs) if seqs else None)),
                    batch=_batch_dim(bundle), runs=runs, per_block=tuple(per_block), warmup=warmup, threads=threads,
                    placement=placement, self_check=self_check)
    say = progress or (lambda _msg: None)
    references = _References(say)
    try:
        results, skipped = _bench(cfg, say, references)
    finally:
        references.close()
        if _wasm_worker is not None:
            _wasm_worker.close()
    return {
        "bench": "polyonnx bench",
        "bundle": bundle.name,
        "path": str(bundle.path),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "settings": {"runtimes": list(runtimes), "variants": variants, "batches": list(batches),
                     "seqs": list(seqs) if seqs else None, "runs": runs, "warmup": warmup, "threads": threads,
                     **placement,
                     "blocks": blocks, "isolation": "each runtime alone: its session is open only while it is timed",
                     "self_check_limit": SELF_CHECK_LIMIT if self_check else None,
                     **({"self_check_reference": "a process per runtime that opens only that runtime, timing the "
                         "same block right after each block of the benchmark"} if self_check else {})},
        "results": results,
        "ratios": ratios(results),
        "skipped": skipped,
    }


@dataclass(frozen=True)
class _Settings:
    """What bench_bundle was asked, checked: one benchmark's plan."""

    bundle: object
    runtimes: tuple
    variants: tuple
    plans: tuple  # size dicts
    batch: str | None
    runs: int
    per_block: tuple  # runs in each block
    warmup: int
    threads: int
    placement: dict
    self_check: bool


def _bench(cfg: _Settings, say, references) -> tuple[list[dict], list[dict]]:
    """The timing itself: (results, skipped)."""
    from .feeds import make_feeds
    from .runtimes import MANIFEST_NAMES

    bundle, threads, placement, warmup, per_block = cfg.bundle, cfg.threads, cfg.placement, cfg.warmup, cfg.per_block
    blocks = len(per_block)
    results, skipped = [], []
    ran_on: dict[tuple[str, str], dict] = {}
    usable = []
    for name in cfg.runtimes:
        ok, why = _runtime_ok(name)
        if ok:
            usable.append(name)
        else:
            skipped.append({"runtime": name, "variant": None, "reason": why})
    for variant in cfg.variants:
        names = []
        for name in usable:
            allowed = bundle.variants[variant].get("runtimes", [])
            if MANIFEST_NAMES[name] not in allowed:
                skipped.append({"runtime": name, "variant": variant,
                                "reason": f"variant lists runtimes {allowed}, not '{MANIFEST_NAMES[name]}'"})
                continue
            try:  # a load failure is a skip, found before any timing
                from .verify import _ran_on

                probe = _open(name, bundle, variant, threads, placement)
                ran_on[(name, variant)] = _ran_on(probe)
                probe.close()
                names.append(name)
            except PolyonnxError as e:
                skipped.append({"runtime": name, "variant": variant, "reason": str(e)})
        for sizes in cfg.plans:
            if not names:
                break
            feeds = make_feeds(bundle.inputs, sizes, seed=0)
            say(f"{variant} {sizes}: {cfg.runs} runs each of {', '.join(names)}, alone, in {blocks} alternating block(s)"
                + (", each followed by the same block in that runtime's reference process" if cfg.self_check else ""))
            timed = {n: {"ms": [], "rt": [], "blocks": [], "timing": None, "ref": [], "ref_blocks": [],
                         "ref_error": None} for n in names}
            for b in range(blocks):
                order = names[b % len(names):] + names[:b % len(names)]
                for name in order:
                    t = timed[name]

                    def own(name=name, t=t):
                        timing, ms, rt_ms = _time_block(name, bundle, variant, sizes, feeds, threads=threads,
                                                        warmup=warmup, runs=per_block[b], placement=placement)
                        t["timing"] = timing
                        t["ms"] += ms
                        t["rt"] += rt_ms
                        t["blocks"].append(ms)

                    def reference(name=name, t=t):
                        if not cfg.self_check or t["ref_error"] is not None:
                            return
                        got = references.block(name, bundle.path, variant, sizes, threads=threads, warmup=warmup,
                                               runs=per_block[b], placement=placement)
                        if "ms" in got:
                            t["ref"] += got["ms"]
                            t["ref_blocks"].append(_percentile(got["ms"], 50))
                        else:
                            t["ref_error"] = got.get("error", "no reference")

                    # The pair's order flips block by block, so a machine speeding up or slowing down
                    # through a pair favours neither side.
                    for step in ((own, reference) if b % 2 == 0 else (reference, own)):
                        step()
            group = [_row(name, variant, sizes, cfg.batch, threads, cfg.runs, t["timing"], t["ms"], t["rt"], t["blocks"])
                     | ran_on.get((name, variant), {}) for name, t in timed.items()]
            if cfg.self_check:
                for row in group:
                    t = timed[row["runtime"]]
                    ref = {"error": t["ref_error"]} if t["ref_error"] else {"p50_ms": _percentile(t["ref"], 50)}
                    row["self_check"] = _self_check(row["p50_ms"], ref)
                    if not t["ref_error"]:
                        # Block by block beside the row's own block_p50_ms: a flagged row whose pairs
                        # agree while both sides' blocks jump together is the machine, not the bench.
                        row["self_check"]["reference_block_p50_ms"] = t["ref_blocks"]
            results += group
    return results, skipped


def _self_check(p50: float, ref: dict) -> dict:
    if "p50_ms" not in ref:
        return {"reference_p50_ms": None, "ok": None, "error": ref.get("error", "no reference")}
    ratio = p50 / ref["p50_ms"] if ref["p50_ms"] > 0 else None
    ok = ratio is not None and abs(ratio - 1.0) <= SELF_CHECK_LIMIT
    return {"reference_p50_ms": ref["p50_ms"], "over_reference": ratio, "ok": ok}


def _alone_block(a: dict, bundles: dict) -> list[float]:
    """One block of ``a`` (path, runtime, variant, sizes, threads, warmup, runs, placement), timed
    as the benchmark times it."""
    from .bundle import Bundle
    from .feeds import make_feeds

    bundle = bundles.get(a["path"]) or bundles.setdefault(a["path"], Bundle.load(a["path"]))
    feeds = make_feeds(bundle.inputs, a["sizes"], seed=0)
    _, ms, _ = _time_block(a["runtime"], bundle, a["variant"], a["sizes"], feeds, threads=a["threads"],
                           warmup=a["warmup"], runs=a["runs"], placement=a.get("placement"))
    return ms


def _reference_main(argv: list[str]) -> int:
    """``python -m polyonnx.bench --alone RUNTIME``: a reference process (see _References): one JSON
    request per stdin line, one JSON answer per stdout line, only RUNTIME ever opened."""
    if len(argv) != 2 or argv[0] != "--alone":
        print("usage: python -m polyonnx.bench --alone RUNTIME (started by `polyonnx bench`)", file=sys.stderr)
        return 2
    bundles: dict = {}
    for line in sys.stdin:
        a = json.loads(line)
        try:
            if a["runtime"] != argv[1]:
                raise PolyonnxError("bench", f"this reference process times {argv[1]!r} only, asked {a['runtime']!r}",
                                    "start one reference process per runtime")
            answer = {"ms": _alone_block(a, bundles)}
        except PolyonnxError as e:
            answer = {"error": str(e)}
        print(json.dumps(answer), flush=True)
    return 0


# A reference block that takes longer than this is given up (its process is stopped).
REFERENCE_TIMEOUT_S = 600.0


class _Reference:
    """One reference process: requests on stdin, one JSON line per answer on stdout (read by a
    thread, so a request can time out), stderr into a file (nothing can fill a pipe and stall it;
    its last line explains an early end)."""

    def __init__(self, runtime: str):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "polyonnx.bench", "--alone", runtime],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     bufsize=1)
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._pump, daemon=True, name=f"polyonnx-bench-{runtime}").start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, args: dict) -> dict | None:
        """The answer, or None when the process ended or timed out (then it is stopped)."""
        try:
            self.proc.stdin.write(json.dumps(args) + "\n")
            self.proc.stdin.flush()
            while True:
                line = self.lines.get(timeout=REFERENCE_TIMEOUT_S)
                if line is None:
                    return None
                if line.startswith("{"):  # anything else is a library printing to stdout
                    try:
                        return json.loads(line)
                    except ValueError:
                        return {"error": f"the reference process answered {line.strip()[:200]!r}"}
        except (BrokenPipeError, OSError, queue.Empty):
            return None

    def last_error_line(self) -> str:
        self.stderr.seek(0)
        lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self, kill: bool = False) -> None:
        try:
            if kill:
                self.proc.kill()
            else:
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class _References:
    """The benchmark's reference processes, one per runtime, started on first use and closed at the
    end: each opens its runtime alone (never another runtime, never a second Node worker beside it)
    and times the block it is asked for beside the benchmark's own."""

    def __init__(self, say):
        self.say = say
        self.procs: dict[str, _Reference] = {}

    def block(self, runtime: str, path, variant: str, sizes: dict, *, threads: int, warmup: int, runs: int,
              placement: dict | None = None) -> dict:
        ref = self.procs.get(runtime)
        if ref is None:
            self.say(f"self-check: starting the reference process for {runtime} (that runtime alone)")
            ref = self.procs[runtime] = _Reference(runtime)
        args = {"path": str(path), "runtime": runtime, "variant": variant, "sizes": sizes, "threads": threads,
                "warmup": warmup, "runs": runs, "placement": placement or {}}
        answer = ref.ask(args)
        if answer is None:
            del self.procs[runtime]
            ended = ref.proc.poll() is not None
            ref.close(kill=True)  # stopped first, so its stderr is complete
            why = ref.last_error_line() if ended else f"no answer within {REFERENCE_TIMEOUT_S:.0f} s"
            ref.stderr.close()
            return {"error": f"the reference process for {runtime} ended ({why or f'exit {ref.proc.returncode}'})"}
        return answer

    def close(self) -> None:
        for ref in self.procs.values():
            ref.close()
            ref.stderr.close()
        self.procs.clear()


def ratios(results: list[dict]) -> list[dict]:
    """node (and wasm) p50 over python p50 for each variant and size measured in both, with the
    min-max of the per-block ratios."""
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
        # Block b of each runtime ran next to the other's block b: their ratio is one sample of it.
        per_block = [a / b for a, b in zip(r.get("block_p50_ms", []), ref.get("block_p50_ms", [])) if b > 0]
        if per_block:
            entry["spread"] = [min(per_block), max(per_block)]
        if r["runtime"] == "node":
            entry["target"] = NODE_OVER_PYTHON_TARGET
            entry["within_target"] = ratio is not None and ratio <= NODE_OVER_PYTHON_TARGET
        out.append(entry)
    return out


def format_report(report: dict) -> str:
    """The report as text tables (results with the self-check, ratios with their spread, skipped)."""
    cols = ["runtime", "variant", "sizes", "timing", "p50_ms", "p90_ms", "p99_ms", "throughput_per_s",
            "round_trip_p50_ms"]
    heads = ["runtime", "variant", "sizes", "timing", "p50 ms", "p90 ms", "p99 ms", "items/s", "round trip p50 ms"]

    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, dict):
            return ",".join(f"{k}={x}" for k, x in v.items())
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    def check(row):
        sc = row.get("self_check")
        if not sc:
            return ["-", "-"]
        if sc.get("ok") is None:
            return ["-", f"no reference: {sc.get('error')}"]
        return [cell(sc["reference_p50_ms"]), f"{sc['over_reference']:.2f}x " + ("ok" if sc["ok"] else "DIFFERS")]

    def table(headers, rows):
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    s = report["settings"]
    text = [f"bundle '{report['bundle']}', {s['threads']} intra-op thread(s), {s['runs']} runs in {s.get('blocks', 1)} "
            f"block(s), {s['warmup']} warm-up run(s) after each load; each runtime timed alone"]
    checked = any("self_check" in r for r in report["results"])
    if report["results"]:
        extra = ["alone p50 ms", "self-check"] if checked else []
        def where(r):  # python[cuda,cpu] when a row ran on more than the CPU, as verify prints it
            on = r.get("providers") or ["cpu"]
            return r["runtime"] if on == ["cpu"] else f"{r['runtime']}[{','.join(on)}]"

        text.append(table(heads + extra, [[where(r)] + [cell(r.get(c)) for c in cols[1:]] + (check(r) if checked else [])
                                          for r in report["results"]]))
        text += [f"{r['runtime']}:{r['variant']} fell back from '{d['provider']}': {d['reason']}"
                 for r in report["results"] for d in r.get("providers_dropped", [])]
    if report["ratios"]:
        text.append("\np50 over ONNX Runtime Python (same model, threads, optimization level)")
        text.append(table(["runtime", "variant", "sizes", "ratio", "blocks min-max", "target"],
                          [[r["runtime"], r["variant"], cell(r["sizes"]), cell(r["over_python_p50"]),
                            f"{r['spread'][0]:.3g}-{r['spread'][1]:.3g}" if r.get("spread") else "-",
                            f"<= {r['target']}" if "target" in r else "-"] for r in report["ratios"]]))
    if checked:
        bad = [r for r in report["results"] if r.get("self_check", {}).get("ok") is False]
        limit = s.get("self_check_limit") or SELF_CHECK_LIMIT
        if bad:
            text.append(f"\nself-check FAILED for {len(bad)} row(s): p50 differs by more than {limit:.0%} from the "
                        "same blocks timed right after in a process that opens only that runtime; repeat before "
                        "quoting")
        else:
            text.append(f"\nself-check passed: every p50 within {limit:.0%} of the same blocks timed right after in a "
                        "process that opens only that runtime")
    for sk in report["skipped"]:
        text.append(f"skipped {sk['runtime']}{'/' + sk['variant'] if sk['variant'] else ''}: {sk['reason']}")
    return "\n".join(text)


if __name__ == "__main__":
    sys.exit(_reference_main(sys.argv[1:]))
