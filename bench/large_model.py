"""A model over protobuf's 2 GB limit, end to end: build, export, load and run in Python and Node.

NOT part of CI: it writes about 3 x the model size to disk and needs a few times the model size
in memory. Run it niced, alone:

    nice -n 10 .venv/bin/python bench/large_model.py [--gb 2.2] [--out /tmp/polyonnx-large] [--json FILE]

The model is a wide MLP, x[batch, WIDTH] -> MatMul w1 -> Relu -> MatMul w2 -> Relu -> MatMul w3 ->
y[batch, 16], with w1 [WIDTH, hidden] and w2 [hidden, WIDTH] sized so that the whole passes --gb GB
while each stays under 2 GiB (onnxruntime-node refuses one initializer over 2 GiB given as bytes;
export then lists such a variant for python only). It is written straight to ONNX with its
weights in external data, generated chunk by chunk, so building it never holds the weights in
memory. Each step runs in its own process, so its time and peak RSS (the kernel's ru_maxrss for
that process, from wait4) are its own:

With `--source torch` the same MLP is an `nn.Module` (three bias-free `nn.Linear`, `torch_mlp`
below) that `polyonnx export` traces itself: the exporter must write the weights as external data
(torch.onnx's `external_data=True` above polyonnx._export.EXTERNAL_ABOVE), and there is no build step.

1. build    write big.onnx + big.onnx.data (this process)
2. export   `polyonnx export big.onnx --quantize none` (import, verification at several batch
            sizes, offline optimization, the Node check); RSS of the Python process, the Node
            worker it starts is a separate process and is measured in step 4's terms
3. python   open_runtime('python', bundle) (sha256 of every file, then the session) + 3 runs
4. node     load(bundle) from js/index.mjs on onnxruntime-node (files read, hashed, handed to
            ONNX Runtime as externalData) + 3 runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDTH, OUT = 4096, 16
CHUNK_ROWS = 512


def _hidden(gb: float) -> int:
    return int(gb * 1e9 / 4 / (2 * WIDTH)) + 1


def torch_mlp():
    """The wide MLP as a PyTorch module, for `polyonnx export bench/large_model.py:torch_mlp`
    (its size from POLYONNX_LARGE_GB)."""
    import torch

    hidden = _hidden(float(os.environ.get("POLYONNX_LARGE_GB", "2.2")))
    torch.manual_seed(0)
    with torch.no_grad():
        layers = [torch.nn.Linear(WIDTH, hidden, bias=False), torch.nn.ReLU(),
                  torch.nn.Linear(hidden, WIDTH, bias=False), torch.nn.ReLU(), torch.nn.Linear(WIDTH, OUT, bias=False)]
    return torch.nn.Sequential(*layers).eval()


def build(folder: Path, gb: float) -> dict:
    """Write the MLP with ``hidden`` chosen so that its weights pass ``gb`` GB."""
    import onnx
    from onnx import TensorProto, helper

    hidden = _hidden(gb)
    folder.mkdir(parents=True, exist_ok=True)
    model_path, data_path = folder / "big.onnx", folder / "big.onnx.data"
    rng = np.random.default_rng(0)
    inits, offset = [], 0
    with open(data_path, "wb") as f:
        for name, rows, cols in (("w1", WIDTH, hidden), ("w2", hidden, WIDTH), ("w3", WIDTH, OUT)):
            scale = np.float32(1.0 / np.sqrt(rows))  # a float64 scale would make the block float64
            start = offset
            for r in range(0, rows, CHUNK_ROWS):
                block = (rng.standard_normal((min(CHUNK_ROWS, rows - r), cols), dtype=np.float32) * scale)
                f.write(block.tobytes())
                offset += block.nbytes
            # The entries set_external_data would write, by hand: it insists on raw_data in memory.
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[rows, cols],
                            data_location=TensorProto.EXTERNAL)
            for key, value in (("location", data_path.name), ("offset", str(start)), ("length", str(offset - start))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            inits.append(t)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"]), helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("MatMul", ["r1", "w2"], ["h2"]), helper.make_node("Relu", ["h2"], ["r2"]),
             helper.make_node("MatMul", ["r2", "w3"], ["y"])]
    graph = helper.make_graph(nodes, "wide_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", OUT])], inits)
    # IR 10: onnxruntime-node 1.30 loads up to IR 13, onnx 1.23 would write 14.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.save_model(model, str(model_path))
    return {"hidden": hidden, "weights_bytes": offset, "model_bytes": model_path.stat().st_size}


# Runs a command and prints its own wall time and ru_maxrss (KiB on Linux) from wait4, so the
# number belongs to that process alone (RUSAGE_CHILDREN would be the max over every step).
_CHILD = r"""
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
sys.stdout.write(json.dumps({"seconds": time.perf_counter() - t0, "rss": ru.ru_maxrss * 1024,
                             "exit": os.waitstatus_to_exitcode(status), "stdout": out.decode()}))
"""

_PYTHON_RUN = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from polyonnx.runtimes import open_runtime
rt = open_runtime("python", sys.argv[1])
load = time.perf_counter() - t0
x = np.sin(np.arange(4 * int(sys.argv[2]))).astype(np.float32).reshape(4, -1)  # the Node step's input
runs = []
for _ in range(3):
    t = time.perf_counter(); y = rt.run({"x": x})["y"]; runs.append(time.perf_counter() - t)
print(json.dumps({"load_s": load, "run_s": runs, "y0": y[0].tolist()}))
"""

_NODE_RUN = r"""
const t0 = performance.now();
const { load } = await import(process.argv[1]);
const model = await load(process.argv[2]);
const loadS = (performance.now() - t0) / 1000;
const width = Number(process.argv[3]);
const x = Float32Array.from({ length: 4 * width }, (_, i) => Math.sin(i)); // the Python step's input
const runs = [];
let y;
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  ({ y } = await model.run({ x: { dtype: 'float32', dims: [4, width], data: x } }));
  runs.push((performance.now() - t) / 1000);
}
await model.dispose();
console.log(JSON.stringify({ load_s: loadS, run_s: runs, y0: Array.from(y.data.slice(0, y.dims[1])) }));
"""


def step(cmd: list[str], env=None) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, *cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"large_model: the step runner failed: {proc.stderr[-2000:]}")
    res = json.loads(proc.stdout)
    if res["exit"] != 0:
        raise SystemExit(f"large_model: {' '.join(cmd[:5])} ... exited {res['exit']}:\n{proc.stderr[-3000:]}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.2, help="weights size in GB (default 2.2: over protobuf's 2 GB)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/polyonnx-large"), help="scratch folder (removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--external-data", action="store_true",
                    help="pass --external-data to export (a small --gb then takes the large model's path)")
    ap.add_argument("--source", choices=["onnx", "torch"], default="onnx",
                    help="onnx: import a written .onnx (default); torch: trace the nn.Module (torch_mlp)")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args(argv)
    free = shutil.disk_usage(args.out.parent if args.out.parent.exists() else "/").free
    if free < 3.5 * args.gb * 1e9:
        raise SystemExit(f"large_model: {free / 1e9:.1f} GB free under {args.out.parent}; this run needs about "
                         f"{3.5 * args.gb:.1f} GB (the source, export's scratch copy and the bundle)")
    shutil.rmtree(args.out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = {"gb": args.gb, "source": args.source, "steps": {}}
    try:
        import resource

        bundle = args.out / "bundle"
        if args.source == "onnx":
            t0 = time.perf_counter()
            results["model"] = build(args.out, args.gb)
            results["steps"]["build"] = {"seconds": time.perf_counter() - t0,
                                         "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
            source = [str(args.out / "big.onnx")]
        else:
            args.out.mkdir(parents=True)
            hidden = _hidden(args.gb)
            results["model"] = {"hidden": hidden, "weights_bytes": 4 * (2 * WIDTH * hidden + WIDTH * OUT)}
            env["POLYONNX_LARGE_GB"] = str(args.gb)
            source = [f"{Path(__file__).resolve()}:torch_mlp", "--input", f"x:float32[batch,{WIDTH}]", "--dim", "batch=2",
                      "--output-names", "y"]
        res = step([sys.executable, "-m", "polyonnx", "export", *source, "-o", str(bundle),
                    "--quantize", "none", "--json", "-q"] + (["--external-data"] if args.external_data else []), env=env)
        manifest = json.loads(res["stdout"])
        results["steps"]["export"] = {"seconds": res["seconds"], "rss": res["rss"]}
        results["variant"] = {k: manifest["variants"]["fp32"].get(k) for k in ("file", "bytes", "external_data")}
        results["export_stages"] = manifest["export"].get("stages", [])
        results["notes"] = manifest.get("notes", [])
        res = step([sys.executable, "-c", _PYTHON_RUN, str(bundle), str(WIDTH)], env=env)
        results["steps"]["python"] = {"seconds": res["seconds"], "rss": res["rss"], **json.loads(res["stdout"])}
        node = shutil.which("node") or "node"
        res = step([node, "--input-type=module", "-e", _NODE_RUN, "--", (ROOT / "js" / "index.mjs").as_uri(),
                    str(bundle), str(WIDTH)], env=env)
        results["steps"]["node"] = {"seconds": res["seconds"], "rss": res["rss"], **json.loads(res["stdout"])}
    finally:
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)
    y_py, y_node = results["steps"]["python"]["y0"], results["steps"]["node"]["y0"]
    results["node_vs_python_max_abs_first_row"] = float(np.max(np.abs(np.subtract(y_py, y_node))))
    print(f"wide MLP: {results['model']['weights_bytes'] / 1e9:.2f} GB of weights (hidden {results['model']['hidden']})")
    print(f"{'step':8} {'seconds':>9} {'peak RSS':>10}  detail")
    for name, s in results["steps"].items():
        detail = ""
        if "load_s" in s:
            detail = f"load {s['load_s']:.1f} s, runs (batch 4) {', '.join(f'{r * 1000:.0f}' for r in s['run_s'])} ms"
        print(f"{name:8} {s['seconds']:9.1f} {s['rss'] / 2**30:8.2f} GiB  {detail}")
    print(f"node vs python, first outputs: max_abs {results['node_vs_python_max_abs_first_row']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
