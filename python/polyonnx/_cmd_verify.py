"""`polyonnx verify BUNDLE`: run a bundle in every runtime on the same feeds and compare.

Prints a table (runtime x variant x output) on stdout and progress on stderr, records the checks
in the manifest's parity section, and exits 1 when any check is out of tolerance or could not run.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import PolyonnxError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder (or its polyonnx.json)")
    parser.add_argument("--runtimes", default="python,node,wasm",
                        help="comma-separated runtimes to check (default: python,node,wasm)")
    parser.add_argument("--variants", default=None, help="comma-separated variants (default: all in the bundle)")
    parser.add_argument("--inputs", metavar="FILE.npz", default=None,
                        help="feeds to use, one array per input name (default: generated from the manifest)")
    parser.add_argument("--sizes", metavar="DIM=N,M", nargs="+", action="extend", default=None,
                        help="sizes to run each dynamic dim at, e.g. --sizes batch=1,3 seq=5,7 "
                             "(every combination; default: 1, the example size and 2*example+1 per dim)")
    parser.add_argument("--timeout", metavar="S", type=float, default=120.0,
                        help="seconds one node/wasm request may take before the worker is stopped (default 120)")
    parser.add_argument("--no-record", action="store_true", help="do not write the results into polyonnx.json")
    parser.add_argument("--json", action="store_true",
                        help="print the checks as JSON on stdout instead of the table (exit status unchanged)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--providers", metavar="A,B", default=None,
                        help="execution providers for the runtimes under test, in order (e.g. cuda,cpu; default cpu); "
                             "the reference stays ONNX Runtime Python on the CPU")
    parser.add_argument("--fallback", choices=["error", "cpu"], default=None,
                        help="when a provider is missing: fail (error, the default) or run on the CPU and say so")


def parse_sizes(items: list[str] | None) -> dict | None:
    if not items:
        return None
    sizes = {}
    for item in items:
        name, sep, values = item.partition("=")
        try:
            parsed = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            parsed = []
        if not sep or not name or not parsed or any(v < 1 for v in parsed):
            raise PolyonnxError("verify", f"--sizes '{item}' is not DIM=N[,M...] with positive sizes",
                                "write e.g. --sizes batch=1,3 seq=5")
        sizes[name] = parsed
    return sizes


def load_inputs(path: str | None):
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise PolyonnxError("verify", f"cannot read --inputs '{path}' ({e})",
                            "pass an .npz with one array per input name (numpy.savez)") from None


def as_json(bundle, checks: list[dict], skipped) -> dict:
    """`verify --json`: the checks as recorded in the manifest, plus what was skipped and why."""
    return {
        "bundle": bundle.name,
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "skipped": [{"runtime": r, "variant": v, "reason": why} for r, v, why in skipped],
    }


def run(args) -> int:
    from .bundle import Bundle
    from .verify import format_table, record_checks, run_parity

    bundle = Bundle.load(args.bundle)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    # A file that differs from its sha256 is not a parity result to record: refuse the bundle
    # (IntegrityError, exit 2) before any runtime runs, and leave polyonnx.json as it is.
    for v in variants or list(bundle.variants):
        bundle.model_path(v, check=True)

    def progress(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    checks, skipped = run_parity(bundle, runtimes, variants, feeds=load_inputs(args.inputs),
                                 sizes=parse_sizes(args.sizes), progress=progress, timeout=args.timeout,
                                 providers=[p.strip() for p in args.providers.split(",") if p.strip()]
                                 if args.providers is not None else None, fallback=args.fallback)
    if args.json:
        print(json.dumps(as_json(bundle, checks, skipped), indent=2))
    else:
        print(format_table(checks, skipped))
    if not args.no_record:
        record_checks(bundle, checks)
        progress(f"recorded {len(checks)} check(s) in {bundle.path / 'polyonnx.json'}")
    failed = [c for c in checks if not c["passed"]]
    if failed:
        progress(f"{len(failed)} of {len(checks)} check(s) failed")
        return 1
    progress(f"all {len(checks)} check(s) passed")
    return 0
