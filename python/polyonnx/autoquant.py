"""Choosing a quantized variant by measuring it: accuracy against fp32, latency, size.

`--quantize auto` builds every candidate that applies (dynamic int8; static QDQ int8 per
calibration method when calibration data exists; weight-only int4 for MatMul/Gather-heavy
models; fp16), measures each side by side with fp32 on
the evaluation data (cosine, argmax agreement, task metric when labels exist) and on latency in
ONNX Runtime Python and, where Node is available, in onnxruntime-node, then keeps the fastest
candidate that stays within the accuracy budget *and* beats fp32. When none does, fp32 ships
alone and the report says what ruled each candidate out. An explicit --quantize builds and
measures its one candidate the same way, and ships it when it is accurate enough.
"""

from __future__ import annotations

import functools

import json
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest as _manifest
from .bundle import sha256_file
from .compare import metrics, tolerance
from .errors import PolyonnxError
from .feeds import make_feeds

METHODS = ("MinMax", "Entropy", "Percentile")
DEFAULT_MAX_DROP = 0.01  # one accuracy point
EVAL_SAMPLES = 512
# Latency (see measure_latency): blocks of about LATENCY_BLOCK_S of timed runs (LATENCY_BLOCK_MIN
# to LATENCY_BLOCK_MAX runs) after LATENCY_WARMUP untimed ones; LATENCY_MIN_ROUNDS rounds for fp32
# and the contenders, then more only for an open verdict, within LATENCY_BUDGET_S per runtime.
LATENCY_WARMUP = 3
LATENCY_BLOCK_S = 0.1
LATENCY_BLOCK_MIN, LATENCY_BLOCK_MAX = 6, 200
LATENCY_MIN_ROUNDS, LATENCY_MAX_ROUNDS = 2, 8
LATENCY_BUDGET_S = 2.0


# The file each kind of quantized variant ships as (the variant is named after its kind).
VARIANT_FILES = {"int8": "model.int8.onnx", "fp16": "model.fp16.onnx", "int4": "model.int4.onnx"}


@dataclass
class QuantOptions:
    mode: str = "auto"  # auto | dynamic | static | int4 | fp16
    calibration: object = None
    methods: tuple = METHODS  # static calibration methods to try (auto) or the first one (static)
    per_channel: bool = False
    op_types: list | None = None
    nodes_to_exclude: list | None = None
    labels: object = None  # path to .npy or array aligned with the evaluation samples
    max_drop: float = DEFAULT_MAX_DROP
    runtimes: tuple = ("python", "node")
    threads: int = 2
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class QuantJob:
    """What quantization reads of an export: the verified graph's interface and feeds, the fp32
    variant it starts from, and where to write. pipeline builds it; nothing here reaches back."""

    inputs: list  # the manifest's input specs
    output_specs: list
    dims: dict  # the manifest's dims (examples, constraints)
    example_dims: dict  # dim -> example size
    plan_feeds: list  # the verification feeds (the evaluation data of last resort)
    declared: dict  # the model's polyonnx_spec ({} for an import)
    torch_model: object  # for polyonnx_calibration / polyonnx_evaluation hooks; None for an import
    fp32: dict  # the fp32 variant's manifest entry
    basic_path: Path  # the BASIC-level fp32 graph candidates are built from
    tmp: Path
    notes: list  # shared with the export: facts the manifest will list

    def pin_ir(self, path: Path) -> None:
        """Keep the fp32 graph's IR version: onnx 1.23's helpers write IR 14, which
        onnxruntime-node/web 1.30 refuse (they load up to IR 13)."""
        from . import _graph

        model = _graph.load(path)
        if model.ir_version > self.fp32["ir_version"]:
            model.ir_version = self.fp32["ir_version"]
            _graph.save(model, path)


@dataclass
class Candidate:
    name: str
    kind: str  # int8 | int4 | fp16: the variant's name in the bundle and its key in tolerances.json
    path: Path | None = None
    quantization: dict | None = None
    entry: dict = field(default_factory=dict)  # the manifest's candidate record
    outputs: list | None = None

    @property
    def file(self) -> str:
        """The bundle file name this candidate ships as (model.int8.onnx, model.int4.onnx, ...)."""
        return VARIANT_FILES[self.kind]


def record(c: Candidate, fp32_bytes: int) -> dict:
    """The manifest's candidate entry for ``c`` (size figures filled in when it was built)."""
    rec = {"name": c.name, "quantization": c.quantization or {"method": "none"}, "accepted": False}
    if c.path is not None and c.path.exists():
        rec["bytes"] = c.path.stat().st_size
        rec["size_ratio"] = round(rec["bytes"] / fp32_bytes, 4)
    return rec


def _not_built(name: str, kind: str, quantization: dict, reason: str) -> Candidate:
    """A candidate the report lists with the reason it was not built (too few weights to quantize)."""
    c = Candidate(name, kind)
    c.entry = {"name": name, "quantization": quantization, "accepted": False, "reason": f"not built: {reason}"}
    return c


def _weight_shares(source: Path) -> dict[str, float]:
    """The source graph's weight shares; dynamic and int4 both ask, the graph is read once."""
    return _shares_of(str(source), source.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _shares_of(path: str, _mtime_ns: int) -> dict[str, float]:
    from . import _quantize as q

    return q.weight_shares(Path(path))


def _build_dynamic(job, opts: QuantOptions, steps, source: Path, out_dir: Path) -> list[Candidate]:
    from . import _quantize as q

    shares = _weight_shares(source)
    share = q.quantizable_share(shares)
    if share < q.MIN_QUANTIZABLE_SHARE:
        return [_not_built("dynamic-int8", "int8", {"method": "dynamic", "weight_type": "int8",
                                                     "op_types": list(q.DYNAMIC_OP_TYPES)},
                           f"MatMul/Gemm/Gather hold {share:.0%} of the weights, which are in {q.holders_text(shares)} "
                           "(convolutions and recurrent ops stay "
                           "fp32 under dynamic int8: ConvInteger was 4x slower here and has no onnxruntime-web "
                           "int8 kernel); use --quantize static with --calibration data to quantize convolutions")]
    c = Candidate("dynamic-int8", "int8", path=out_dir / "dynamic-int8.onnx")
    c.quantization = q.dynamic_int8(source, c.path)
    return [c]


def _rereadable(calibration) -> bool:
    """Files and callables are read afresh per use, and so is a container (a list of feed dicts:
    iter() gives a new iterator each time); an iterator or generator can be streamed once."""
    if isinstance(calibration, (str, Path)) or callable(calibration):
        return True
    try:
        return iter(calibration) is not calibration
    except TypeError:
        return False


def _build_static(job, opts: QuantOptions, steps, source: Path, out_dir: Path) -> list[Candidate]:
    from . import _quantize as q

    calibration = opts.calibration
    if calibration is None:
        # The model's own hook, a callable: called once per method, so each pass streams afresh.
        calibration = getattr(job.torch_model, "polyonnx_calibration", None)
    if calibration is None:
        if opts.mode == "static":
            raise PolyonnxError("quantize", "static quantization needs calibration data",
                                "pass --calibration FILE.npz (or a folder of .npz/.npy files), arrays named "
                                "after the inputs; or use --quantize dynamic")
        return []
    reusable = _rereadable(calibration)
    methods = opts.methods if opts.mode == "auto" else opts.methods[:1]
    if not reusable and len(methods) > 1:
        # A one-shot iterator can be streamed once: calibrate with the first method only.
        methods = methods[:1]
        job.notes.append(f"calibration data was a one-shot iterator: only {methods[0]} calibration was tried")
    cands = []
    for method in methods:
        c = Candidate(f"static-{method.lower()}", "int8", path=out_dir / f"static-{method.lower()}.onnx")

        def tick(n, samples, _m=method):
            if n % 4 == 1:
                steps.note(f"calibrating ({_m}): batch {n}, {samples} samples")

        c.quantization = q.static_int8(
            source, c.path, q.calibration_batches(calibration, job.inputs, job.example_dims),
            method=method, per_channel=opts.per_channel, op_types=opts.op_types,
            nodes_to_exclude=opts.nodes_to_exclude, progress=tick)
        cands.append(c)
    return cands


def _build_int4(job, opts: QuantOptions, steps, source: Path, out_dir: Path) -> list[Candidate]:
    from . import _quantize as q

    shares = _weight_shares(source)
    share = q.quantizable_share(shares, q.INT4_OP_TYPES)
    if share < q.MIN_QUANTIZABLE_SHARE:
        return [_not_built("int4", "int4", {"method": "int4", "weight_type": "int4", "op_types": list(q.INT4_OP_TYPES)},
                           f"MatMul/Gather hold {share:.0%} of the weights, which are in {q.holders_text(shares)} "
                           "(int4 is weight-only block quantization of MatMul and embedding tables; every other op "
                           "would stay fp32)")]
    c = Candidate("int4", "int4", path=out_dir / "int4.onnx")
    c.quantization = q.weight_only_int4(source, c.path)
    return [c]


def _build_fp16(job, opts: QuantOptions, steps, source: Path, out_dir: Path) -> list[Candidate]:
    from . import _quantize as q

    c = Candidate("fp16", "fp16", path=out_dir / "fp16.onnx")
    c.quantization = q.fp16(source, c.path)
    return [c]


# Quantization method -> candidate builder; `auto` builds all of them, in this order. The CLI's and
# the API's choices come from here, so a method is added in one place.
BUILDERS = {"dynamic": _build_dynamic, "static": _build_static, "int4": _build_int4, "fp16": _build_fp16}
MODES = ("auto", "none", *BUILDERS)


def build_candidates(job, opts: QuantOptions, steps) -> list[Candidate]:
    """Build the candidate files (int8/int4/fp16) from the BASIC-level fp32 graph, each checked to
    load at ONNX Runtime's default level in a child process (``_ort.probe_load``)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import _ort

    if opts.mode != "auto" and opts.mode not in BUILDERS:
        raise PolyonnxError("quantize", f"unknown quantization '{opts.mode}'", f"use one of {', '.join(MODES)}")
    source = job.basic_path
    out_dir = job.tmp / "candidates"
    out_dir.mkdir(exist_ok=True)
    cands: list[Candidate] = []
    # A candidate's load check runs in a child process while the next candidate is built: building
    # is one core's work, and the check (a fresh interpreter importing onnxruntime, then loading
    # the file) would otherwise add ~0.4 s of waiting per candidate.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="polyonnx-probe") as pool:
        probes = {}
        for mode, build in BUILDERS.items():
            if opts.mode not in ("auto", mode):
                continue
            t0 = time.perf_counter()
            built = build(job, opts, steps, source, out_dir)
            for c in built:
                if c.path is not None:
                    job.pin_ir(c.path)
                    probes[c.name] = pool.submit(_ort.probe_load, c.path)
            made = [c.name for c in built if c.path is not None]
            if made:
                steps.timings.append((f"quantization: build {', '.join(made)}", time.perf_counter() - t0))
            cands += built
        t0 = time.perf_counter()
        for c in cands:
            crash = probes[c.name].result() if c.name in probes else None
            if crash:
                c.entry = record(c, job.fp32["bytes"])
                c.entry["reason"] = crash
                c.path = None
        if probes:
            steps.timings.append((f"quantization: wait for the load checks at level ALL ({len(probes)} child processes)",
                                  time.perf_counter() - t0))
    return cands


# -- evaluation data --------------------------------------------------------------------------------
def evaluation_set(job, opts: QuantOptions):
    """(feeds list, labels or None, source name, metric name, output name)."""
    from . import _quantize as q

    hook = getattr(job.torch_model, "polyonnx_evaluation", None)
    if hook is not None:
        ev = hook()
        return [ev["feeds"]], np.asarray(ev["labels"]), "evaluation", ev.get("metric", "accuracy"), ev["output"]
    calibration = opts.calibration if opts.calibration is not None else getattr(job.torch_model, "polyonnx_calibration", None)
    if calibration is not None and _rereadable(calibration):
        feeds, n = [], 0
        for batch in q.calibration_batches(calibration, job.inputs, job.example_dims):
            feeds.append(batch)
            n += next(iter(batch.values())).shape[0]
            if n >= EVAL_SAMPLES:
                break
        labels = None
        if opts.labels is not None:
            labels = np.load(opts.labels) if isinstance(opts.labels, (str, Path)) else np.asarray(opts.labels)
            if labels.shape[0] < n:
                raise PolyonnxError("quantize", f"--labels holds {labels.shape[0]} labels but the evaluation uses "
                                    f"{n} calibration samples", "give one label per calibration sample, in order")
            labels = labels[:n]
        out = next((o["name"] for o in job.output_specs if "class_axis" in o), job.output_specs[0]["name"])
        return feeds, labels, "calibration", "accuracy" if labels is not None else None, out
    return list(job.plan_feeds), None, "generated", None, job.output_specs[0]["name"]


def _run_all(path: Path, feeds_list: list[dict], names: list[str], threads: int) -> list[dict]:
    from . import _ort

    sess = _ort.session(path, threads=threads, stage="quantize (measure)")
    return [_ort.run(sess, f, names, stage="quantize (measure)") for f in feeds_list]


def measure_accuracy(job, cands: list[Candidate], fp32_path: Path, opts: QuantOptions, fp32_outputs=None):
    """Each candidate's cosine, argmax agreement and task metric against fp32 on the evaluation set.

    ``fp32_outputs``: fp32's outputs on the verification feeds (the fp32 variant's check ran the
    same file on them). When those feeds are the evaluation set, they are the reference, not run
    again; and each candidate's outputs on them are kept (``Candidate.outputs``) for its own check
    against fp32 if it is chosen."""
    feeds, labels, source, metric, out_name = evaluation_set(job, opts)
    names = [o["name"] for o in job.output_specs]
    on_plan = source == "generated"
    if on_plan and fp32_outputs is not None and len(fp32_outputs) == len(feeds) and all(
            o is not None and all(n in o for n in names) for o in fp32_outputs):
        ref = [{n: o[n] for n in names} for o in fp32_outputs]
    else:
        ref = _run_all(fp32_path, feeds, names, opts.threads)
    class_axes = {o["name"]: o.get("class_axis") for o in job.output_specs}

    def task(outs):
        if labels is None:
            return None
        axis = class_axes.get(out_name)
        pred = np.concatenate([np.argmax(o[out_name], axis=-1 if axis is None else axis) for o in outs])
        return float((pred == labels[: pred.shape[0]]).mean())

    fp32_task = task(ref)
    for c in cands:
        if c.path is None:
            continue
        got = _run_all(c.path, feeds, names, opts.threads)
        if on_plan:
            c.outputs = got
        cos, agree = [], []
        for g, r in zip(got, ref):
            for n in names:
                m = metrics(g[n], r[n], class_axis=class_axes.get(n))
                if m["cosine"] is not None:
                    cos.append(m["cosine"])
                if m.get("argmax_agreement") is not None:
                    agree.append(m["argmax_agreement"])
        c.entry["cosine"] = round(min(cos), 6) if cos else None
        c.entry["argmax_agreement"] = round(float(np.mean(agree)), 4) if agree else None
        t = task(got)
        c.entry["task_metric"] = t
        c.entry["task_drop"] = None if t is None else round(fp32_task - t, 4)
    samples = sum(next(iter(f.values())).shape[0] for f in feeds)
    return {"source": source, "samples": int(samples), "metric": metric}, fp32_task


def latency_sizes(job) -> dict:
    """Batch 1, other dims at the model's latency_dims (polyonnx_spec) or their example size."""
    wanted = dict(job.declared.get("latency_dims", {})) if job.declared else {}
    sizes = {}
    batch_dims = {s["shape"][0] for s in job.inputs if s["shape"] and isinstance(s["shape"][0], str)}
    for d, example in job.example_dims.items():
        sizes[d] = int(wanted.get(d, 1 if d in batch_dims else example))
    return sizes


def measure_latency(job, cands: list[Candidate], fp32_path: Path, opts: QuantOptions, steps) -> dict:
    """Median latency per runtime of fp32 and each candidate, each variant timed alone.

    One session is alive at a time: a block opens one variant's session in one runtime, warms it
    up, times runs for about LATENCY_BLOCK_S and closes it before the next block opens. An idle
    ONNX Runtime session's intra-op threads keep spinning after its runs (measured here: one core
    for ~40 ms after the last run of text_transformer int8; MEASURED.md: two runtimes alive at once
    inflated each other's p50 2-3x), so a session left open beside the timed one would tax it.

    Rounds visit every runtime in turn, the variants in alternating order (A B C, C B A, ...), so
    a change in the machine's load falls on all of them alike. Every variant gets one block per
    runtime; fp32 and the contenders (candidates accurate enough to be chosen, in auto) get
    LATENCY_MIN_ROUNDS; after that only contenders whose verdict is still open get more rounds,
    until the medians' 95% intervals say it (slower than fp32 in some runtime, or faster in every
    one) or LATENCY_BUDGET_S has passed."""
    sizes = latency_sizes(job)
    feeds = make_feeds(job.inputs, sizes, seed=7)
    variants = {"fp32": fp32_path} | {c.name: c.path for c in cands if c.path is not None}
    # Only where speed decides (auto) and only for candidates accurate enough to be chosen is a
    # speed-up near 1 worth more rounds; the others' latency is reported as their first block measured it.
    contenders = [c.name for c in cands if c.path is not None and not accuracy_problems(c, opts)] \
        if opts.mode == "auto" else []
    openers = {rt: _node_opener(rt, job, variants, feeds, opts.threads) if rt != "python" else
               _python_opener(variants, feeds, opts.threads) for rt in opts.runtimes}
    times = {rt: {v: [] for v in variants} for rt in openers}
    spent = {rt: 0.0 for rt in openers}
    active = list(variants)
    deadline = time.perf_counter() + LATENCY_BUDGET_S * max(1, len(openers))
    for rnd in range(LATENCY_MAX_ROUNDS):
        for rt in list(openers):
            t0 = time.perf_counter()
            try:
                for v in (active if rnd % 2 == 0 else active[::-1]):
                    times[rt][v] += _time_block(openers[rt], v)
            except PolyonnxError as e:
                steps.note(f"latency in {rt} not measured: {e.message}")
                job.notes.append(f"quantization latency was not measured in {rt}: {e.message}")
                del openers[rt], times[rt], spent[rt]
                continue
            spent[rt] += time.perf_counter() - t0
        if not openers:
            break
        if rnd + 1 < LATENCY_MIN_ROUNDS:
            active = ["fp32", *contenders]
            if not contenders:
                break  # nothing to decide by speed (an explicit --quantize, or every candidate refused)
            continue
        active = ["fp32", *(v for v in contenders if _verdict_open({rt: t for rt, t in times.items()}, v))]
        if len(active) == 1 or time.perf_counter() > deadline:
            break
    for rt, sec in spent.items():
        steps.timings.append((f"quantization: latency in {rt} ({len(variants)} variants, "
                              f"{sum(len(t) for t in times[rt].values())} timed runs)", sec))
    results = {v: {rt: statistics.median(times[rt][v]) for rt in times} for v in variants}
    for c in cands:
        if c.name in results and results[c.name]:
            c.entry["latency_ms"] = {rt: round(ms, 4) for rt, ms in results[c.name].items()}
            c.entry["speedup"] = {rt: round(results["fp32"][rt] / ms, 3) for rt, ms in results[c.name].items() if ms > 0}
    return {"latency_sizes": sizes, "fp32": {rt: round(ms, 4) for rt, ms in results["fp32"].items()},
            "runs": {v: {rt: len(times[rt][v]) for rt in times} for v in variants}}


def _median_interval(ts: list[float]) -> tuple[float, float]:
    """The median's ~95% confidence interval by order statistics (ranks n/2 -+ 0.98 sqrt(n)):
    distribution-free, as latencies skewed by scheduling need."""
    s = sorted(ts)
    n = len(s)
    half = 0.98 * n ** 0.5
    return s[max(0, int(n / 2 - half))], s[min(n - 1, int(np.ceil(n / 2 + half)))]


def _verdict_open(times: dict[str, dict[str, list[float]]], v: str) -> bool:
    """Whether candidate ``v``'s speed verdict is still open: it is closed once some runtime's
    intervals put its speed-up clearly at or below 1 (refused), or every runtime's clearly above 1."""
    faster_everywhere = True
    for per_variant in times.values():
        f_lo, f_hi = _median_interval(per_variant["fp32"])
        c_lo, c_hi = _median_interval(per_variant[v])
        if f_hi / c_lo <= 1.0:
            return False
        faster_everywhere &= f_lo / c_hi > 1.0
    return not faster_everywhere


def _time_block(opener, v: str) -> list[float]:
    """One block: ``v``'s session opened alone, LATENCY_WARMUP untimed runs, about LATENCY_BLOCK_S
    of timed ones (LATENCY_BLOCK_MIN to LATENCY_BLOCK_MAX runs), closed. ``run(n)`` makes n runs
    back to back where the model runs and returns their times."""
    run, close = opener(v)
    try:
        run(LATENCY_WARMUP)  # first runs allocate (and for wasm, compile)
        ms: list[float] = []
        end = time.perf_counter() + LATENCY_BLOCK_S
        while len(ms) < LATENCY_BLOCK_MAX and (len(ms) < LATENCY_BLOCK_MIN or time.perf_counter() < end):
            ms += run(min(LATENCY_BLOCK_MIN, LATENCY_BLOCK_MAX - len(ms)))
        return ms
    finally:
        close()


def _python_opener(variants: dict[str, Path], feeds: dict, threads: int):
    from . import _ort

    def open_(v):
        # Level ALL, the default users get: fp32 at BASIC lacks the attention/GELU fusions and ran
        # 2x slower than at ALL on text_transformer, which would flatter every candidate.
        box = [_ort.session(variants[v], threads=threads, level="all", stage="quantize (latency)")]

        def run(n):
            ms = []
            for _ in range(n):
                t0 = time.perf_counter()
                box[0].run(None, feeds)
                ms.append((time.perf_counter() - t0) * 1000.0)
            return ms

        def close():
            box.clear()  # the last reference: the session and its thread pool go now, not at exit

        return run, close

    return open_


def _node_opener(runtime: str, job, variants: dict[str, Path], feeds: dict, threads: int):
    """Open each candidate in the Node worker from a scratch bundle (the worker loads bundles,
    with the same manifest and integrity checks a user's load() gets), one at a time."""
    from .runtimes import open_runtime

    scratch = job.tmp / f"latency-{runtime}"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    manifest = {
        "schema_version": _manifest.SCHEMA_VERSION, "name": "latency_candidates",
        "producer": {"polyonnx": "scratch", "onnx": "-", "onnxruntime": "-"},
        "opset": job.fp32["opset"], "ir_version": job.fp32["ir_version"],
        "inputs": job.inputs, "outputs": job.output_specs,
        "dims": {k: v for k, v in job.dims.items()},
        "variants": {}, "default_variant": "fp32",
        "export": {"source": "torch", "strategy": "dynamo", "attempts": [{"strategy": "dynamo", "ok": True}]},
    }
    from . import _graph

    for v, p in variants.items():
        target = scratch / f"{v}.onnx"
        # A hard link where the file system allows one: the bytes are the same file, not a copy.
        try:
            os.link(p, target)
        except OSError:
            shutil.copyfile(p, target)
        model = _graph.load(target)
        manifest["variants"][v] = {
            "file": target.name, "sha256": sha256_file(target), "bytes": target.stat().st_size,
            "opset": _graph.opset_of(model), "ir_version": int(model.ir_version),
            "optimization": "basic", "quantization": {"method": "none"}, "runtimes": ["python", "node", "web"],
        }
        domains = _graph.domains_of(model)
        if domains:
            manifest["variants"][v]["domains"] = domains
    (scratch / _manifest.MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")

    def open_(v):
        rt = open_runtime(runtime, scratch, variant=v, threads=threads)

        def run(n):
            # Back to back inside Node, each timed around model.run: one request per run left ONNX
            # Runtime's threads idle a pipe round trip between runs (digits_cnn 0.22 ms vs 0.06 ms
            # back to back), which is not the speed of the model.
            rt.run(feeds, repeat=n)
            return list(rt.last_times_ms)

        return run, rt.close

    return open_


# -- the choice ---------------------------------------------------------------------------------------
def accuracy_problems(c: Candidate, opts: QuantOptions) -> list[str]:
    """Why ``c`` is not accurate enough (tolerances.json for its kind, the task-metric budget), or []."""
    e = c.entry
    tol = tolerance(c.kind, "fp32")
    reasons = []
    if e.get("cosine") is None or e["cosine"] < tol["min_cosine"]:
        reasons.append(f"cosine {e.get('cosine')} < {tol['min_cosine']}")
    if e.get("argmax_agreement") is not None and e["argmax_agreement"] < tol["min_argmax_agreement"]:
        reasons.append(f"argmax agreement {e['argmax_agreement']} < {tol['min_argmax_agreement']}")
    if e.get("task_drop") is not None and e["task_drop"] > opts.max_drop:
        reasons.append(f"task metric drops {e['task_drop']:.4f} > {opts.max_drop}")
    return reasons


def decide(cands: list[Candidate], opts: QuantOptions) -> Candidate | None:
    """Mark each candidate accepted or refused (with the reason); return the one to ship."""
    best, best_key = None, None
    for c in cands:
        e = c.entry
        if c.path is None:
            continue  # already refused while building
        reasons = accuracy_problems(c, opts)
        speed = e.get("speedup", {})
        if opts.mode == "auto":
            slow = [f"{rt} {s:.2f}x" for rt, s in speed.items() if s <= 1.0]
            if slow:
                reasons.append("not faster than fp32 (" + ", ".join(slow) + ")")
            if not speed:
                reasons.append("latency could not be measured")
        e["accepted"] = not reasons
        if reasons:
            e["reason"] = "; ".join(reasons)
            continue
        # Rank by the slowest runtime's speed-up: a variant must help everywhere it is shipped.
        key = min(speed.values()) if speed else 0.0
        if best is None or key > best_key:
            best, best_key = c, key
    if best is not None:
        best.entry["chosen"] = True
        speed = best.entry.get("speedup", {})
        best.entry["reason"] = "chosen: within the accuracy budget" + (
            ", " + ", ".join(f"{s:.2f}x fp32 in {rt}" for rt, s in speed.items()) if speed else "")
    return best


def summary(cands: list[Candidate], chosen: Candidate | None, opts: QuantOptions) -> str:
    if chosen is not None:
        return f"{chosen.name} shipped as '{chosen.kind}': {chosen.entry['reason'].removeprefix('chosen: ')}"
    if not cands:
        return "no candidate applies to this model"
    why = "; ".join(f"{c.name}: {c.entry.get('reason', 'refused')}" for c in cands)
    return f"fp32 only: no candidate is both accurate enough and faster than fp32 ({why})"
