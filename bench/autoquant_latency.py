"""Does `--quantize auto` measure latency as a user would see it? (issue #14)

auto times fp32 and every candidate inside the export, one ONNX Runtime session alive at a time
(autoquant.measure_latency). This exports an example with ``--quantize auto`` and then times fp32
and the chosen variant again, each **alone in a fresh process** (ONNX Runtime Python: one
session, ONNX Runtime's default level ALL, the same intra-op threads; Node: a fresh worker with
one onnxruntime-node session and its default options), on the same feeds (the latency sizes
auto recorded, ``make_feeds(..., seed=7)``), and prints auto's median beside the standalone
median (of ``--repeats`` fresh processes). A row whose ratio is outside 1 +- 0.10 is flagged.

    .venv/bin/python bench/autoquant_latency.py [--example text_transformer] [--exports 2] [--runs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 0.10

# One variant in one runtime, alone in this (fresh) process: warm-up, then `runs` timed runs.
_ALONE = r"""
import json, statistics, sys, time
from pathlib import Path
a = json.loads(sys.argv[1])
from polyonnx.feeds import make_feeds
m = json.loads((Path(a["bundle"]) / "polyonnx.json").read_text())
feeds = make_feeds(m["inputs"], a["sizes"], seed=7)
if a["runtime"] == "python":
    from polyonnx import _ort
    sess = _ort.session(Path(a["bundle"]) / m["variants"][a["variant"]]["file"], threads=a["threads"], level="all")
    def runs(n):
        ms = []
        for _ in range(n):
            t0 = time.perf_counter(); sess.run(None, feeds); ms.append((time.perf_counter() - t0) * 1000.0)
        return ms
else:  # back to back in the worker, as auto measures
    from polyonnx.runtimes import open_runtime
    rt = open_runtime(a["runtime"], a["bundle"], variant=a["variant"], threads=a["threads"])
    def runs(n):
        rt.run(feeds, repeat=n); return list(rt.last_times_ms)
runs(a["warmup"])
print(json.dumps({"p50_ms": statistics.median(runs(a["runs"]))}))
"""


def _alone(bundle: Path, runtime: str, variant: str, sizes: dict, threads: int, runs: int) -> float:
    args = {"bundle": str(bundle), "runtime": runtime, "variant": variant, "sizes": sizes, "threads": threads,
            "warmup": 10, "runs": runs}
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    done = subprocess.run([sys.executable, "-c", _ALONE, json.dumps(args)], capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"standalone {runtime} {variant} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])["p50_ms"]


# auto's own measurement (autoquant.measure_latency) of fp32 and one variant of a bundle, as the
# export runs it: the same feeds, sizes, threads and blocks, in a fresh process.
_AUTO = r"""
import json, sys, tempfile
from pathlib import Path
from polyonnx import autoquant as aq
from polyonnx._progress import silent
a = json.loads(sys.argv[1])
b = Path(a["bundle"])
m = json.loads((b / "polyonnx.json").read_text())
q = m["quantization_report"]
job = aq.QuantJob(inputs=m["inputs"], output_specs=m["outputs"], dims=m["dims"],
                  example_dims={d: v["example"] for d, v in m["dims"].items() if not v.get("derived")},
                  plan_feeds=[], declared={"latency_dims": q["evaluation"]["latency_sizes"]}, torch_model=None,
                  fp32=m["variants"]["fp32"], basic_path=b / m["variants"]["fp32"]["file"],
                  tmp=Path(tempfile.mkdtemp()), notes=[])
cand = aq.Candidate(a["label"], a["variant"], path=b / m["variants"][a["variant"]]["file"])
cand.entry = {"cosine": 1.0}  # a contender, as the chosen candidate was
opts = aq.QuantOptions(mode="auto", runtimes=tuple(a["runtimes"]), threads=q["evaluation"]["threads"])
lat = aq.measure_latency(job, [cand], b / m["variants"]["fp32"]["file"], opts, silent())
print(json.dumps({"fp32": lat["fp32"], a["label"]: cand.entry.get("latency_ms", {})}))
"""


def _auto(bundle: Path, label: str, variant: str, runtimes: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    args = {"bundle": str(bundle), "label": label, "variant": variant, "runtimes": runtimes}
    done = subprocess.run([sys.executable, "-c", _AUTO, json.dumps(args)], capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"auto's measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def paired(bundle: Path, pairs: int, runs: int) -> list[dict]:
    """auto's measurement and standalone runs of the same files, alternated ``pairs`` times, so each
    pair is seconds apart (the machine's speed drifts over minutes): the method's bias, apart from drift."""
    m = json.loads((bundle / "polyonnx.json").read_text())
    q = m["quantization_report"]
    chosen = next(c for c in q["candidates"] if c.get("chosen"))
    variant = next(v for v in m["variants"] if v != "fp32")
    sizes, threads = q["evaluation"]["latency_sizes"], q["evaluation"]["threads"]
    runtimes = list(q["fp32"]["latency_ms"])
    rows = []
    for i in range(pairs):
        auto = _auto(bundle, chosen["name"], variant, runtimes)
        for label, v in (("fp32", "fp32"), (chosen["name"], variant)):
            for rt in runtimes:
                alone = _alone(bundle, rt, v, sizes, threads, runs)
                ratio = auto[label][rt] / alone
                rows.append({"pair": i + 1, "runtime": rt, "variant": label, "auto_ms": auto[label][rt],
                             "alone_ms": alone, "ratio": ratio, "ok": abs(ratio - 1) <= LIMIT})
                print(f"pair {i + 1}: {rt} {label}: auto {auto[label][rt]:.2f} ms, alone {alone:.2f} ms "
                      f"({ratio:.2f}x)", file=sys.stderr)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--example", default="text_transformer")
    ap.add_argument("--exports", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per standalone figure (median)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--paired", type=int, metavar="N", default=0,
                    help="after the exports, N pairs of auto's measurement (a fresh process running "
                         "autoquant.measure_latency on the last bundle's fp32 and chosen files) and standalone runs")
    args = ap.parse_args(argv)
    rows, loads = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="polyonnx-autoquant-latency-") as tmp:
        out = None
        for i in range(args.exports):
            out = Path(tmp) / f"bundle{i}"
            env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
            done = subprocess.run([sys.executable, "-m", "polyonnx", "export", f"polyonnx.examples:{args.example}",
                                   "-o", str(out), "--force", "--quantize", "auto", "-q"],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"export failed:\n{done.stderr[-3000:]}")
            m = json.loads((out / "polyonnx.json").read_text())
            q = m["quantization_report"]
            chosen = next((c for c in q["candidates"] if c.get("chosen")), None)
            sizes, threads = q["evaluation"]["latency_sizes"], q["evaluation"]["threads"]
            pairs = [("fp32", "fp32", q["fp32"].get("latency_ms", {}))]
            if chosen is not None:
                # The shipped variant is named after its kind (int8, int4, fp16).
                kind = next(v for v, e in m["variants"].items() if v != "fp32")
                pairs.append((chosen["name"], kind, chosen.get("latency_ms", {})))
            for label, variant, auto in pairs:
                for runtime, auto_ms in auto.items():
                    # Several fresh processes: one alone is itself a single draw from a machine whose
                    # speed drifts by more than 10% from minute to minute (2 shared vCPUs).
                    alones = [_alone(out, runtime, variant, sizes, threads, args.runs) for _ in range(args.repeats)]
                    alone = statistics.median(alones)
                    ratio = auto_ms / alone
                    rows.append({"export": i + 1, "runtime": runtime, "variant": label, "auto_ms": auto_ms,
                                 "alone_ms": alone, "alone_range": [min(alones), max(alones)], "ratio": ratio,
                                 "ok": abs(ratio - 1) <= LIMIT})
                    loads.append(os.getloadavg()[0])
                    print(f"export {i + 1}: {runtime} {label}: auto {auto_ms:.2f} ms, alone {alone:.2f} ms "
                          f"({ratio:.2f}x)", file=sys.stderr)
        pair_rows = paired(out, args.paired, args.runs) if args.paired and out is not None else []
    if pair_rows:
        print(f"\nauto's measurement vs standalone, {len({r['pair'] for r in pair_rows})} pairs, each pair "
              "seconds apart (one standalone process per row: --repeats applies to the per-export rows):")
        print("| pair | runtime | variant | auto p50 ms | alone p50 ms | auto / alone | within 10% |")
        print("|---|---|---|---|---|---|---|")
        for r in pair_rows:
            print(f"| {r['pair']} | {r['runtime']} | {r['variant']} | {r['auto_ms']:.2f} | {r['alone_ms']:.2f} | "
                  f"{r['ratio']:.2f} | {'yes' if r['ok'] else 'NO'} |")
        ratios = [r["ratio"] for r in pair_rows if r["variant"] != "fp32"]
        print(f"chosen variant: {sum(abs(x - 1) <= LIMIT for x in ratios)}/{len(ratios)} pairs within 10%, "
              f"median ratio {statistics.median(ratios):.2f}")
    print(f"\n{args.example}, --quantize auto, {args.exports} exports; standalone: median of {args.repeats} fresh "
          f"processes, one session each, {args.runs} runs (1-min load average {min(loads):.1f}-{max(loads):.1f}):")
    print("| export | runtime | variant | auto p50 ms | alone p50 ms (range) | auto / alone | within 10% |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["alone_range"]
        print(f"| {r['export']} | {r['runtime']} | {r['variant']} | {r['auto_ms']:.2f} | {r['alone_ms']:.2f} "
              f"({lo:.2f}-{hi:.2f}) | {r['ratio']:.2f} | {'yes' if r['ok'] else 'NO'} |")
    chosen_rows = [r for r in rows if r["variant"] != "fp32"]
    if chosen_rows:
        print(f"\nchosen variant within 10% of standalone: {sum(r['ok'] for r in chosen_rows)}/{len(chosen_rows)}; "
              f"median ratio {statistics.median(r['ratio'] for r in chosen_rows):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "paired": pair_rows, "load": [min(loads), max(loads)]},
                                              indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
