"""polyonnx's browser wrapper against raw onnxruntime-web, in one Chromium page (issue #14).

For each bundle variant, in one page of headless Chromium (js/demo/runner.html, cross-origin
isolated by the demo server, so wasm may use threads): ``load`` = polyonnx.load(url, {cache:
false}) against fetch + InferenceSession.create of the same model URL, and ``cached`` =
polyonnx.load(url) reading the model from its Cache API store (sha256 still checked); ``run`` = model.run(feeds) against
session.run(tensors) on the same typed arrays and session options. The page code is
bench/browser_wrapper.mjs. Times are performance.now() in the page.

The two sides alternate load by load and reading by reading, so a busy machine slows both alike;
a run reading is the mean of enough consecutive runs to span about 2 ms, because the page's
clock ticks in 5 us steps, a sixteenth of digits_cnn's run. Ratios are polyonnx over raw:
medians over all loads/readings, and the min-max of the ratio over neighbouring pairs (loads)
or blocks of consecutive reading pairs (runs). Targets: run <= 1.05x, load <= 1.2x.

    .venv/bin/python bench/browser_wrapper.py [BUNDLES_DIR] [--runs 200] [--loads 10] [--threads 2]
        [--json bench/results/browser_wrapper.json] [--markdown]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

from polyonnx import _browser  # noqa: E402
from polyonnx.bundle import Bundle  # noqa: E402
from polyonnx.feeds import make_feeds  # noqa: E402

RUN_TARGET, LOAD_TARGET = 1.05, 1.2
# Batch 1 at a typical size per example (as bench/browser_latency.py).
SIZES = {"digits_cnn": {"batch": 1}, "text_transformer": {"batch": 1, "seq": 128},
         "gru_tagger": {"batch": 1, "time": 32}}
PAGE = (Path(__file__).resolve().parent / "browser_wrapper.mjs").read_text(encoding="utf-8")


def _page_function() -> str:
    # The file is comments, then one arrow function: eval'd by the driver as `(source)(arg)`.
    return "\n".join(ln for ln in PAGE.splitlines() if not ln.startswith("//"))


def _wire(feeds: dict) -> dict:
    return {k: {"dtype": str(v.dtype) if v.dtype.kind != "b" else "bool", "shape": list(v.shape),
                "b64": base64.b64encode(v.tobytes()).decode()} for k, v in feeds.items()}


def _median(xs):
    return statistics.median(xs)


def measure(page, url: str, bundle: Bundle, variant: str, *, runs: int, loads: int, blocks: int, threads: int) -> dict:
    sizes = SIZES.get(bundle.name) or {d: int(spec["example"]) for d, spec in bundle.dims.items()}
    feeds = make_feeds(bundle.inputs, sizes, seed=0)
    per_block = max(1, runs // blocks)
    got = page.eval(_page_function(), {"url": url, "variant": variant, "feeds": _wire(feeds), "loads": loads,
                                       "blocks": blocks, "perBlock": per_block, "warmup": max(3, per_block // 4),
                                       "threads": threads})
    load_pairs = [p / r for p, r in zip(got["loads"]["polyonnx"], got["loads"]["raw"]) if r > 0]
    cached_pairs = [p / r for p, r in zip(got["loads"]["cached"], got["loads"]["raw"]) if r > 0]
    block_ratios = [_median(p) / _median(r) for p, r in zip(got["blocks"]["polyonnx"], got["blocks"]["raw"])]
    row = {
        "bundle": bundle.name, "variant": variant, "sizes": sizes, "bytes": bundle.variants[variant]["bytes"],
        "threads": got["threads"], "cross_origin_isolated": got["cross_origin_isolated"],
        "same_outputs": got["same_outputs"],
        "load_ms": {"polyonnx": _median(got["loads"]["polyonnx"]), "raw": _median(got["loads"]["raw"]),
                    "cached": _median(got["loads"]["cached"])},
        "run_ms": {"polyonnx": _median(got["times"]["polyonnx"]), "raw": _median(got["times"]["raw"])},
        "loads": loads, "runs": per_block * blocks * got["reps"], "runs_per_reading": got["reps"], "blocks": blocks,
    }
    row["load_ratio"] = row["load_ms"]["polyonnx"] / row["load_ms"]["raw"]
    row["load_spread"] = [min(load_pairs), max(load_pairs)]
    row["cached_ratio"] = row["load_ms"]["cached"] / row["load_ms"]["raw"]
    row["cached_spread"] = [min(cached_pairs), max(cached_pairs)]
    row["run_ratio"] = row["run_ms"]["polyonnx"] / row["run_ms"]["raw"]
    row["run_spread"] = [min(block_ratios), max(block_ratios)]
    row["load_within_target"] = row["load_ratio"] <= LOAD_TARGET
    row["run_within_target"] = row["run_ratio"] <= RUN_TARGET
    return row


def table(rows: list[dict], markdown: bool) -> str:
    heads = ["bundle", "variant", "MB", "load raw ms", "load polyonnx ms", "load ratio (min-max)",
             "cached load ms", "cached ratio (min-max)",
             "run raw ms", "run polyonnx ms", "run ratio (min-max)", "same outputs"]

    def fmt(r):
        return [r["bundle"], r["variant"], f"{r['bytes'] / 1e6:.1f}",
                f"{r['load_ms']['raw']:.1f}", f"{r['load_ms']['polyonnx']:.1f}",
                f"{r['load_ratio']:.2f} ({r['load_spread'][0]:.2f}-{r['load_spread'][1]:.2f})"
                + ("" if r["load_within_target"] else " > 1.2"),
                f"{r['load_ms']['cached']:.1f}",
                f"{r['cached_ratio']:.2f} ({r['cached_spread'][0]:.2f}-{r['cached_spread'][1]:.2f})",
                f"{r['run_ms']['raw']:.3f}", f"{r['run_ms']['polyonnx']:.3f}",
                f"{r['run_ratio']:.3f} ({r['run_spread'][0]:.2f}-{r['run_spread'][1]:.2f})"
                + ("" if r["run_within_target"] else " > 1.05"),
                "yes" if r["same_outputs"] else "NO"]

    body = [fmt(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in body])
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths)), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="?", default=os.environ.get("POLYONNX_EXAMPLE_BUNDLES",
                                                                 str(ROOT / "build" / "test-bundles")))
    ap.add_argument("--only", default="digits_cnn,text_transformer", help="comma-separated bundle names")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the rows as JSON here")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (docs/performance.md)")
    a = ap.parse_args()
    ok, why = _browser.browser_available()
    if not ok:
        print(f"browser_wrapper: {why}", file=sys.stderr)
        return 2
    server = _browser.shared_server()
    page = _browser.Page(server.url(f"/runner.html?threads={a.threads}"), wait="body[data-ready]", timeout=1200)
    rows = []
    try:
        for name in a.only.split(","):
            bundle = Bundle.load(Path(a.bundles) / name)
            url = server.add_bundle(bundle)
            for variant in bundle.variants:
                if "web" not in bundle.variants[variant].get("runtimes", []):
                    continue
                print(f"browser_wrapper: {name}/{variant}", file=sys.stderr)
                rows.append(measure(page, url, bundle, variant, runs=a.runs, loads=a.loads, blocks=a.blocks,
                                    threads=a.threads))
    finally:
        _browser.shutdown()
    print(table(rows, a.markdown))
    print(f"\ntargets: run <= {RUN_TARGET}x, load <= {LOAD_TARGET}x raw onnxruntime-web; "
          f"{rows[0]['threads'] if rows else '?'} wasm thread(s), load average {os.getloadavg()[0]:.1f}")
    if a.json:
        out = {"bench": "bench/browser_wrapper.py", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "loadavg_1m": os.getloadavg()[0], "settings": vars(a), "rows": rows}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
