"""`polyonnx info BUNDLE`: what a bundle holds, and what was checked."""

from __future__ import annotations


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="nothing on stderr (info writes only its answer, on stdout)")


def run(args) -> int:
    from .bundle import Bundle
    from .manifest import to_json
    from .report import print_bundle

    bundle = Bundle.load(args.bundle)
    if args.json:
        print(to_json(bundle.manifest), end="")
    else:
        print_bundle(bundle)
    return 0
