"""The export pipeline: model -> captured, verified graph -> optimized -> quantized -> bundle.

Each stage is a function that takes and returns values: ``_capture`` turns a PyTorch model or an
``.onnx`` into a ``Graph`` (the verified file, its interface, the verification plan and the
reference outputs); ``optimize_fp32`` turns it into the fp32 ``Variant``; ``quantize_variant``
measures candidates (autoquant) and returns the quantized ``Variant`` if one earns its place, with
the report; ``evaluate`` adds task metrics; ``build_manifest`` writes polyonnx.json's contents;
``check_node`` runs every variant in onnxruntime-node. This module only orchestrates them, and is
the place that decides what "a bundle that works" means:

- every dynamic dim is run at 3+ legal sizes inside its constraints (its minimum, its example,
  larger ones) against the reference before the bundle is called good;
- the dynamo exporter is tried first, the legacy one if dynamo's graph fails verification;
- nothing is written to ``out`` unless everything passed (staging folder + rename).
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import _external
from . import manifest as _manifest
from ._capture import Graph, capture_onnx, capture_torch, failure_text, read_feed_sets, run_check, summary
from ._progress import Steps, log, silent
from ._version import __version__
from .autoquant import MODES
from .bundle import Bundle, recover_leftovers, sha256_file, staging_folder
from .errors import PolyonnxError, VerificationError, one_line

OPTIMIZE_CHOICES = ("none", "basic", "extended")
QUANTIZE_CHOICES = MODES  # auto, none, and every builder autoquant registers
FP32_FILE = "model.onnx"
SCRATCH_PREFIX = "polyonnx-export-"  # + the exporting process's pid, so a later export can tell it was killed


@dataclass(frozen=True)
class Variant:
    """One shipped model file: its manifest entry, and its outputs on the plan (the reference a
    quantized variant is checked against)."""

    name: str
    path: Path
    entry: dict
    outputs: tuple
    check: dict
    optimization: str


@dataclass
class _Context:
    """Per-export scratch the stages share: progress, a temporary folder, whether to verify, and
    the notes the manifest will list. Values pass between stages as arguments, not through here."""

    steps: Steps
    tmp: Path
    verify: bool
    notes: list = field(default_factory=list)
    fp32_probe: object = None  # the fp32 file's load check at level ALL, while it runs (see _fp32_loads)


def export(model, example_inputs=None, out=None, *, input_names=None, output_names=None, dynamic_axes=None,
           opset: int = 20, optimize: str = "basic", quantize: str | None = None, calibration=None,
           verify: bool = True, force: bool = False, name: str | None = None, inputs: list[str] | None = None,
           dims: dict | None = None, value_ranges: dict | None = None, class_axes: dict | None = None,
           allow_pickle: bool = False, progress: bool | Steps = True, strategies=None,
           quant_options=None, feeds=None, edge: bool = False, external_data: bool = False) -> Bundle:
    """Export ``model`` to a verified bundle in folder ``out`` and return it.

    model: an ``nn.Module``; or a string ``package.module:attr`` / ``path/file.py:attr``; or a path
        to an existing ``.onnx`` file (imported: inputs, outputs and symbolic dims read from the graph).
    example_inputs: a tuple of tensors or a name->tensor dict. When omitted, inputs come from
        ``inputs`` (``["input_ids:int64[batch,seq]"]``) or from the model's own ``polyonnx_spec``.
    dynamic_axes: torch's convention, ``{"x": {0: "batch"}}``.
    quantize: "auto" (measure every candidate, ship the best one that is accurate enough and faster
        than fp32, or none), "dynamic", "static", "int4", "fp16" or "none"; None means "auto" unless the
        model's ``polyonnx_spec`` asks for another.
    calibration: for static quantization: an .npz, a folder of .npz/.npy files, an iterable of
        feed dicts, or a callable returning one; None uses the model's ``polyonnx_calibration``.
    quant_options: ``autoquant.QuantOptions`` or a dict of its fields: ``methods`` (calibration
        methods), ``per_channel``, ``op_types``, ``nodes_to_exclude``, ``labels``, ``max_drop``,
        ``runtimes`` (where latency is measured), ``threads``.
    dims: per named dim, an example size (int) or constraints ``{"example", "min", "max",
        "multiple_of"}``; what is not given is discovered from the model's own failures at probe sizes.
    value_ranges: per input ``[low, high]`` (enforced for integer inputs; for floats only the
        verification domain unless given as ``{"min", "max", "strict": True}``).
    feeds: extra verification feed sets (a name->array dict, a list of them, or .npz paths), e.g.
        valid indices or shape tensors random data cannot make. An imported model's
        ``test_data_set_*/input_*.pb`` (ONNX backend-test layout) are used too.
    verify: False skips the run-time comparisons (the dynamic-dim graph checks still apply).
    strategies: exporters to try, in order (default ("dynamo", "legacy")).
    edge: also ship the default variant in the ORT format, with its required-operators config (_edge).
    external_data: ship every ONNX variant's weights as ONNX external data (_external); automatic
        above protobuf's 2 GB.
    """
    if out is None:
        raise PolyonnxError("export", "no output folder given", "pass out= (or -o DIR on the command line)")
    if optimize not in OPTIMIZE_CHOICES:
        raise PolyonnxError("export", f"unknown optimization level '{optimize}'",
                            f"use one of {', '.join(OPTIMIZE_CHOICES)} (LAYOUT/ALL are not portable)")
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise PolyonnxError("export", f"unknown quantization '{quantize}'", f"use one of {', '.join(QUANTIZE_CHOICES)}")
    if not 18 <= int(opset) <= 26:
        # Below 18 the dynamo exporter silently raises the opset; above 26 onnxruntime-node 1.30 refuses.
        raise PolyonnxError("export", f"opset {opset} is outside what polyonnx can ship",
                            "use --opset between 18 and 26 (default 20)")
    steps = progress if isinstance(progress, Steps) else (Steps(7) if progress else silent())
    out = Path(out)
    if out.exists() and not force:
        raise PolyonnxError("export", f"output folder '{out}' already exists",
                            "pass --force (force=True) to replace it, or choose another -o folder")
    started = time.perf_counter()
    for line in recover_leftovers(out) + _remove_dead_scratch():
        steps.note(line)
    is_onnx = isinstance(model, (str, Path)) and str(model).endswith(".onnx")
    if strategies and not is_onnx:
        from ._export import check_strategies  # torch: only a PyTorch export has exporters to choose

        strategies = check_strategies(tuple(strategies))
    given = read_feed_sets(feeds)
    if verify:
        _start_node_worker()
    ctx = _Context(steps=steps, tmp=Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")), verify=verify)
    try:
        if is_onnx:
            graph = capture_onnx(Path(model), steps=steps, tmp=ctx.tmp, given_sets=given, inputs=inputs, dims=dims,
                                 value_ranges=value_ranges, class_axes=class_axes)
        else:
            graph = capture_torch(model, example_inputs, steps=steps, tmp=ctx.tmp, opset=int(opset),
                                  strategies=strategies, given_sets=given, input_names=input_names,
                                  output_names=output_names, dynamic_axes=dynamic_axes, inputs=inputs, dims=dims,
                                  value_ranges=value_ranges, class_axes=class_axes, allow_pickle=allow_pickle)
        ctx.notes.extend(graph.notes)
        with staging_folder(out, force=force) as stage:
            fp32 = optimize_fp32(graph, stage, optimize, ctx)
            variants, report = {"fp32": fp32}, None
            method = quantize or graph.declared.get("quantize") or "auto"
            method = _external.quantize_method(method, fp32, ctx)  # over 2 GB: none, or refused (#13 part 4)
            if method != "none" and fp32.entry["quantization"]["method"] == "none":
                first = len(ctx.steps.timings)
                quantized, report = quantize_variant(graph, fp32, stage, _quant_options(method, calibration,
                                                                                         quant_options), ctx)
                # The step's own entry ends the list; it goes before the parts it timed (build, accuracy...).
                ctx.steps.timings.insert(first, ctx.steps.timings.pop())
                if quantized is not None:
                    variants[quantized.name] = quantized
            _fp32_loads(ctx)
            evaluate(graph, variants, stage, ctx)
            # --edge, --external-data (#13 parts 4, 5)
            _external.finish_variants(graph, variants, stage, ctx, edge=edge, external_data=external_data)
            manifest = build_manifest(graph, variants, report, ctx, name=name or graph.name or out.name,
                                      seconds=time.perf_counter() - started)
            _manifest.validate(manifest, stage="export")
            (stage / _manifest.MANIFEST_NAME).write_text(_manifest.to_json(manifest), encoding="utf-8")
            if verify:
                check_node(graph, stage, ctx)
                # The Node check ran after polyonnx.json was written: its time is recorded too.
                _record_time(stage, ctx, time.perf_counter() - started)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise PolyonnxError("export", f"the disk is full ({e.filename or out.parent})",
                            f"free space and export again; '{out}' was left as it was") from None
    except PolyonnxError as e:
        # ONNX Runtime reports a model file truncated by a full disk as INVALID_PROTOBUF, and the fix
        # it suggests (--optimize none) would not help: say what happened instead.
        free = shutil.disk_usage(ctx.tmp if ctx.tmp.exists() else out.parent).free
        if free < 16 * 1024 * 1024:
            raise type(e)(e.stage, f"{e.message} (the disk has {free // 1024} KiB free: it is likely full)",
                          f"free space and export again; '{out}' was left as it was", details=e.details) from None
        raise
    finally:
        # A load check still running (an export that failed after starting it) reads a file in
        # ctx.tmp: it finishes (its own time limit bounds it) before the folder goes.
        if ctx.fp32_probe is not None:
            with contextlib.suppress(Exception):
                ctx.fp32_probe.result()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return Bundle.load(out)


def _start_node_worker() -> None:
    """Start the shared Node worker in the background while PyTorch traces: Node's start-up and
    onnxruntime-node's loading (~0.5 s) then overlap the trace instead of delaying the first
    Node latency block or the Node check. Where Node is missing, the step that needs it says so."""
    import threading

    def start():
        try:
            from .runtimes import available

            if available("node")[0]:
                from ._node import shared_worker

                shared_worker().request("info")
        except Exception:  # only a head start: the step that uses Node reports any failure itself
            pass

    threading.Thread(target=start, name="polyonnx-node-start", daemon=True).start()


def _in_background(fn, *args):
    """``fn(*args)`` on a thread; returns the Future (for a child process's wait, which frees the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polyonnx-check")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _fp32_loads(ctx: _Context) -> None:
    """Wait for the fp32 file's load check at level ALL (started by optimize_fp32); a crash there
    fails the export as it always did."""
    if ctx.fp32_probe is None:
        return
    t0 = time.perf_counter()
    crash, ctx.fp32_probe = ctx.fp32_probe.result(), None
    ctx.steps.timings.append(("optimize: wait for fp32's load check at level ALL (a child process)",
                              time.perf_counter() - t0))
    if crash:
        raise VerificationError("optimize", f"the fp32 graph is unusable: {crash}",
                                "export again with --optimize none, and report the model to ONNX Runtime")


def _stages(ctx: _Context) -> list[dict]:
    return [{"stage": text, "seconds": round(sec, 2)} for text, sec in ctx.steps.timings]


def _record_time(stage: Path, ctx: _Context, seconds: float) -> None:
    """export.stages and export.seconds in the staged polyonnx.json, with every step so far."""
    path = stage / _manifest.MANIFEST_NAME
    manifest = _manifest.from_json(path.read_text(encoding="utf-8"))
    manifest["export"]["stages"] = _stages(ctx)
    manifest["export"]["seconds"] = round(seconds, 2)
    _manifest.validate(manifest, stage="export")
    path.write_text(_manifest.to_json(manifest), encoding="utf-8")


def _remove_dead_scratch() -> list[str]:
    """Scratch folders ($TMPDIR/polyonnx-export-<pid>-*) of exports that were killed."""
    done = []
    for p in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            pid = int(p.name[len(SCRATCH_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue  # not ours to judge (no pid in the name)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed '{p}', the scratch folder of an earlier export that was stopped")
        except PermissionError:
            continue
    return done


# -- stage 2: optimize + fp32 variant ---------------------------------------------------------------
def optimize_fp32(graph: Graph, stage: Path, optimize: str, ctx: _Context) -> Variant:
    """The fp32 variant: the graph optimized offline at ``optimize`` and checked against the reference."""
    from . import _ort

    with ctx.steps.step(f"optimize ({optimize}) and verify the fp32 variant") as st:
        target = stage / FP32_FILE
        against = "torch" if graph.strategy != "onnx-import" else "python"
        # Optimizing is polyonnx's choice, not the user's: when ONNX Runtime cannot optimize a
        # graph it runs (silero-vad's nested If at BASIC), or the optimized graph differs, the
        # graph ships as it was, with a note. Only a graph that fails as given is refused.
        for level in dict.fromkeys((optimize, "none")):
            try:
                if level == "none":
                    _external.copy_model(graph.path, target)  # with its external data files, if any
                else:
                    _ort.optimize(graph.path, target, level)
            except PolyonnxError as e:
                ctx.notes.append(f"not optimized: {one_line(e.message, 300)}")
                continue
            check, outs = run_check(graph.plan, graph.output_specs, target, against, "fp32", reference_outputs=graph.references)
            if against == "python":
                check["reference"] = "onnx:source"
            if check["passed"] or not ctx.verify or level == "none":
                break
            ctx.notes.append(f"the {level}-optimized graph differs from the reference "
                             f"({one_line(failure_text(check), 300)}): shipped unoptimized")
        if ctx.verify and not check["passed"]:
            raise VerificationError("optimize", f"the {level}-optimized graph differs from the reference: "
                                    f"{failure_text(check)}", "export again with --optimize none"
                                    if level != "none" else "check the model: it differs from its own reference")
        # Whether the graph loads at ONNX Runtime's default level (a child process: a crash there is
        # a finding) is known before anything loads it at that level here, and before the manifest
        # (see _fp32_loads); meanwhile the next stage works on the other core.
        ctx.fp32_probe = _in_background(_ort.probe_load, target)
        quantization = {"method": "none"}
        if graph.strategy == "onnx-import":
            from . import _graph

            shipped = _graph.quantized_method(_graph.load(target))
            if shipped:
                # A pretrained model shipped int8: runtimes differ by their int8 kernels (ddddocr's
                # ConvInteger in onnxruntime-web: max_abs 0.1, cosine 0.99997), so it is judged as int8.
                quantization = {"method": shipped}
                ctx.notes.append(f"the imported graph is already {shipped}-quantized (int8 kernels): its runtimes "
                                 "are compared with the int8 tolerances, and it is not quantized again")
        entry = _variant_entry(target, quantization, level, [check], ctx)
        st["result"] = summary(check)
    return Variant("fp32", target, entry, tuple(outs), check, level)


def _variant_entry(path: Path, quantization: dict, optimization: str, checks: list, ctx: _Context) -> dict:
    from . import _graph

    model = _graph.load(path)
    runtimes, why = _graph.runtimes_for(model)
    for reason in why:
        ctx.notes.append(f"{path.name} will not load in {reason}")
    entry = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
             "opset": _graph.opset_of(model), "ir_version": int(model.ir_version),
             "optimization": optimization, "quantization": quantization, "runtimes": runtimes}
    domains = _graph.domains_of(model)
    if domains:
        entry["domains"] = domains
    if ctx.verify:
        entry["verification"] = checks
    return entry


# -- stage 3: quantized variant ----------------------------------------------------------------------
def quantize_variant(graph: Graph, fp32: Variant, stage: Path, opts, ctx: _Context) -> tuple[Variant | None, dict]:
    """Build and measure the candidates (autoquant); the chosen one, checked against fp32 on the
    plan, and the quantization report. None when no candidate earns its place."""
    from . import _ort
    from . import autoquant as aq

    label = "measure quantization candidates (auto)" if opts.mode == "auto" else f"quantize ({opts.mode})"
    with ctx.steps.step(label) as st:
        # Quantize from a BASIC-level graph: `extended` fusions (FusedMatMul...) are not quantizable.
        basic_path = ctx.tmp / "fp32-basic.onnx"
        if fp32.optimization in ("basic", "none"):
            # "none" here means BASIC failed or changed the answers: quantize the graph as shipped.
            shutil.copyfile(fp32.path, basic_path)
        else:
            _ort.optimize(graph.path, basic_path, "basic")
        job = aq.QuantJob(inputs=graph.input_manifest(), output_specs=list(graph.output_specs),
                          dims=graph.dims_manifest(), example_dims={d: x.example for d, x in graph.dims.items()},
                          plan_feeds=graph.plan.feeds, declared=dict(graph.declared), torch_model=graph.torch_model,
                          fp32=fp32.entry, basic_path=basic_path, tmp=ctx.tmp, notes=ctx.notes)
        cands = aq.build_candidates(job, opts, ctx.steps)
        fp32_bytes = fp32.entry["bytes"]
        for c in cands:
            if not c.entry:
                c.entry = aq.record(c, fp32_bytes)
                c.entry.setdefault("quantization", c.quantization)
        built = [c for c in cands if c.path is not None]
        t0 = time.perf_counter()
        evaluation, fp32_task = aq.measure_accuracy(job, built, fp32.path, opts, fp32_outputs=fp32.outputs) \
            if built else ({}, None)
        if built:
            ctx.steps.timings.append((f"quantization: accuracy of {len(built)} candidate{'s' * (len(built) != 1)} against fp32",
                                      time.perf_counter() - t0))
        if opts.mode != "auto":
            opts.runtimes = ("python",)
        _fp32_loads(ctx)  # latency loads fp32 at level ALL in this process
        latency = aq.measure_latency(job, built, fp32.path, opts, ctx.steps) if built else {}
        chosen = aq.decide(cands, opts)
        report = {"mode": opts.mode, "max_drop": opts.max_drop,
                  "evaluation": {**evaluation, "latency_sizes": latency.get("latency_sizes", {}),
                                 "threads": opts.threads},
                  "fp32": {"bytes": fp32_bytes, "task_metric": fp32_task, "latency_ms": latency.get("fp32", {})},
                  "candidates": [c.entry for c in cands], "chosen": chosen.name if chosen else None,
                  "summary": aq.summary(cands, chosen, opts)}
        if opts.extra.get("show_table", True):
            for line in _candidate_lines(report):
                ctx.steps.note(line)
        if chosen is None:
            ctx.notes.append(report["summary"])
            st["result"] = report["summary"]
            return None, report
        name = chosen.kind  # 'int8', 'int4' or 'fp16': the variant's name
        target = stage / chosen.file
        shutil.copyfile(chosen.path, target)
        # The chosen file's outputs on the plan, when the accuracy measurement already ran it there.
        check, outs = run_check(graph.plan, graph.output_specs, target, "fp32", name, reference_outputs=fp32.outputs,
                                variant=name, outputs=chosen.outputs)
        if ctx.verify and not check["passed"]:
            target.unlink()
            chosen.entry["accepted"] = False
            chosen.entry["chosen"] = False
            chosen.entry["reason"] = f"differs from fp32 beyond tolerance at the verification sizes ({failure_text(check)})"
            report["chosen"] = None
            report["summary"] = f"{name} not shipped: it {chosen.entry['reason']}"
            ctx.notes.append(report["summary"])
            # Without progress lines it would go unseen: a warning on the `polyonnx` logger (which
            # library callers can route or silence), besides the manifest's notes.
            if not ctx.steps.enabled:
                log.warning(report["summary"])
            st["result"] = "rejected: " + report["summary"]
            return None, report
        if chosen.kind == "int8" and chosen.quantization.get("method") == "static":
            try:
                feeds, _, _, _, _ = aq.evaluation_set(job, opts)
                report["worst_tensors"] = _worst(basic_path, target, feeds[:4])
            except Exception as e:  # diagnostics only: never fail an export over them
                ctx.notes.append(f"QDQ loss diagnosis failed: {type(e).__name__}: {e}")
        entry = _variant_entry(target, chosen.quantization, "basic", [check], ctx)
        if fp32.optimization == "extended":
            ctx.notes.append(f"{name} is quantized from the basic-level graph (extended fusions are not quantizable)")
        st["result"] = f"{report['summary']}; {entry['bytes'] / 1e6:.2f} MB; " + summary(check)
    return Variant(name, target, entry, tuple(outs), check, "basic"), report


# -- stage 4: task metrics ---------------------------------------------------------------------------
def evaluate(graph: Graph, variants: dict[str, Variant], stage: Path, ctx: _Context) -> None:
    """Accuracy of every variant on the model's labelled data (``polyonnx_evaluation``), written
    into the variants' manifest entries."""
    hook = getattr(graph.torch_model, "polyonnx_evaluation", None)
    if hook is None:
        return
    from . import _ort

    with ctx.steps.step("evaluate every variant on the model's labelled data") as st:
        ev = hook()
        labels = np.asarray(ev["labels"])
        results = []
        for vname, variant in variants.items():
            sess = _ort.session(variant.path, stage="evaluate")
            got = _ort.run(sess, ev["feeds"], [ev["output"]], stage="evaluate")[ev["output"]]
            axis = graph.spec.class_axes.get(ev["output"], -1)
            acc = float((np.argmax(got, axis=axis) == labels).mean())
            variant.entry["evaluation"] = {"metric": ev.get("metric", "accuracy"), "value": acc,
                                           "samples": int(labels.shape[0]), "dataset": ev.get("dataset", "")}
            results.append(f"{vname} {acc:.4f}")
        torch_acc = getattr(graph.torch_model, "torch_accuracy", None)
        if torch_acc is not None:
            results.append(f"torch {torch_acc:.4f}")
        st["result"] = f"{ev.get('metric', 'accuracy')}: " + ", ".join(results)


# -- stage 5: the same answers in Node ---------------------------------------------------------------
def check_node(graph: Graph, stage: Path, ctx: _Context) -> None:
    """Run every variant in onnxruntime-node (the polyonnx JS package, in the Node worker) against
    ONNX Runtime Python before the bundle is renamed into place. Without Node the check is
    skipped and the manifest says so; a check that runs and fails fails the export."""
    from .runtimes import available
    from .verify import verify_bundle

    with ctx.steps.step("run every variant in Node (onnxruntime-node) against ONNX Runtime Python") as st:
        ok, why = available("node")
        bundle = Bundle.load(stage)
        if not ok:
            bundle.manifest.setdefault("notes", []).append(
                f"not checked in Node at export: {why}; run `polyonnx verify` where Node is installed")
            bundle.save_manifest()
            st["result"] = f"skipped: {why}"
            return
        # The feeds verification used (given sets included), not regenerated ones: random
        # values of an index or shape input may not run.
        checks = verify_bundle(bundle, runtimes=["node"], feeds=graph.plan.feeds, save=True)
        failed = [c for c in checks if not c["passed"]]
        if failed:
            detail = "; ".join(
                f"{c['variant']} vs {c['reference']}: " + (c.get("error") or ", ".join(
                    f"{o} max_abs {m.get('max_abs')}, cosine {m.get('cosine')}"
                    for o, m in c["outputs"].items() if not m.get("passed", True)))
                for c in failed)
            raise VerificationError(
                "export (node)", f"onnxruntime-node does not give ONNX Runtime Python's answers: {detail}",
                "inspect with `polyonnx verify` after `polyonnx export --no-verify`; report the model if the "
                "difference is a runtime bug", details={"checks": checks})
        worst = max((m.get("max_abs") or 0.0 for c in checks for m in c["outputs"].values()), default=0.0)
        st["result"] = f"{len(checks)} checks passed (largest max_abs {worst:.2e})"


# -- the manifest ------------------------------------------------------------------------------------
def build_manifest(graph: Graph, variants: dict[str, Variant], report: dict | None, ctx: _Context, *,
                   name: str, seconds: float) -> dict:
    from . import _ort

    fp32 = variants["fp32"].entry
    m = {
        "schema_version": _manifest.SCHEMA_VERSION,
        "name": _identifier(name),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "producer": {"polyonnx": __version__, "python": platform.python_version(),
                     "torch": graph.versions.get("torch"), "onnx": _onnx_version(),
                     "onnxruntime": _ort.version(), "onnxscript": graph.versions.get("onnxscript")},
        "opset": fp32["opset"],
        "ir_version": fp32["ir_version"],
        "inputs": graph.input_manifest(),
        "outputs": list(graph.output_specs),
        "dims": graph.dims_manifest(),
        "variants": {n: v.entry for n, v in variants.items()},
        "default_variant": "fp32",
        "export": {"source": "onnx" if graph.strategy == "onnx-import" else "torch",
                   "strategy": graph.strategy, "attempts": list(graph.attempts),
                   "example_sizes": {k: int(v.example) for k, v in graph.dims.items()},
                   "feeds": graph.plan.sources,
                   "stages": _stages(ctx),
                   "seconds": round(seconds, 2)},
    }
    if graph.upgrade:
        m["export"]["upgrade"] = graph.upgrade
    if graph.description:
        m["description"] = graph.description
    if ctx.notes:
        m["notes"] = list(dict.fromkeys(ctx.notes))
    if report:
        m["quantization_report"] = report
    return m


def _quant_options(mode: str, calibration, given):
    from .autoquant import QuantOptions

    if isinstance(given, QuantOptions):
        opts = given
    else:
        given = dict(given or {})
        unknown = set(given) - set(QuantOptions.__dataclass_fields__)
        if unknown:
            raise PolyonnxError("quantize", f"unknown quant_options {sorted(unknown)}",
                                f"use {sorted(QuantOptions.__dataclass_fields__)}")
        opts = QuantOptions(**given)
    opts.mode = mode
    if calibration is not None:
        opts.calibration = calibration
    methods = []
    for m in opts.methods:
        canon = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}.get(str(m).lower())
        if canon is None:
            raise PolyonnxError("quantize", f"unknown calibration method '{m}'", "use MinMax, Entropy or Percentile")
        methods.append(canon)
    opts.methods = tuple(methods)
    return opts


def _worst(float_path: Path, qdq_path: Path, feeds: list[dict]) -> list[dict]:
    from . import _quantize as q

    return q.worst_tensors(float_path, qdq_path, feeds)


def _candidate_lines(report: dict) -> list[str]:
    lines = []
    fp32 = report["fp32"]
    lat = ", ".join(f"{rt} {ms:.3f} ms" for rt, ms in fp32.get("latency_ms", {}).items())
    lines.append(f"fp32: {fp32['bytes'] / 1e6:.2f} MB" + (f", {lat}" if lat else "")
                 + (f", {report['evaluation'].get('metric')} {fp32['task_metric']:.4f}" if fp32.get("task_metric") is not None else ""))
    for c in report["candidates"]:
        parts = [c["name"]]
        if "bytes" in c:
            parts.append(f"{c['bytes'] / 1e6:.2f} MB ({c['size_ratio']:.2f}x)")
        if c.get("cosine") is not None:
            parts.append(f"cosine {c['cosine']:.5f}")
        if c.get("task_metric") is not None:
            parts.append(f"{report['evaluation'].get('metric')} {c['task_metric']:.4f}")
        if c.get("speedup"):
            parts.append("speed-up " + ", ".join(f"{rt} {s:.2f}x" for rt, s in c["speedup"].items()))
        parts.append("CHOSEN" if c.get("chosen") else ("ok" if c.get("accepted") else f"refused: {c.get('reason', '')}"))
        lines.append(" | ".join(parts))
    return lines


def _identifier(name: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.:/-]", "_", name or "model")
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"model_{cleaned}"


def _onnx_version() -> str:
    import onnx

    return onnx.__version__
