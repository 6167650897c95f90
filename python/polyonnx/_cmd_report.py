"""`polyonnx report BUNDLE`: the quantization candidates' figures, as a table and an HTML page."""

from __future__ import annotations


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("-o", "--html", metavar="FILE",
                   help="where to write the self-contained HTML page (default BUNDLE/report.html is NOT used: "
                        "the bundle stays as exported; default ./<name>-report.html)")
    p.add_argument("--json", action="store_true",
                   help="print the candidates' figures as JSON on stdout (the HTML page is still written)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line on stderr naming the HTML page")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from .bundle import Bundle
    from .report import html_report, print_quantization, quantization_rows

    bundle = Bundle.load(args.bundle)
    target = Path(args.html or f"{bundle.name}-report.html")
    target.write_text(html_report(bundle), encoding="utf-8")
    if args.json:
        print(json.dumps({"bundle": bundle.name, "html": str(target),
                          "candidates": quantization_rows(bundle.manifest)}, indent=2))
    else:
        print_quantization(bundle)
    if not args.quiet:
        print(f"report: {target}", file=sys.stderr)
    return 0
