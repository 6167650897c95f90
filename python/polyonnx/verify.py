"""Cross-runtime parity: run one bundle in several runtimes on the same feeds and compare.

References (shared-schemas/README.md#tolerances):
- every runtime's fp32 variant is compared with ONNX Runtime Python's fp32 (tolerance
  ``fp32``/<runtime>);
- every runtime's quantized variant is compared with the same runtime's fp32 (``int8``/``fp32``:
  what quantization costs there) and, outside Python, with Python's run of that same variant
  (``int8``/<runtime>: whether the runtime's int8 kernels agree with Python's).

``verify_bundle`` returns the checks (manifest schema ``$defs/check``); ``record_checks`` writes
them into the manifest's ``parity`` section. ``python -m polyonnx verify`` does both and prints a
table. Tolerances come only from shared-schemas/tolerances.json, via ``compare.tolerance``.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timezone
from typing import Callable, Iterable

import numpy as np

from . import compare
from .bundle import Bundle
from .errors import PolyonnxError
from ._plan import sizes_of
from .feeds import make_feeds, size_plan
from .manifest import variant_kind

DEFAULT_RUNTIMES = ("python", "node", "wasm")
REFERENCE_RUNTIME = "python"
# The keys manifest.schema.json allows in `$defs/metrics`.
METRIC_KEYS = ("max_abs", "max_rel", "cosine", "argmax_agreement", "exact", "passed")


def _as_bundle(bundle) -> Bundle:
    return bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)


def _input_dims(bundle: Bundle) -> list[str]:
    """Dynamic dims that feeds set (inputs' named dims, not derived output-only ones)."""
    names = []
    for spec in bundle.inputs:
        for d in spec["shape"]:
            if isinstance(d, str) and d not in names and not bundle.dims.get(d, {}).get("derived"):
                names.append(d)
    return names


def plan_feeds(bundle, feeds=None, sizes: dict | None = None, seed: int = 0) -> list[tuple[dict, dict]]:
    """[(dim sizes, feeds)] to run every runtime on.

    feeds: one feed dict or a list of them (used as given). sizes: ``{dim: [size, ...]}``, every
    combination is run (other dims at their example size). Neither: ``feeds.size_plan`` (each
    dynamic dim at its minimum, its example and larger legal sizes, inside the manifest's
    constraints), so an axis the exporter fixed shows up here.
    """
    bundle = _as_bundle(bundle)
    if feeds is not None:
        sets = [feeds] if isinstance(feeds, dict) else list(feeds)
        return [(sizes_of(bundle.inputs, f, stage="verify"), {k: np.asarray(v) for k, v in f.items()}) for f in sets]
    dims = _input_dims(bundle)
    example = {d: int(bundle.dims[d]["example"]) for d in dims}
    if sizes:
        unknown = [d for d in sizes if d not in example]
        if unknown:
            raise PolyonnxError("verify", f"--sizes names dim(s) {', '.join(unknown)} that no input has",
                                f"the bundle's input dims are {', '.join(dims) or '(none)'}")
        names = list(sizes)
        plans = [dict(example, **dict(zip(names, combo))) for combo in itertools.product(*(sizes[d] for d in names))]
    else:
        plans = size_plan({d: bundle.dims[d] for d in dims})
    return [(plan, make_feeds(bundle.inputs, plan, seed=seed + i)) for i, plan in enumerate(plans)]


def _fp32_variant(bundle: Bundle, variants: Iterable[str]) -> str | None:
    """The fp32 variant references are taken from: the default one if it is fp32, else the first."""
    fp32 = [v for v, spec in bundle.variants.items() if variant_kind(spec) == "fp32"]
    if not fp32:
        return None
    return bundle.default_variant if bundle.default_variant in fp32 else fp32[0]


def _finite_or_none(x):
    return x if x is None or isinstance(x, bool) or not isinstance(x, float) or math.isfinite(x) else None


def _make_check(runtime: str, variant: str, reference: str, tol: dict, sizes: list[dict], specs: list[dict],
                actual: list[dict] | str, ref: list[dict] | str) -> dict:
    check = {"runtime": runtime, "variant": variant, "reference": reference, "sizes": sizes, "outputs": {},
             "tolerance": {k: float(v) for k, v in tol.items() if v is not None}, "passed": False}
    if isinstance(actual, str):
        check["error"] = actual
        return check
    if isinstance(ref, str):
        check["error"] = f"the reference {reference} did not run: {ref}"
        return check
    problems = []
    for spec in specs:
        name = spec["name"]
        runs = []
        for i, (a, r) in enumerate(zip(actual, ref)):
            if name not in a:
                problems.append(f"output '{name}' is missing from the {runtime} results")
                break
            m = compare.metrics(a[name], r[name], class_axis=spec.get("class_axis"))
            m["passed"] = compare.passes(m, tol, r[name])
            mismatch = m.pop("shape_mismatch", None)
            if mismatch:
                # Not a metric (the schema has no field for it): the check's error says it.
                problems.append(f"output '{name}' has shape {mismatch[0]} where {reference} has {mismatch[1]} "
                                f"(sizes {sizes[i]})")
            runs.append(m)
        acc = compare.accumulate(runs)
        out = {k: _finite_or_none(acc[k]) for k in METRIC_KEYS if k in acc}
        nonfinite = [k for k in acc if k in METRIC_KEYS and acc[k] is not None and out.get(k) is None]
        if nonfinite:
            problems.append(f"output '{name}': {', '.join(nonfinite)} not finite (NaN or Inf where the reference has numbers)")
        out["passed"] = bool(runs) and all(m["passed"] for m in runs)
        check["outputs"][name] = out
    check["passed"] = not problems and all(o["passed"] for o in check["outputs"].values())
    if problems:
        check["error"] = "; ".join(problems)
    return check


def run_parity(bundle, runtimes: Iterable[str] = DEFAULT_RUNTIMES, variants: Iterable[str] | None = None, feeds=None,
               sizes: dict | None = None, progress: Callable[[str], None] | None = None,
               timeout: float | None = None, providers=None,
               fallback: str | None = None) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """The checks, and the (runtime, variant, why) combinations skipped because the manifest says
    the variant is not for that runtime.

    ``providers`` / ``fallback`` (see _providers) choose where the runtimes under test run; the
    reference (ONNX Runtime Python) always runs on the CPU, so ``providers=['cuda', 'cpu']`` also
    checks python on CUDA against python on the CPU. Each check records the providers that ran."""
    from ._providers import check_request
    from .runtimes import MANIFEST_NAMES, RUNTIMES, open_runtime

    bundle = _as_bundle(bundle)
    say = progress or (lambda text: None)
    runtimes = list(dict.fromkeys(runtimes))
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise PolyonnxError("verify", f"unknown runtime(s) {', '.join(unknown)}", f"use some of {', '.join(RUNTIMES)}")
    variants = list(variants) if variants else list(bundle.variants)
    for v in variants:
        bundle.variant(v)  # raises, listing the bundle's variants
    fp32 = _fp32_variant(bundle, variants)
    feed_sets = plan_feeds(bundle, feeds, sizes)
    size_list = [s for s, _ in feed_sets]
    say(f"verify {bundle.name}: {len(feed_sets)} feed set(s) {size_list} x runtimes {', '.join(runtimes)} "
        f"x variants {', '.join(variants)}")

    # Checked once, up front: a typo in --providers fails before any runtime starts.
    on_cpu = providers is None or check_request(providers, fallback, stage="verify")[0] == ["cpu"]
    results: dict[tuple[str, str, bool], list[dict] | str] = {}
    ran_on: dict[tuple[str, str, bool], dict] = {}
    skipped: list[tuple[str, str, str]] = []

    def outputs_of(rt: str, v: str, tested: bool = False):
        # The reference side always runs with the defaults (the CPU); the tested side as asked.
        key = (rt, v, tested and not on_cpu)
        if key not in results:
            say(f"  {rt}: {v}{' on ' + ','.join(providers) if key[2] else ''} ...")
            try:
                opts = {} if timeout is None or rt == "python" else {"timeout": timeout}
                if key[2] or (tested and providers is not None):
                    opts.update(providers=list(providers), fallback=fallback)
                with open_runtime(rt, bundle, v, **opts) as session:
                    results[key] = [session.run(f) for _, f in feed_sets]
                    ran_on[key] = _ran_on(session)
            except PolyonnxError as e:
                results[key] = str(e)
                say(f"  {rt}: {v} failed: {str(e).splitlines()[0]}")
        return results[key], ran_on.get(key, {})

    checks = []
    for rt in runtimes:
        for v in variants:
            spec = bundle.variants[v]
            if MANIFEST_NAMES[rt] not in spec.get("runtimes", [MANIFEST_NAMES[rt]]):
                why = f"variant '{v}' lists runtimes {spec.get('runtimes')}, not '{MANIFEST_NAMES[rt]}'"
                skipped.append((rt, v, why))
                say(f"  {rt}: {v} skipped ({why})")
                continue
            kind = variant_kind(spec)
            pairs = []  # (reference runtime, reference variant, tolerance against)
            if kind == "fp32":
                ref_variant = fp32 if fp32 else v
                if not (rt == REFERENCE_RUNTIME and ref_variant == v and on_cpu):
                    pairs.append((REFERENCE_RUNTIME, ref_variant, rt))
            else:
                if fp32:
                    pairs.append((rt, fp32, "fp32"))
                if rt != REFERENCE_RUNTIME:
                    pairs.append((REFERENCE_RUNTIME, v, rt))
            for ref_rt, ref_v, against in pairs:
                tol = compare.tolerance(kind, against)
                actual, where = outputs_of(rt, v, tested=True)
                check = _make_check(rt, v, f"{ref_rt}:{ref_v}", tol, size_list, bundle.outputs,
                                    actual, outputs_of(ref_rt, ref_v)[0])
                check.update(where)
                checks.append(check)
                say(f"  {rt}:{v} vs {ref_rt}:{ref_v}: {'passed' if check['passed'] else 'FAILED'}")
    return checks, skipped


def _ran_on(session) -> dict:
    """The providers a runtime's session ran on, as a check records them (python and node: info();
    browser: the page's model.info(), a dict with JS names)."""
    info = session.info() if callable(getattr(session, "info", None)) else dict(getattr(session, "info", None) or {})
    found = {"providers": info.get("providers"),
             "providers_dropped": info.get("providers_dropped", info.get("providersDropped"))}
    return {k: v for k, v in found.items() if v}


def verify_bundle(bundle, runtimes: Iterable[str] = DEFAULT_RUNTIMES, variants: Iterable[str] | None = None,
                  feeds=None, sizes: dict | None = None, progress: Callable[[str], None] | None = None,
                  timeout: float | None = None, save: bool = False, providers=None,
                  fallback: str | None = None) -> list[dict]:
    """Run ``bundle`` in ``runtimes`` and return the parity checks (manifest ``$defs/check``).

    ``save=True`` also records them in the bundle's polyonnx.json (``record_checks``). Runtime
    failures (Node missing, a load error) become failed checks with an ``error``, not exceptions,
    so one broken runtime does not hide the others' results.
    """
    bundle = _as_bundle(bundle)
    checks, _ = run_parity(bundle, runtimes, variants, feeds, sizes, progress, timeout, providers, fallback)
    if save:
        record_checks(bundle, checks)
    return checks


def _check_key(check: dict) -> tuple:
    # A check on CUDA does not replace the same check on the CPU: both are kept, each saying where it ran.
    return check["runtime"], check["variant"], check["reference"], tuple(check.get("providers") or ["cpu"])


def record_checks(bundle, checks: list[dict]) -> None:
    """Write ``checks`` into the manifest's parity section, replacing any check with the same
    (runtime, variant, reference, providers); the manifest is re-validated and replaced atomically."""
    bundle = _as_bundle(bundle)
    parity = bundle.manifest.setdefault("parity", {"checks": []})
    new_keys = {_check_key(c) for c in checks}
    kept = [c for c in parity.get("checks", []) if _check_key(c) not in new_keys]
    parity["checks"] = kept + list(checks)
    parity["updated"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bundle.save_manifest()


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_table(checks: list[dict], skipped: list[tuple[str, str, str]] = ()) -> str:
    """One row per (runtime, variant, reference, output)."""
    head = ("runtime", "variant", "reference", "output", "max_abs", "max_rel", "cosine", "argmax", "result")
    rows = []
    def where(c):  # python[cuda,cpu] when the check ran on more than the CPU
        on = c.get("providers") or ["cpu"]
        return c["runtime"] if on == ["cpu"] else f"{c['runtime']}[{','.join(on)}]"

    for c in checks:
        if not c["outputs"]:
            rows.append((where(c), c["variant"], c["reference"], "-", "-", "-", "-", "-", "ERROR"))
        for name, m in c["outputs"].items():
            rows.append((where(c), c["variant"], c["reference"], name, _fmt(m.get("max_abs"), ".2e"),
                         _fmt(m.get("max_rel"), ".2e"), _fmt(m.get("cosine"), ".7f"),
                         _fmt(m.get("argmax_agreement"), ".3f"), "ok" if m.get("passed") else "FAIL"))
    for rt, v, _ in skipped:
        rows.append((rt, v, "-", "-", "-", "-", "-", "-", "skipped"))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    notes = [f"{c['runtime']}:{c['variant']} vs {c['reference']}: {c['error']}" for c in checks if c.get("error")]
    notes += [f"{rt}:{v} skipped: {why}" for rt, v, why in skipped]
    notes += [f"{c['runtime']}:{c['variant']} fell back from '{d['provider']}': {d['reason']}"
              for c in checks for d in c.get("providers_dropped", [])]
    return "\n".join(lines + ([""] + notes if notes else []))
