"""`polyonnx view BUNDLE [--variant V]`: the variant's graph in Netron, served on 127.0.0.1.

The seed's "verify the exported file visually" step. Netron (``pip install 'polyonnx[view]'``) is
imported here only. The file is checked against its sha256 first, so what is shown is what ships.
"""

from __future__ import annotations

from .errors import PolyonnxError

INSTALL = "pip install 'polyonnx[view]'  (or: pip install netron)"


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("--variant", help="variant to show (default: the manifest's default_variant)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser, where there is one")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the URL")


def start(bundle, variant: str | None = None, *, port: int = 0, browse: bool = False) -> str:
    """Serve ``variant`` of ``bundle`` with Netron on 127.0.0.1 (a background thread); returns the URL."""
    from .bundle import Bundle

    try:
        import netron
    except ImportError:
        raise PolyonnxError("view", "Netron is not installed", INSTALL) from None
    bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    name = variant or bundle.default_variant
    path = bundle.model_path(name, check=True)  # raises naming the variants / the sha256 mismatch
    host, bound = netron.serve(str(path), address=("127.0.0.1", port), browse=browse)
    return f"http://{host}:{bound}/"


def run(args) -> int:
    import logging

    import netron

    # Netron logs "Serving ... at URL" itself at INFO; the URL is printed here once, in our words.
    logging.getLogger("netron").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING)
    url = start(args.bundle, args.variant, port=args.port, browse=args.open)
    print(url if args.quiet else f"polyonnx view: {url}  (Netron; Ctrl-C to stop)", flush=True)
    netron.wait()
    return 0
