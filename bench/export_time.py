"""Export time: `polyonnx export` of an example against the raw dynamo exporter (issue #14).

Each run is a fresh Python process, so neither side profits from the other's imports or caches;
the sides alternate run by run, so load from elsewhere on the machine falls on both alike. Two
figures per run:

- ``process``: the whole command's wall time (interpreter start, imports, the model's
  construction, the export), what a user waits for;
- ``call``: the export alone, timed inside the process after ``import torch``: polyonnx's CLI
  code path (which also imports onnxruntime and builds the model), or ``torch.onnx.export(...)``
  on a model built before the clock starts.

The raw side is what a user would write by hand for the same module: ``torch.onnx.export`` with
``dynamo=True``, the example's dynamic dims as ``dynamic_shapes``, one self-contained file
(``external_data=False``), the same opset. polyonnx's per-stage seconds (manifest
``export.stages``) are printed from its median run.

    .venv/bin/python bench/export_time.py [--example text_transformer] [--runs 3] [--quantize auto] \
        [--before OLD_CHECKOUT] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# polyonnx's side: the CLI's own code path, timed around the export call inside the process.
_POLYONNX = r"""
import json, sys, time
import torch  # imported before the clock starts, as on the raw side
t0 = time.perf_counter()
from polyonnx.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"call": time.perf_counter() - t0, "rc": rc}), file=sys.stderr)
sys.exit(rc)
"""

# The raw side: the example's declared spec turned into torch.onnx.export's arguments by hand.
_RAW = r"""
import json, sys, time
import numpy as np
import torch
import polyonnx.examples
name, out, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = getattr(polyonnx.examples, name)()
spec = model.polyonnx_spec
args, shapes, names = [], [], []
for text in spec["inputs"]:
    iname, rest = text.split(":", 1)
    dtype, dims = rest.rstrip("]").split("[")
    shape, dyn = [], {}
    for axis, d in enumerate(dims.split(",")):
        d = d.strip()
        if d.isdigit():
            shape.append(int(d))
        else:
            shape.append(int(spec["dims"].get(d, 2)))
            dyn[axis] = d
    if dtype.startswith("int"):
        hi = spec.get("value_ranges", {}).get(iname, [0, 9])[1]
        args.append(torch.randint(0, hi + 1, shape, dtype=getattr(torch, dtype)))
    else:
        args.append(torch.randn(shape, dtype=getattr(torch, dtype)))
    shapes.append(dyn)
    names.append(iname)
t0 = time.perf_counter()
torch.onnx.export(model, tuple(args), out, dynamo=True, external_data=False, verbose=False,
                  input_names=names, output_names=list(spec.get("outputs") or ["output"]),
                  opset_version=opset, dynamic_shapes=tuple(shapes))
print(json.dumps({"call": time.perf_counter() - t0, "rc": 0}), file=sys.stderr)
"""


def _timed(cmd: list[str], source: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(source / "python"))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=source)
    wall = time.perf_counter() - t0
    last = [ln for ln in proc.stderr.splitlines() if ln.startswith('{"call"')]
    if proc.returncode != 0 or not last:
        raise SystemExit(f"export_time: {' '.join(cmd[:4])} ... failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"process": wall, "call": json.loads(last[-1])["call"], "stderr": proc.stderr}


def _load() -> float:
    return os.getloadavg()[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--example", default="text_transformer")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quantize", default="auto")
    ap.add_argument("--opset", type=int, default=20)
    ap.add_argument("--extra", default="", help="extra polyonnx export flags, space-separated")
    ap.add_argument("--source", type=Path, default=ROOT, help="the polyonnx checkout to run (default this one)")
    ap.add_argument("--before", type=Path, metavar="DIR",
                    help="another polyonnx checkout (e.g. an older commit's `git archive`, with node_modules "
                         "linked) timed in the same rotation, for a before/after under the same load")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    py = sys.executable
    sources = {"polyonnx": args.source.resolve()}
    if args.before:
        sources["before"] = args.before.resolve()
    sides = ["raw", *sources]
    runs = {side: [] for side in sides}
    loads = [_load()]
    with tempfile.TemporaryDirectory(prefix="polyonnx-export-time-") as tmp:
        for i in range(args.runs):
            # Rotate which side goes first, so a trend in the machine's load falls on every side.
            for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                if side == "raw":
                    r = _timed([py, "-c", _RAW, args.example, str(Path(tmp) / "raw.onnx"), str(args.opset)],
                               sources["polyonnx"])
                else:
                    out = Path(tmp) / "bundle"
                    r = _timed([py, "-c", _POLYONNX, "export", f"polyonnx.examples:{args.example}", "-o", str(out),
                                "--force", "--quantize", args.quantize, "--opset", str(args.opset)]
                               + args.extra.split(), sources[side])
                    manifest = json.loads((out / "polyonnx.json").read_text())
                    r["stages"] = manifest["export"].get("stages", [])
                    r["manifest_seconds"] = manifest["export"]["seconds"]
                    r["chosen"] = (manifest.get("quantization_report") or {}).get("chosen")
                r.pop("stderr")
                runs[side].append(r)
                loads.append(_load())
                print(f"run {i + 1} {side}: process {r['process']:.2f} s, call {r['call']:.2f} s"
                      + (f", chose {r['chosen']}" if side != "raw" else ""), file=sys.stderr)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("process", "call")} for side, rs in runs.items()}
    print(f"\n{args.example}, --quantize {args.quantize}, {args.runs} runs each, median "
          f"(1-min load average {min(loads):.1f}-{max(loads):.1f}):")
    print("| side | call s | process s | call / raw | process / raw | per run, call s |")
    print("|---|---|---|---|---|---|")
    for side in sides:
        per = ", ".join(f"{r['call']:.1f}" for r in runs[side])
        name = {"raw": "raw dynamo torch.onnx.export", "polyonnx": "polyonnx export",
                "before": f"polyonnx export ({sources.get('before')})"}[side]
        print(f"| {name} | {med[side]['call']:.2f} | {med[side]['process']:.2f} | "
              f"{med[side]['call'] / med['raw']['call']:.2f}x | {med[side]['process'] / med['raw']['process']:.2f}x | {per} |")
    for side in sources:
        by_call = sorted(runs[side], key=lambda r: r["call"])
        print(f"\n{side}: stages of its median run (manifest export.stages):")
        for s in by_call[len(by_call) // 2]["stages"]:
            print(f"  {s['seconds']:7.2f} s  {s['stage']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"example": args.example, "quantize": args.quantize, "runs": runs,
                                               "median": med, "load": [min(loads), max(loads)],
                                               "sources": {k: str(v) for k, v in sources.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
