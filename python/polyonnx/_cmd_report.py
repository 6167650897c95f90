"""`polyonnx report BUNDLE`: the quantization candidates' figures, as a table and an HTML page."""

from __future__ import annotations


def configure(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or its polyonnx.json")
    p.add_argument("-o", "--html", metavar="FILE",
                   help="where to write the self-contained HTML page (default BUNDLE/report.html is NOT used: "
                        "the bundle stays as exported; default ./<name>-report.html)")


def run(args) -> int:
    from pathlib import Path

    from .bundle import Bundle
    from .report import html_report, print_quantization

    bundle = Bundle.load(args.bundle)
    print_quantization(bundle)
    target = Path(args.html or f"{bundle.name}-report.html")
    target.write_text(html_report(bundle), encoding="utf-8")
    print(f"report: {target}")
    return 0
