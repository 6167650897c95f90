"""The raw tools, without polyonnx: what a user gets from torch.onnx.export + ONNX Runtime Python,
or from ONNX Runtime Python + onnxruntime-node on a shipped .onnx. The corpus table puts this
beside polyonnx's result, so a polyonnx refusal that the raw tools do not share stands out.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

# One Node process per model: load the graph with onnxruntime-node, run every feed set, print one
# JSON line per run. Feeds and outputs travel as base64 little-endian bytes.
NODE_SCRIPT = r"""
const ort = require(process.argv[2] === 'web' ? 'onnxruntime-web' : 'onnxruntime-node');
if (process.argv[2] === 'web') ort.env.wasm.numThreads = 1;
const ARRAYS = {float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
                uint8: Uint8Array, int8: Int8Array, bool: Uint8Array};
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  let session;
  try { session = await ort.InferenceSession.create(job.model); }
  catch (e) { console.log(JSON.stringify({error: 'load: ' + e.message})); return; }
  for (const run of job.runs) {
    try {
      const feeds = {};
      for (const [name, t] of Object.entries(run)) {
        const bytes = new Uint8Array(Buffer.from(t.b64, 'base64'));
        const data = new ARRAYS[t.dtype](bytes.buffer, 0, bytes.byteLength / ARRAYS[t.dtype].BYTES_PER_ELEMENT);
        feeds[name] = new ort.Tensor(t.dtype, data, t.shape);
      }
      const out = await session.run(feeds);
      const res = {};
      for (const [name, t] of Object.entries(out)) {
        const d = t.data;
        res[name] = {dtype: t.type, shape: t.dims,
                     b64: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64')};
      }
      console.log(JSON.stringify({outputs: res}));
    } catch (e) { console.log(JSON.stringify({error: e.message})); }
  }
});
"""


def _encode(a: np.ndarray) -> dict:
    dtype = "bool" if a.dtype == np.bool_ else str(a.dtype)
    return {"dtype": dtype, "shape": list(a.shape),
            "b64": base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()}


def _decode(t: dict) -> np.ndarray:
    dtype = np.bool_ if t["dtype"] == "bool" else np.dtype(t["dtype"])
    return np.frombuffer(base64.b64decode(t["b64"]), dtype=dtype).reshape(t["shape"])


def node_run(model: Path, feed_sets: list[dict], timeout: float = 300, backend: str = "node") -> list:
    """Run ``model`` in raw onnxruntime-node (``backend='node'``) or onnxruntime-web's wasm backend in
    Node (``'web'``) on each feed set: a list of outputs dicts or error strings."""
    with tempfile.NamedTemporaryFile("w", suffix=".cjs", delete=False) as f:
        f.write(NODE_SCRIPT)
        script = f.name
    try:
        env = dict(os.environ, NODE_PATH=str(REPO / "node_modules"))
        job = json.dumps({"model": str(model), "runs": [{k: _encode(v) for k, v in fs.items()} for fs in feed_sets]})
        proc = subprocess.run(["node", script, backend], input=job, capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        os.unlink(script)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 and len(lines) < len(feed_sets):
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        lines += [{"error": f"node died: {tail[0][:300]}"}] * (len(feed_sets) - len(lines))
    if lines and "error" in lines[0] and lines[0]["error"].startswith("load: "):
        return [lines[0]["error"]] * len(feed_sets)
    return [{k: _decode(v) for k, v in r["outputs"].items()} if "outputs" in r else r["error"] for r in lines]


INTEGER_KERNELS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear"}


def kind_of(model: Path) -> str:
    """'int8' when the graph computes with integer kernels (their wasm and native results differ), else 'fp32'."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return "int8" if any(n.op_type in INTEGER_KERNELS for n in graph.node) else "fp32"


def ort_session(model: Path, level: str = "all"):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def ort_run(session, feeds: dict) -> dict:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def torch_export(model, example: dict, dynamic: dict, output_names: list[str], path: Path) -> str:
    """torch.onnx.export as a user writes it in torch 2.13: the default (dynamo) exporter with named
    dims; when that raises, what its error suggests, the TorchScript exporter (``dynamo=False``).
    Returns the exporter that wrote ``path``."""
    import torch

    kwargs = {k: torch.from_numpy(v) for k, v in example.items()}
    try:
        torch.onnx.export(model, (), str(path), kwargs=kwargs, input_names=list(example), output_names=output_names,
                          dynamic_shapes=dynamic or None, external_data=False, verbose=False)
        return "dynamo"
    except Exception as first:
        try:
            torch.onnx.export(model, tuple(kwargs.values()), str(path), input_names=list(example),
                              output_names=output_names, dynamic_axes={**dynamic}, dynamo=False)
        except Exception:
            raise first from None
        return "legacy"


def torch_run(model, feeds: dict, output_names: list[str]) -> dict:
    import torch

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    out = out if isinstance(out, (tuple, list)) else (out,)
    return {n: o.detach().numpy() for n, o in zip(output_names, out)}
