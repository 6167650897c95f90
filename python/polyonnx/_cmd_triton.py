"""`polyonnx triton BUNDLE [BUNDLE ...] -o REPO`: a Triton model repository from bundles (docs/triton.md)."""

from __future__ import annotations

import argparse
import sys

from ._triton import DEFAULT_MAX_BATCH, KINDS
from .errors import PolyonnxError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folders (or their polyonnx.json)")
    p.add_argument("-o", "--out", required=True, metavar="REPO", help="model repository folder to write")
    p.add_argument("--variants", metavar="A,B",
                   help="variants to serve, e.g. fp32,int8 (default: every variant of each bundle); the default "
                        "variant is model NAME, the others NAME_<variant>")
    p.add_argument("--instances", type=int, default=1, metavar="N", help="model instances per model (default 1)")
    p.add_argument("--kind", choices=sorted(KINDS), default="cpu", help="instance kind (default cpu)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                   help=f"Triton max_batch_size when every tensor leads with the same dynamic dim (default "
                        f"{DEFAULT_MAX_BATCH}; capped by that dim's max; 0 turns batching off)")
    p.add_argument("--tensorrt", action="store_true",
                   help="add the TensorRT accelerator (needs --kind gpu; precision from the variant)")
    p.add_argument("--force", action="store_true", help="replace an existing REPO folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no lines on stderr (errors still are)")


def run(args) -> int:
    from ._triton import TritonOptions, write_repository

    variants = None
    if args.variants:
        variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
        if not variants:
            raise PolyonnxError("triton", f"--variants {args.variants!r} names no variant",
                                "pass e.g. --variants fp32,int8")
    options = TritonOptions(variants=variants, instances=args.instances, kind=args.kind,
                            max_batch=args.max_batch, tensorrt=args.tensorrt)
    written = write_repository(args.bundles, args.out, options, force=args.force)
    if args.quiet:
        return 0
    for path in written:
        print(f"triton: wrote {path.parent.name} ({path})", file=sys.stderr)
    print(f"triton: {len(written)} model(s) in {args.out}; serve with the docker command in docs/triton.md",
          file=sys.stderr)
    return 0
