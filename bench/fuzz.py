"""The long fuzz run (issue #11): the CI fuzz tests with POLYONNX_FUZZ_LONG=1, then one table.

    nice -n 10 .venv/bin/python bench/fuzz.py [--out bench/results/fuzz.json] [--timeout 3600]

Runs tests/python/test_fuzz.py (hypothesis: >= 10,000 manifests, also judged by js/bundle.js for
accept/reject disagreements, >= 10,000 frames, >= 2,000 python-runtime feeds) and
tests/js/fuzz.test.js (fast-check: >= 10,000 manifests, also judged by Python as bundles, frames and live-worker frames,
>= 2,000 feeds through model.run, 5,000 model headers, 2,000 server requests), each under a
wall-clock timeout, and prints the counts: cases, polyonnx errors by code, foreign exceptions,
hangs, aborts (a suite killed by a signal) and disagreements.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _suite(cmd: list[str], env: dict, timeout: int) -> dict:
    t0 = time.time()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        rc = done.returncode
        tail = (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        rc, tail = "timeout", str(e.stdout or "")[-3000:]
    return {"cmd": " ".join(cmd), "rc": rc, "seconds": round(time.time() - t0, 1), "tail": tail}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per suite")
    args = ap.parse_args(argv)
    reports = Path(tempfile.mkdtemp(prefix="polyonnx-fuzz-report-"))
    env = dict(os.environ, POLYONNX_FUZZ_LONG="1", POLYONNX_FUZZ_REPORT=str(reports))
    suites = {
        "python": _suite([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/python/test_fuzz.py"],
                         env, args.timeout),
        "js": _suite(["node", "--test", "--test-concurrency=1", "tests/js/fuzz.test.js"], env, args.timeout),
    }
    targets = [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]
    print(f"{'language':8} {'target':14} {'cases':>7} {'ok':>6} {'foreign':>7} {'hangs':>5}  codes")
    for t in targets:
        c = dict(t["counts"])
        ok, foreign, hangs = c.pop("ok", 0), c.pop("foreign", 0), c.pop("hangs", 0)
        codes = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        print(f"{t['language']:8} {t['target']:14} {t['cases']:>7} {ok:>6} {foreign:>7} {hangs:>5}  {codes}")
    manifests = next((t for t in targets if t["language"] == "python" and t["target"] == "manifests"), {})
    js_manifests = next((t for t in targets if t["language"] == "js" and t["target"] == "manifests"), {})
    totals = {
        "aborts": sum(1 for s in suites.values() if isinstance(s["rc"], int) and s["rc"] < 0),
        "suite_timeouts": sum(1 for s in suites.values() if s["rc"] == "timeout"),
        "foreign": sum(t["counts"].get("foreign", 0) for t in targets) + manifests.get("js_foreign", 0)
        + js_manifests.get("bundle_foreign", 0),
        "hangs": sum(t["counts"].get("hangs", 0) for t in targets),
        # Python's corpus judged by JS, and fast-check's corpus judged by Python.
        "disagreements": manifests.get("disagreements", 0) + js_manifests.get("disagreements", 0),
        "manifests_judged_by_both": manifests.get("js_cases", 0) + js_manifests.get("bundles_judged_by_both", 0),
    }
    print(f"suites: " + ", ".join(f"{k} rc={s['rc']} {s['seconds']} s" for k, s in suites.items()))
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"suites": suites, "targets": targets, "totals": totals,
                                          "load_average": os.getloadavg()}, indent=1) + "\n")
    failed = any(s["rc"] != 0 for s in suites.values())
    if failed:
        for k, s in suites.items():
            if s["rc"] != 0:
                print(f"--- {k} suite failed (rc {s['rc']}):\n{s['tail']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
