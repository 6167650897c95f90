"""Every example bundle on CUDA (and TensorRT when present) against CPU, in ONNX Runtime Python.

Run through scripts/gpu-check.sh, which finds a GPU and a Python whose onnxruntime has the CUDA
provider first. Needs only onnxruntime(-gpu) and numpy, so it runs in a bare GPU venv: it reads
polyonnx.json and shared-schemas/tolerances.json directly instead of importing polyonnx.

    python scripts/gpu_check.py BUNDLES_DIR [--runs 50]

Prints one table (per bundle x variant x provider: the worst output's max |diff| and cosine
against CPU, pass/fail, p50 latency and its ratio to CPU); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
# tolerances.json has no GPU entry yet; CUDA runs other kernels than the CPU reference (TF32
# matmuls on Ampere and later), which is what the `wasm` entry of each variant kind is for.
TOLERANCE_RUNTIME = "wasm"
KIND = {"none": "fp32", "dynamic": "int8", "static": "int8", "fp16": "fp16"}
PROVIDERS = {
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def feeds_for(manifest: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs at each dim's example size, inside every value_range (integers) or [0, 1) (floats)."""
    rng = np.random.default_rng(seed)
    sizes = {name: d["example"] for name, d in manifest["dims"].items()}
    feeds = {}
    for spec in manifest["inputs"]:
        shape = [sizes[d] if isinstance(d, str) else d for d in spec["shape"]]
        dtype = np.dtype(object if spec["dtype"] == "string" else spec["dtype"])
        if dtype == np.bool_:
            feeds[spec["name"]] = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            lo, hi = spec.get("value_range", [0, 9])
            feeds[spec["name"]] = rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
        elif dtype.kind == "f":
            lo, hi = spec.get("value_range", [0.0, 1.0])
            feeds[spec["name"]] = (lo + (hi - lo) * rng.random(shape)).astype(dtype)
        else:
            raise SystemExit(f"gpu-check: input '{spec['name']}' is {spec['dtype']}: no generated feeds for it")
    return feeds


def compare(got: np.ndarray, ref: np.ndarray, tol: dict, class_axis) -> tuple[float, float, bool]:
    """(max |diff|, cosine, passed) with tolerances.json's rule."""
    if ref.dtype.kind not in "fc":
        same = bool(np.array_equal(got, ref))
        return (0.0 if same else float("inf")), 1.0, same
    g, r = got.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    max_abs = float(np.max(np.abs(g - r))) if r.size else 0.0
    denom = float(np.linalg.norm(g) * np.linalg.norm(r))
    cosine = float(g @ r / denom) if denom else (1.0 if max_abs == 0 else 0.0)
    ok = cosine >= tol["min_cosine"]
    if tol.get("atol") is not None:
        ok = ok and max_abs <= tol["atol"] + tol["rtol"] * float(np.max(np.abs(r)))
    if class_axis is not None and ref.ndim:
        agree = float(np.mean(np.argmax(got, axis=class_axis) == np.argmax(ref, axis=class_axis)))
        ok = ok and agree >= tol["min_argmax_agreement"]
    return max_abs, cosine, ok


def p50_ms(session, feeds, runs: int) -> float:
    for _ in range(3):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def check_bundle(folder: Path, tolerances: dict, providers: list[str], runs: int) -> list[dict]:
    manifest = json.loads((folder / "polyonnx.json").read_text())
    feeds = feeds_for(manifest)
    names = [o["name"] for o in manifest["outputs"]]
    axes = {o["name"]: o.get("class_axis") for o in manifest["outputs"]}
    sizes = ",".join(f"{d}={v['example']}" for d, v in manifest["dims"].items())
    rows = []
    for variant, v in manifest["variants"].items():
        kind = KIND[v["quantization"]["method"]]
        tol = tolerances[kind][TOLERANCE_RUNTIME]
        path = str(folder / v["file"])
        cpu = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        ref = dict(zip(names, cpu.run(names, feeds)))
        cpu_ms = p50_ms(cpu, feeds, runs)
        rows.append({"bundle": manifest["name"], "variant": variant, "provider": "cpu", "sizes": sizes,
                     "max_abs": 0.0, "cosine": 1.0, "passed": True, "p50_ms": cpu_ms, "speedup": 1.0})
        for name in providers:
            row = {"bundle": manifest["name"], "variant": variant, "provider": name, "sizes": sizes}
            try:
                session = ort.InferenceSession(path, providers=PROVIDERS[name])
            except Exception as e:  # noqa: BLE001 - a provider that cannot start is a result
                rows.append({**row, "passed": False, "error": f"session: {str(e).splitlines()[0][:120]}"})
                continue
            # ORT falls back to CPU silently when a provider cannot start: say so instead of passing.
            if PROVIDERS[name][0] not in session.get_providers():
                rows.append({**row, "passed": False,
                             "error": f"{PROVIDERS[name][0]} did not start (running: {session.get_providers()})"})
                continue
            got = dict(zip(names, session.run(names, feeds)))
            worst_abs, worst_cos, ok = 0.0, 1.0, True
            for out in names:
                a, c, passed = compare(got[out], ref[out], tol, axes[out])
                worst_abs, worst_cos, ok = max(worst_abs, a), min(worst_cos, c), ok and passed
            ms = p50_ms(session, feeds, runs)
            rows.append({**row, "max_abs": worst_abs, "cosine": worst_cos, "passed": ok, "p50_ms": ms,
                         "speedup": cpu_ms / ms if ms else float("nan")})
    return rows


def print_table(rows: list[dict]) -> None:
    head = f"{'bundle':<18} {'variant':<8} {'provider':<9} {'sizes':<18} {'max|diff|':>10} {'cosine':>10} " \
           f"{'result':<6} {'p50 ms':>8} {'x cpu':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['bundle']:<18} {r['variant']:<8} {r['provider']:<9} {r['sizes']:<18} FAIL: {r['error']}")
            continue
        print(f"{r['bundle']:<18} {r['variant']:<8} {r['provider']:<9} {r['sizes']:<18} {r['max_abs']:>10.2e} "
              f"{r['cosine']:>10.7f} {'ok' if r['passed'] else 'FAIL':<6} {r['p50_ms']:>8.3f} {r['speedup']:>6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", type=Path)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per session (default 50)")
    parser.add_argument("--simulate", action="store_true",
                        help="run the 'cuda' rows on the CPU provider: exercises this script where no GPU is")
    args = parser.parse_args()
    available = ort.get_available_providers()
    if args.simulate:
        PROVIDERS["cuda"] = ["CPUExecutionProvider"]
        available = available + ["CUDAExecutionProvider"]
        print("gpu-check: --simulate: the 'cuda' rows run on the CPU provider")
    providers = [n for n in ("cuda", "tensorrt") if PROVIDERS[n][0] in available]
    if "cuda" not in providers:
        print(f"gpu-check: onnxruntime {ort.__version__} has no CUDAExecutionProvider (it has {available})")
        return 0
    folders = sorted(p.parent for p in args.bundles.glob("*/polyonnx.json"))
    if not folders:
        print(f"gpu-check: no bundles in {args.bundles} -- export them: .venv/bin/python tests/make_bundles.py "
              f"{args.bundles}", file=sys.stderr)
        return 2
    tolerances = json.loads((ROOT / "shared-schemas" / "tolerances.json").read_text())["checks"]
    print(f"gpu-check: onnxruntime {ort.__version__}, device {ort.get_device()}, providers {providers} vs cpu; "
          f"tolerance: tolerances.json <kind>.{TOLERANCE_RUNTIME}; {args.runs} timed runs, inputs at the example sizes")
    rows = []
    for folder in folders:
        rows += check_bundle(folder, tolerances, providers, args.runs)
    print_table(rows)
    failed = [r for r in rows if not r["passed"]]
    failing = f"; failing: {len(failed)}" if failed else ""
    print(f"gpu-check: {len(rows) - len(failed)} of {len(rows)} rows ok{failing}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
