"""scripts/gpu-check.sh: says so and exits 0 where there is no GPU; its table logic, run with
--simulate (the 'cuda' rows on the CPU provider), covers every example variant."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_gpu_the_script_says_so_and_exits_0(example_bundles):
    out = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), str(example_bundles)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    if shutil.which("nvidia-smi") is None:
        assert out.stdout.strip() == "gpu-check: no NVIDIA GPU here (nvidia-smi is not on PATH): nothing to check"


def test_simulated_run_has_a_cpu_and_a_cuda_row_per_example_variant(example_bundles):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), str(example_bundles),
                          "--simulate", "--runs", "2"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    rows = [line.split() for line in lines if not line.startswith(("gpu-check", "bundle", "-"))]
    want = set()
    for manifest_path in example_bundles.glob("*/polyonnx.json"):
        manifest = json.loads(manifest_path.read_text())
        want |= {(manifest["name"], v, p) for v in manifest["variants"] for p in ("cpu", "cuda")}
    assert {(r[0], r[1], r[2]) for r in rows} == want
    assert all(r[6] == "ok" for r in rows)
