"""polyonnx on a corpus of models this project did not write (issue #10).

    nice -n 10 .venv/bin/python bench/corpus.py [--only NAME[,NAME]] [--family hf|wheel] [--skip-browser] [--wasm]

For each model (bench/corpus_models.py), one progress line per step:

1. raw: what the raw tools give, without polyonnx. A PyTorch model: torch.onnx.export (default
   exporter, the user's dynamic axes) + ONNX Runtime Python, compared with PyTorch at the user's
   sizes. A shipped .onnx: ONNX Runtime Python + onnxruntime-node on the same feeds.
2. polyonnx: ``polyonnx.export`` (torch) or import (``polyonnx.export(path, None, out)``), with
   only the options a user would have to give (the table's "told" column).
3. runs: the bundle in python, node and browser (and wasm with ``--wasm``) at >= 3 sizes per
   dynamic dim, chosen from the manifest's dims and their min/max/multiple_of; every runtime is
   compared with raw ONNX Runtime Python on the bundle's model file and identical feeds (and, for
   PyTorch models, with PyTorch itself).
4. constraints: a size just inside (the smallest legal one) must work in every runtime; sizes just
   outside (below min, off multiple_of, above max) and an integer value just outside a recorded
   value_range must be refused by every runtime with the same error (Python: a polyonnx error;
   JS: code E_FEED), before ONNX Runtime sees them.

Writes bench/results/corpus.json (merged by model name, so ``--only`` updates one row), prints a
table, and with ``--docs docs/corpus.md`` rewrites the table there. Failure classes go to
``--findings`` (default /tmp/corpus-findings.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import corpus_models as cm  # noqa: E402
import corpus_raw as raw  # noqa: E402

RESULTS = HERE / "results" / "corpus.json"
MODEL_SECONDS = 300  # one model's budget, all steps together
TOLERANCES = json.loads((REPO / "shared-schemas" / "tolerances.json").read_text())


# --- comparing ----------------------------------------------------------------------------------
def tolerance(against: str, kind: str = "fp32") -> dict:
    return TOLERANCES["checks"].get(kind, {}).get(against) or TOLERANCES["default"]


def compare(got: dict, ref: dict, against: str, kind: str = "fp32") -> str | None:
    """None when every output of ``got`` matches ``ref`` by the tolerances.json rule for ``kind``
    (fp32; int8 for graphs with integer kernels, judged by cosine where native and wasm kernels differ),
    else why not."""
    tol = tolerance(against, kind)
    for name, r in ref.items():
        if name not in got:
            return f"no output '{name}'"
        a, r = np.asarray(got[name]), np.asarray(r)
        if a.shape != r.shape:
            return f"'{name}' shape {list(a.shape)} != {list(r.shape)}"
        if r.dtype.kind != "f":
            if not np.array_equal(a, r):
                return f"'{name}' differs (exact compare)"
            continue
        if a.size == 0:
            continue
        a64, r64 = a.astype(np.float64).ravel(), r.astype(np.float64).ravel()
        d = np.abs(a64 - r64)
        if not np.all(np.isfinite(d)):
            return f"'{name}' has non-finite differences"
        if tol.get("atol") is not None:
            bound = tol["atol"] + tol["rtol"] * float(np.max(np.abs(r64)))
            if float(d.max()) > bound:
                return f"'{name}' max_abs {float(d.max()):.3g} > {bound:.3g}"
        norms = float(np.linalg.norm(a64) * np.linalg.norm(r64))
        cosine = float(a64 @ r64 / norms) if norms else float(np.array_equal(a64, r64))
        # As shared-schemas' rule is applied: an output within atol everywhere (a detector's sigmoid
        # map on noise) passes whatever its cosine, which then only measures round-off.
        within_atol = tol.get("atol") is not None and float(d.max()) <= tol["atol"]
        if cosine < tol["min_cosine"] and not within_atol:
            return f"'{name}' cosine {cosine:.6f} < {tol['min_cosine']} (max_abs {float(d.max()):.3g})"
    return None


def bundle_kind(manifest: dict) -> str:
    """The default variant's tolerance kind, as polyonnx verify judges it (an imported graph that
    ships int8 kernels is an int8 variant)."""
    from polyonnx.manifest import variant_kind

    return variant_kind(manifest["variants"][manifest["default_variant"]])


# --- sizes from the manifest --------------------------------------------------------------------
def input_dims(manifest: dict) -> dict:
    """The manifest's dims that some input uses, with their constraints."""
    used = {d for i in manifest["inputs"] for d in i["shape"] if isinstance(d, str)}
    return {n: d for n, d in manifest.get("dims", {}).items() if n in used and not d.get("derived")}


def legal(dim: dict, size: int) -> bool:
    lo = dim.get("min", 1)
    return size >= lo and ("max" not in dim or size <= dim["max"]) and size % dim.get("multiple_of", 1) == 0


def smallest_legal(dim: dict) -> int:
    step = dim.get("multiple_of", 1)
    return -(-dim.get("min", 1) // step) * step


def sizes_for(dim: dict) -> list[int]:
    """>= 3 legal sizes: the smallest, the example, and a larger one that is not a multiple of the
    example where the constraints allow one."""
    step = dim.get("multiple_of", 1)
    ex = int(dim["example"])
    out = [smallest_legal(dim), ex]
    for cand in (ex + step, ex + 2 * step, 2 * ex + step, 2 * ex):
        if legal(dim, cand) and cand not in out and (cand % ex if ex else 1):
            out.append(cand)
            break
    for cand in (ex + 3 * step, 2 * ex, 3 * ex):
        if len(set(out)) >= 3:
            break
        if legal(dim, cand) and cand not in out:
            out.append(cand)
    return sorted({s for s in out if legal(dim, s)})


def largest_probe(dim: dict, large: int = 256) -> int | None:
    """The top of the legal range: ``max`` itself, or with no max a large size a user may well send
    (256 tokens, pixels or items; 2x the example when that is larger). A graph that fails there
    (position embeddings, fixed tables) has a max its manifest does not state."""
    if "max" in dim:
        return dim["max"] if dim["max"] <= 4096 and dim["max"] != smallest_legal(dim) else None
    step = dim.get("multiple_of", 1)
    return -(-max(large, 2 * int(dim["example"])) // step) * step


FEED_BYTES = 16 << 20  # the large probe's feeds stay under this (Chromium's page died on 154 MB)


def feed_bytes(manifest: dict, sizes: dict) -> int:
    total = 0
    for spec in manifest["inputs"]:
        n = 1
        for d in spec["shape"]:
            n *= d if isinstance(d, int) else int(sizes.get(d, manifest["dims"][d]["example"]))
        total += n * 8
    return total


def size_plans(dims: dict) -> list[dict]:
    """The examples together, then each dim through its sizes with the others at their examples."""
    base = {n: int(d["example"]) for n, d in dims.items()}
    plans = [base]
    for n, d in dims.items():
        for s in sizes_for(d):
            p = dict(base, **{n: s})
            if p not in plans:
                plans.append(p)
    return plans


def constraint_text(dims: dict) -> str:
    if not dims:
        return "static"
    parts = []
    for n, d in dims.items():
        c = [f"min {d['min']}" if "min" in d else "min ?"]
        if "max" in d:
            c.append(f"max {d['max']}")
        if d.get("multiple_of", 1) > 1:
            c.append(f"x{d['multiple_of']}")
        parts.append(f"{n}[{', '.join(c)}]")
    return " ".join(parts)


# --- feeds --------------------------------------------------------------------------------------
def bundle_feeds(case, manifest: dict, sizes: dict, seed: int) -> dict:
    """Feeds at ``sizes`` for the bundle's inputs, with the values a user would send (the case's)."""
    rng = np.random.default_rng(seed)
    by_name = {i.name: i for i in case.inputs}
    feeds = {}
    for spec in manifest["inputs"]:
        shape = tuple(d if isinstance(d, int) else int(sizes.get(d, manifest["dims"][d]["example"]))
                      for d in spec["shape"])
        inp = by_name.get(spec["name"]) or cm.Inp(spec["name"], spec["dtype"], ())
        feeds[spec["name"]] = cm.make_value(cm.Inp(inp.name, spec["dtype"], shape, inp.values), shape, rng)
    return feeds


# --- errors -------------------------------------------------------------------------------------
def short(e: BaseException, n: int = 400) -> str:
    text = " ".join(str(e).split())
    return (f"{type(e).__name__}: {text}")[:n]


def refusal(e: BaseException) -> dict:
    """How a runtime said no: its class, code, message (without the stage) and whether it is a refusal
    (a polyonnx feed check: Python's polyonnx error that is not ONNX Runtime's, JS code E_FEED)."""
    from polyonnx.errors import PolyonnxError

    code = getattr(e, "code", None) or (getattr(e, "details", None) or {}).get("code")
    msg = getattr(e, "message", None) or str(e)
    ours = isinstance(e, PolyonnxError)
    ort_inside = bool(re.search(r"onnxruntime|\[ONNXRuntimeError\]|Non-zero status|ORT|Got invalid dimensions",
                                msg)) and code != "E_FEED"
    crashed = "Crash" in type(e).__name__ or "Timeout" in type(e).__name__
    return {"class": type(e).__name__, "code": code, "message": " ".join(msg.split())[:300],
            "refused": ours and not ort_inside and not crashed and (code in (None, "E_FEED"))}


# --- one model ----------------------------------------------------------------------------------
class Budget(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int):
    def boom(*_):
        raise Budget(f"over the {seconds}s budget for one model")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Progress:
    def __init__(self, index: int, total: int, name: str):
        self.prefix = f"[{index:>2}/{total}] {name}"

    def __call__(self, step: str, result: str, t0: float) -> None:
        print(f"{self.prefix}: {step}: {result} ({time.perf_counter() - t0:.1f}s)", flush=True)


def run_raw(case, built, work: Path) -> dict:
    """The raw tools at the user's sizes."""
    sets = [cm.user_feeds(case, s, seed=i) for i, s in enumerate(case.user_sizes)]
    if case.kind == "export":
        model, out_names = built
        dynamic = {}
        for inp in case.inputs:
            axes = {a: d for a, d in enumerate(inp.shape) if isinstance(d, str)}
            if axes:
                dynamic[inp.name] = axes
        path = work / "raw.onnx"
        try:
            with contextlib.redirect_stdout(open(os.devnull, "w")):
                exporter = raw.torch_export(model, cm.user_feeds(case, case.user_sizes[1]), dynamic, out_names, path)
        except Exception as e:
            return {"ok": False, "tool": "torch.onnx.export", "error": short(e, 300)}
        try:
            sess = raw.ort_session(path)
        except Exception as e:
            return {"ok": False, "tool": "ORT python load", "error": short(e, 300)}
        passed, errors = 0, []
        for sizes, feeds in zip(case.user_sizes, sets):
            try:
                why = compare(raw.ort_run(sess, feeds), raw.torch_run(model, feeds, out_names), "torch")
            except Exception as e:
                why = short(e, 200)
            passed += why is None
            if why:
                errors.append(f"at {sizes}: {why}")
        return {"ok": not errors, "tool": f"torch.onnx.export ({exporter}) + ORT python", "passed": passed,
                "of": len(sets),
                **({"error": errors[0]} if errors else {})}
    path = built
    try:
        sess = raw.ort_session(path)
    except Exception as e:
        return {"ok": False, "tool": "ORT python load", "error": short(e, 300)}
    refs, errors = [], []
    for sizes, feeds in zip(case.user_sizes, sets):
        try:
            refs.append(raw.ort_run(sess, feeds))
        except Exception as e:
            refs.append(None)
            errors.append(f"python at {sizes}: {short(e, 200)}")
    passed, failed = 0, set()
    for backend in ("node", "web"):  # onnxruntime-node, and onnxruntime-web's wasm backend in Node
        for sizes, ref, got in zip(case.user_sizes, refs, raw.node_run(path, sets, backend=backend)):
            if isinstance(got, str):
                errors.append(f"{backend} at {sizes}: {got[:200]}")
                failed.add(backend)
                continue
            why = (compare(got, ref, "node" if backend == "node" else "wasm", raw.kind_of(path)) if ref is not None
                   else "no reference")
            passed += why is None and backend == "node"
            if why and ref is not None:
                errors.append(f"{backend} at {sizes}: {why}")
                failed.add(backend)
    return {"ok": not errors, "tool": "ORT python + onnxruntime-node + onnxruntime-web (wasm)", "passed": passed,
            "of": len(sets), "failed": sorted(failed), **({"error": errors[0]} if errors else {})}


def export_bundle(case, built, out: Path) -> None:
    import polyonnx

    opts = dict(quantize="none", progress=False, force=True, **case.options)
    if case.kind == "export":
        model, out_names = built
        example = {k: __import__("torch").from_numpy(v) for k, v in cm.user_feeds(case, case.user_sizes[1]).items()}
        dynamic = {i.name: {a: d for a, d in enumerate(i.shape) if isinstance(d, str)} for i in case.inputs}
        polyonnx.export(model, example, out, dynamic_axes={k: v for k, v in dynamic.items() if v},
                        output_names=out_names, **opts)
    else:
        polyonnx.export(str(built), None, out, **opts)


def open_runtimes(names, bundle) -> tuple[dict, dict]:
    import polyonnx

    opened, failed = {}, {}
    for name in names:
        try:
            opened[name] = polyonnx.runtime(name, bundle, threads=1)
        except Exception as e:
            failed[name] = short(e, 300)
    return opened, failed


def run_everywhere(rts: dict, feeds: dict) -> dict:
    """name -> outputs dict, or the exception."""
    res = {}
    for name, rt in rts.items():
        try:
            res[name] = rt.run(feeds)
        except Exception as e:  # every runtime error is a result here
            res[name] = e
    return res


def check_runs(case, bundle, rts, model_path, torch_model) -> dict:
    manifest = bundle.manifest
    dims = input_dims(manifest)
    plans = size_plans(dims)
    ref_sess = raw.ort_session(model_path)
    out = {rt: {"passed": 0, "errors": []} for rt in rts}
    out["torch"] = {"passed": 0, "errors": []} if torch_model is not None else None
    for i, plan in enumerate(plans):
        feeds = bundle_feeds(case, manifest, plan, seed=100 + i)
        try:
            ref = raw.ort_run(ref_sess, feeds)
        except Exception as e:
            ref = None
            for rt in rts:
                out[rt]["errors"].append(f"at {plan}: raw ORT python fails too: {short(e, 200)}")
        if ref is not None and torch_model is not None:
            try:
                why = compare(ref, raw.torch_run(torch_model[0], feeds, torch_model[1]), "torch")
            except Exception as e:
                why = f"PyTorch fails: {short(e, 200)}"
            out["torch"]["passed"] += why is None
            if why:
                out["torch"]["errors"].append(f"at {plan}: {why}")
        if ref is None:
            continue
        for rt, got in run_everywhere(rts, feeds).items():
            why = short(got, 300) if isinstance(got, BaseException) else compare(got, ref, rt, bundle_kind(manifest))
            out[rt]["passed"] += why is None
            if why:
                out[rt]["errors"].append(f"at {plan}: {why}")
    return {"plans": plans, "dims": dims, "results": {k: v for k, v in out.items() if v is not None}}


def check_constraints(case, bundle, rts, model_path) -> list[dict]:
    """Just inside works everywhere; just outside is refused everywhere with the same error."""
    manifest = bundle.manifest
    dims = input_dims(manifest)
    base = {n: int(d["example"]) for n, d in dims.items()}
    probes = []
    for n, d in dims.items():
        lo = smallest_legal(d)
        lo, below = smallest_legal(d), d.get("min", 1) - 1
        probes.append(("inside", f"{n}={lo} (smallest legal)", dict(base, **{n: lo}), None, None))
        if below >= 0:
            probes.append(("outside", f"{n}={below} (below min)", dict(base, **{n: below}), None, None))
        step = d.get("multiple_of", 1)
        if step > 1:
            probes.append(("outside", f"{n}={lo + 1} (off x{step})", dict(base, **{n: lo + 1}), None, None))
        if "max" in d:
            probes.append(("outside", f"{n}={d['max'] + 1} (above max)", dict(base, **{n: d["max"] + 1}), None, None))
        top = largest_probe(d)
        while top is not None and feed_bytes(manifest, dict(base, **{n: top})) > FEED_BYTES and top > 2 * lo:
            top = top // 2 // d.get("multiple_of", 1) * d.get("multiple_of", 1)  # a browser page holds the feeds twice
        if top is not None and top > lo:
            probes.append(("inside", f"{n}={top} ({'max' if top == d.get('max') else 'large, no max'})",
                           dict(base, **{n: top}), None, None))
    static = [(spec["name"], axis, d) for spec in manifest["inputs"] for axis, d in enumerate(spec["shape"])
              if isinstance(d, int) and d > 1]
    if static:  # one static axis off by one: the shape check every runtime makes before ONNX Runtime
        name, axis, d = static[0]
        probes.append(("outside", f"{name} axis {axis}={d + 1} (static {d})", base, None, (name, axis, d + 1)))
    for spec in manifest["inputs"]:
        vr = spec.get("value_range")
        if vr and spec["dtype"].startswith(("int", "uint")):
            probes.append(("inside", f"{spec['name']}={vr[1]} (top of value_range)", base, (spec["name"], vr[1]), None))
            probes.append(("outside", f"{spec['name']}={vr[1] + 1} (above value_range)", base, (spec["name"], vr[1] + 1),
                           None))
    ref_sess = raw.ort_session(model_path)
    results = []
    for i, (want, label, plan, poke, reshape) in enumerate(probes):
        feeds = bundle_feeds(case, manifest, plan, seed=200 + i)
        if reshape:
            name, axis, size = reshape
            shape = list(feeds[name].shape)
            shape[axis] = size
            feeds[name] = np.resize(feeds[name], shape)
        if poke and feeds[poke[0]].size:
            feeds[poke[0]] = feeds[poke[0]].copy()
            feeds[poke[0]].reshape(-1)[:1] = poke[1]
        got = run_everywhere(rts, feeds)
        row = {"want": want, "probe": label, "runtimes": {}}
        if want == "inside":
            try:
                ref = raw.ort_run(ref_sess, feeds)
            except Exception as e:
                ref = None
                row["raw_ort"] = short(e, 200)
            for rt, g in got.items():
                if isinstance(g, BaseException):
                    row["runtimes"][rt] = {"ok": False, "error": short(g, 300)}
                else:
                    why = compare(g, ref, rt, bundle_kind(bundle.manifest)) if ref is not None else None
                    row["runtimes"][rt] = {"ok": why is None, **({"error": why} if why else {})}
            row["ok"] = all(r["ok"] for r in row["runtimes"].values())
        else:
            msgs = set()
            for rt, g in got.items():
                if isinstance(g, BaseException):
                    r = refusal(g)
                    row["runtimes"][rt] = {"ok": r["refused"], **r}
                    msgs.add(r["message"])
                else:
                    row["runtimes"][rt] = {"ok": False, "error": "accepted (ran)"}
            row["same_error"] = len(msgs) == 1 and len(got) > 1
            row["ok"] = all(r["ok"] for r in row["runtimes"].values()) and row["same_error"]
        results.append(row)
    return results


def run_case(case, work: Path, runtimes: list[str], index: int, total: int) -> dict:
    import polyonnx

    say = Progress(index, total, case.name)
    row = {"name": case.name, "family": case.family, "domain": case.domain, "kind": case.kind,
           "source": case.source, "told": case.told, "options": case.options}
    t0 = time.perf_counter()
    try:
        built = case.build()
    except Exception as e:
        row["error"] = f"build: {short(e)}"
        say("build", f"FAILED {row['error']}", t0)
        return row
    say("build", "ok", t0)
    t0 = time.perf_counter()
    row["raw"] = run_raw(case, built, work)
    say("raw tools", f"{row['raw']['tool']}: " + ("ok" if row["raw"]["ok"] else f"FAILED {row['raw']['error']}"), t0)
    out = work / "bundle"
    t0 = time.perf_counter()
    try:
        if case.kind == "export":  # a fresh model: the raw exporters may leave patches on the one they traced
            built = case.build()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            export_bundle(case, built, out)
        bundle = polyonnx.load(out)
    except Exception as e:
        row["polyonnx"] = {"ok": False, "error": short(e, 1500)}
        if not isinstance(e, polyonnx.PolyonnxError):  # a crash, not a decision: say where
            frame = traceback.extract_tb(e.__traceback__)[-1]
            row["polyonnx"]["where"] = f"{Path(frame.filename).name}:{frame.lineno} {frame.line}"
        row["seconds_export"] = round(time.perf_counter() - t0, 1)
        say("polyonnx " + case.kind, f"FAILED {short(e, 300)}", t0)
        return row
    row["seconds_export"] = round(time.perf_counter() - t0, 1)
    row["polyonnx"] = {"ok": True}
    dims = input_dims(bundle.manifest)
    row["dims"] = dims
    row["value_ranges"] = {i["name"]: i["value_range"] for i in bundle.inputs if i.get("value_range")}
    say("polyonnx " + case.kind, f"ok, dims {constraint_text(dims)}", t0)
    t0 = time.perf_counter()
    rts, failed = open_runtimes(runtimes, bundle)
    try:
        model_path = bundle.model_path(bundle.default_variant)
        torch_model = built if case.kind == "export" else None
        runs = check_runs(case, bundle, rts, model_path, torch_model)
        for rt, why in failed.items():
            runs["results"][rt] = {"passed": 0, "errors": [f"open: {why}"]}
        row["runs"] = {"plans": runs["plans"],
                       **{rt: {"passed": r["passed"], "of": len(runs["plans"]), **({"error": r["errors"][0]} if r["errors"] else {})}
                          for rt, r in runs["results"].items()}}
        say("runs", ", ".join(f"{rt} {r['passed']}/{len(runs['plans'])}" for rt, r in runs["results"].items())
            + f" at {len(runs['plans'])} size sets", t0)
        t0 = time.perf_counter()
        row["constraints"] = check_constraints(case, bundle, rts, model_path)
        bad = [c for c in row["constraints"] if not c["ok"]]
        say("constraints", f"{len(row['constraints']) - len(bad)}/{len(row['constraints'])} as the manifest says"
            + (f"; first miss: {bad[0]['probe']}: {first_miss(bad[0])}" if bad else ""), t0)
    finally:
        for rt in rts.values():
            with contextlib.suppress(Exception):
                rt.close()
    return row


def first_miss(c: dict) -> str:
    for rt, r in c["runtimes"].items():
        if not r["ok"]:
            return f"{rt}: {r.get('error') or r.get('class') + ': ' + r.get('message', '')}"[:300]
    return "runtimes disagree: " + " | ".join(f"{rt}: {r.get('message', '')[:120]}" for rt, r in c["runtimes"].items())


# --- the table ----------------------------------------------------------------------------------
def verdict(row: dict) -> str:
    if row.get("error"):
        return "build failed"
    if not row.get("polyonnx", {}).get("ok"):
        return "refused" if row.get("raw", {}).get("ok") is False else "FAILS"
    runs = row.get("runs", {})
    raw_failed = {"browser" if b == "web" else b for b in row.get("raw", {}).get("failed", [])} | (
        {"wasm"} if "web" in row.get("raw", {}).get("failed", []) else set())
    ok_runs = all(r["passed"] == r["of"] for k, r in runs.items() if k != "plans" and k not in raw_failed)
    ok_c = all(c["ok"] for c in row.get("constraints", []))
    excused = sorted(k for k, r in runs.items() if k in raw_failed and r["passed"] < r["of"])
    if ok_runs and ok_c:
        return f"pass ({', '.join(excused)}: raw fails too)" if excused else "pass"
    return "FAILS"


def cell_runs(row: dict, rt: str) -> str:
    r = row.get("runs", {}).get(rt)
    if not r:
        return "-"
    return f"{r['passed']}/{r['of']}" + ("" if r["passed"] == r["of"] else " ✗")


def cell_constraints(row: dict) -> str:
    cs = row.get("constraints")
    if cs is None:
        return "-"
    inside = [c for c in cs if c["want"] == "inside"]
    outside = [c for c in cs if c["want"] == "outside"]
    return (f"in {sum(c['ok'] for c in inside)}/{len(inside)}, "
            f"out {sum(c['ok'] for c in outside)}/{len(outside)}")


def reason(row: dict) -> str:
    if row.get("error"):
        return row["error"]
    p = row.get("polyonnx", {})
    if not p.get("ok"):
        return p.get("error", "") + (f" (at {p['where']})" if p.get("where") else "")
    for rt, r in row.get("runs", {}).items():
        if rt != "plans" and r.get("error"):
            return f"{rt}: {r['error']}"
    for c in row.get("constraints", []):
        if not c["ok"]:
            return f"{c['probe']}: {first_miss(c)}"
    return ""


def table(rows: list[dict], runtimes: list[str]) -> str:
    head = ["model", "source", "kind", "told polyonnx", "dims (constraints)", "raw tools",
            *runtimes, "torch", "inside/outside", "verdict", "reason"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rawr = r.get("raw", {})
        raw_cell = "-" if not rawr else (f"ok {rawr.get('passed', '')}/{rawr.get('of', '')}" if rawr["ok"]
                                         else f"fails in {', '.join(rawr['failed'])}" if rawr.get("failed")
                                         else f"fails ({rawr.get('tool', '')})")
        if "legacy" in rawr.get("tool", ""):
            raw_cell += " (dynamo failed; legacy)"
        dims = constraint_text(r["dims"]) if "dims" in r else "-"
        cells = [r["name"], r["source"], r["kind"], r.get("told") or "-", dims, raw_cell,
                 *[cell_runs(r, rt) for rt in runtimes], cell_runs(r, "torch"), cell_constraints(r), verdict(r),
                 reason(r).replace("|", "/")[:240]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


# --- failure classes for the lead -----------------------------------------------------------------
# (class, pattern over the first failure's text, what polyonnx would need to do). First match wins.
CLASSES = [
    ("the manifest admits a size the graph fails at (a max it does not state)", r"\(large, no max\)",
     "probe a large size during discovery (or read position-embedding / table sizes) and record max"),
    ("the manifest admits a size or value a runtime then runs (no refusal)", r"accepted \(ran\)",
     "every runtime checks min/max/multiple_of, static axes and integer value_range before ONNX Runtime"),
    ("runtimes refuse with different errors", r"runtimes disagree",
     "one message for one refusal, built from shared data (shared-schemas vectors)"),
    ("pinned or tied input shapes written into the graph break ONNX Runtime's type inference",
     r"TypeInferenceError|ShapeInferenceError",
     "enforce user-pinned sizes in the manifest and the feed check, but keep the graph's own input shapes (or "
     "fall back to them when ORT cannot load the rewritten graph)"),
    ("import: the example sizes are chosen before discovery, and the graph fails at them",
     r"fails on the generated feeds|imported graph fails",
     "run discovery (min, multiple_of from ORT probes) before picking the example, as for other imports"),
    ("exported graph is wrong at sizes PyTorch accepts (padding/windows computed at trace time)",
     r"no exporter produced a graph that works",
     "discover constraints from the candidate graph too (ORT probes, as for imports: e.g. multiple_of 32), "
     "then verify inside them; measured: with dims={'height': {'min': 32, 'multiple_of': 32}, 'width': ...} "
     "told, MobileNetV2 and Swin both export and verify"),
    ("PyTorch fails on the user's own example", r"the model itself fails on the example",
     "check the model is not changed by an earlier export in the same process (torch.export patches)"),
    ("a runtime refuses at load what the same raw runtime runs", r"open: .*(has no kernel|load)",
     "base the refusal on a measured load in that runtime, not on a list"),
    ("a size the model rejects was verified", r"Kernel size|fails on sizes|fails at sizes",
     "choose verification sizes inside the discovered constraints"),
    ("example values became a runtime limit", r"value_range|outside value",
     "value domains from the graph (embedding table) or the user, never from the example"),
    ("bundle output differs from the reference", r"max_abs .* >|shape \[",
     "verify at these sizes and refuse, or record the constraint that excludes them"),
    ("a runtime failed inside ONNX Runtime instead of refusing", r"ONNXRuntimeError|Non-zero status|E_RUN",
     "refuse before ONNX Runtime with E_FEED"),
    ("a runtime process died", r"Crash|died|terminate", "contain ORT aborts in a child process"),
    ("polyonnx crashed (not a decision)", r"\(at \w+\.py:\d+", "raise a PolyonnxError with stage and fix"),
]


def classify(text: str) -> tuple[str, str]:
    for name, pattern, fix in CLASSES:
        if re.search(pattern, text):
            return name, fix
    return "other", ""


def findings(rows: list[dict], commit: str) -> str:
    groups: dict[tuple, list] = {}
    for r in rows:
        if verdict(r).startswith("pass"):
            continue
        text = reason(r)
        groups.setdefault(classify(text), []).append((r["name"], text))
    out = [f"# corpus findings (bench/corpus.py) at {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
           "", f"{sum(verdict(r).startswith('pass') for r in rows)}/{len(rows)} pass. "
           f"Raw tools ok on {sum(bool(r.get('raw', {}).get('ok')) for r in rows)}/{len(rows)}.", ""]
    for (name, fix), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        out.append(f"## {name}: {len(items)}")
        if fix:
            out.append(f"Needed: {fix}.")
        for model, text in items:
            out.append(f"- **{model}**: `{text[:700]}`")
        out.append("")
    return "\n".join(out)


def git_commit(rev: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s", rev], capture_output=True,
                              text=True, timeout=10).stdout.strip()[:100]
    except Exception:
        return "?"


def snapshot(rev: str) -> Path:
    """polyonnx's python/, js/ and shared-schemas/ as committed at ``rev``, beside this checkout's node_modules."""
    dest = Path(tempfile.mkdtemp(prefix="polyonnx-corpus-tree-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "python", "js", "shared-schemas", "package.json"],
                             capture_output=True, check=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    (dest / "node_modules").symlink_to(REPO / "node_modules")
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="model name(s), comma separated; repeatable")
    ap.add_argument("--family", choices=cm.FAMILIES, help="only this family")
    ap.add_argument("--skip-browser", action="store_true", help="no Chromium runs")
    ap.add_argument("--wasm", action="store_true", help="also onnxruntime-web's wasm backend in Node")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON results (merged by model name)")
    ap.add_argument("--docs", type=Path, help="rewrite the table in this markdown file (between its markers)")
    ap.add_argument("--findings", type=Path, default=Path("/tmp/corpus-findings.md"))
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--at", metavar="REV", help="run polyonnx as committed at REV (a git archive in a temporary "
                    "folder), not the working tree, which may hold someone's half-done edits")
    args = ap.parse_args(argv)
    only = {n for o in args.only for n in o.split(",") if n}
    unknown = only - set(cm.CASES)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; --list shows them")
    cases = [c for c in cm.CASES.values() if (not only or c.name in only) and (not args.family or c.family == args.family)]
    if args.list:
        for c in cases:
            print(f"{c.name:22} {c.family:6} {c.kind:7} {c.source}")
        return 0
    os.environ.setdefault("ONNXRUNTIME_NODE_INSTALL", "skip")
    tree = snapshot(args.at) if args.at else REPO
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # the runs that fail on purpose would fill the log
    sys.path.insert(0, str(tree / "python"))
    runtimes = ["python", "node"] + ([] if args.skip_browser else ["browser"]) + (["wasm"] if args.wasm else [])
    commit = git_commit(args.at or "HEAD") + ("" if args.at else " + working tree")
    print(f"corpus: {len(cases)} models, runtimes {', '.join(runtimes)}, at {commit}", flush=True)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="polyonnx-corpus-") as tmp:
        for i, case in enumerate(cases, start=1):
            work = Path(tmp) / case.name
            work.mkdir()
            t0 = time.perf_counter()
            try:
                with time_limit(MODEL_SECONDS):
                    row = run_case(case, work, runtimes, i, len(cases))
            except Exception as e:  # a bench bug or the budget: record it, go on with the next model
                row = {"name": case.name, "family": case.family, "domain": case.domain, "kind": case.kind,
                       "source": case.source, "told": case.told, "error": short(e, 600),
                       "trace": traceback.format_exc()[-1500:]}
                print(f"[{i:>2}/{len(cases)}] {case.name}: ERROR {short(e, 300)}", flush=True)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            row["verdict"] = verdict(row)
            rows.append(row)
            shutil.rmtree(work, ignore_errors=True)
            args.findings.write_text(findings(rows, commit))
    elapsed = time.perf_counter() - started
    text = table(rows, runtimes)
    print()
    print(text)
    print(f"\n{sum(r['verdict'].startswith('pass') for r in rows)}/{len(rows)} pass; raw tools ok on "
          f"{sum(bool(r.get('raw', {}).get('ok')) for r in rows)}/{len(rows)}; {elapsed:.0f}s")
    previous = json.loads(args.results.read_text()).get("models", []) if args.results.is_file() else []
    merged = {r["name"]: r for r in previous}
    merged.update({r["name"]: r for r in rows})
    order = [n for n in cm.CASES if n in merged]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({
        "commit": commit, "date": time.strftime("%Y-%m-%d", time.gmtime()), "runtimes": runtimes,
        "command": "nice -n 10 .venv/bin/python bench/corpus.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seconds": round(elapsed), "models": [merged[n] for n in order]}, indent=1, default=str) + "\n")
    if args.docs:
        write_docs(args.docs, table([merged[n] for n in order], runtimes), commit)
    print(f"findings: {args.findings}")
    return 0


def write_docs(path: Path, text: str, commit: str) -> None:
    start, end = "<!-- corpus-table -->", "<!-- /corpus-table -->"
    doc = path.read_text() if path.is_file() else f"{start}\n{end}\n"
    if start not in doc:
        doc += f"\n{start}\n{end}\n"
    head, _, rest = doc.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\nMeasured at `{commit}`.\n\n{text}\n{end}{tail}")


if __name__ == "__main__":
    sys.exit(main())
