"""`polyonnx bench BUNDLE`: latency and throughput per runtime x variant x batch size, each runtime
timed alone, each block checked against the same block in a process that opens only that runtime."""

from __future__ import annotations


def _ints(text: str) -> list[int]:
    import argparse

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("--runtimes", type=_names, default=["python", "node"],
                   help="comma-separated: python,node,wasm (default: python,node)")
    p.add_argument("--variants", type=_names, default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--batch", type=_ints, default=[1], help="batch sizes, e.g. 1,8 (default: 1)")
    p.add_argument("--seq", type=_ints, default=None,
                   help="sizes for every other dynamic input dim, e.g. 16,128 (default: each dim's example size)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per row (default: 50)")
    p.add_argument("--blocks", type=int, default=5,
                   help="cut each row's runs into this many blocks; the runtimes' blocks alternate, each runtime "
                        "alone while timed, and ratios get the min-max over blocks (default: 5)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed runs after each load (default: a quarter of a block, at least 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads, the same for every runtime (default: all cores)")
    p.add_argument("--no-self-check", dest="self_check", action="store_false",
                   help="skip the self-check: timing each block again in a process per runtime that opens only "
                        "that runtime, right after it (10%% limit)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout instead of the table")
    p.add_argument("--save", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--providers", type=_names, default=None,
                   help="execution providers for every runtime, in order (e.g. cuda,cpu; default cpu)")
    p.add_argument("--fallback", choices=["error", "cpu"], default=None,
                   help="when a provider is missing: skip the runtime with the reason (error, the default) "
                        "or run it on the CPU and record that")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from .bench import bench_bundle, format_report

    report = bench_bundle(args.bundle, runtimes=args.runtimes, variants=args.variants, batches=args.batch,
                          seqs=args.seq, runs=args.runs, warmup=args.warmup, threads=args.threads,
                          blocks=args.blocks, self_check=args.self_check, providers=args.providers,
                          fallback=args.fallback,
                          progress=None if args.quiet else lambda msg: print(f"bench: {msg}", file=sys.stderr))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        if not args.quiet:
            print(f"bench: wrote {path}", file=sys.stderr)
    return 0 if report["results"] else 1
