"""`polyonnx demo BUNDLE`: the bundle in a browser page, served on 127.0.0.1 (onnxruntime-web)."""

from __future__ import annotations


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser, where there is one")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the URL (no variant list or browser notes); wins over --verbose")


def run(args) -> int:
    from ._demo import serve

    return serve(args.bundle, port=args.port, open_browser=args.open, quiet=args.quiet or not args.verbose,
                 terse=args.quiet)
