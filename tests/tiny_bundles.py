"""Tiny hand-made bundles for the hostile-input tests: fuzzing, the bad-input catalogue and crash
containment (issue #11). Built with onnx.helper in well under a second, no torch.

    .venv/bin/python tests/tiny_bundles.py OUT        # writes OUT/embed and OUT/gru_abort

- ``embed``: ``ids`` int64 [batch, seq] looked up in a 10-row table (value_range [0, 9]) and
  ``x`` float32 [batch, n] with ``n`` a multiple of 4 in [4, 64]; outputs ``vec`` [batch, seq, 4]
  and ``y`` = relu(x). The constraints every runtime must enforce before ONNX Runtime runs.
- ``gru_abort``: a GRU over ``x`` float32 [batch, time] whose manifest (written by hand, as a
  careless or hostile exporter might) lets ``time`` be 0. ONNX Runtime aborts the process on a
  zero-length GRU sequence (``terminate called without an active exception``, measured on
  onnxruntime-node 1.30): a real native crash for the containment tests, reached through the
  public API with one request.

Graphs are pinned to IR 9 / opset 20: onnx 1.23's helper defaults to IR 14, which
onnxruntime-node 1.30 refuses (shared/MEASURED.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

OPSET = 20
IR_VERSION = 9


def _save(model, path: Path) -> dict:
    import onnx

    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    data = path.read_bytes()
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _manifest(name: str, inputs: list, outputs: list, dims: dict, entry: dict) -> dict:
    variant = dict(entry, opset=OPSET, ir_version=IR_VERSION, optimization="none",
                   quantization={"method": "none"}, runtimes=["python", "node"])
    return {
        "schema_version": 2,
        "name": name,
        "producer": {"polyonnx": "0.1.0", "onnx": "1.23.2", "onnxruntime": "1.32.0"},
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "inputs": inputs,
        "outputs": outputs,
        "dims": dims,
        "variants": {"fp32": variant},
        "default_variant": "fp32",
        "export": {"source": "onnx", "strategy": "onnx-import", "attempts": [{"strategy": "onnx-import", "ok": True}]},
    }


def build_embed(out: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    out.mkdir(parents=True, exist_ok=True)
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["vec"], axis=0), helper.make_node("Relu", ["x"], ["y"])],
        "embed",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("vec", TensorProto.FLOAT, ["batch", "seq", 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"])],
        [numpy_helper.from_array(table, "table")],
    )
    entry = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), out / "model.onnx")
    manifest = _manifest(
        "embed",
        [{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"], "value_range": [0, 9],
          "value_range_origin": "graph"},
         {"name": "x", "dtype": "float32", "shape": ["batch", "n"]}],
        [{"name": "vec", "dtype": "float32", "shape": ["batch", "seq", 4]},
         {"name": "y", "dtype": "float32", "shape": ["batch", "n"]}],
        {"batch": {"example": 2, "verified": [1, 2], "min": 1, "max": 8},
         "seq": {"example": 3, "verified": [1, 3], "min": 1, "max": 32},
         "n": {"example": 8, "verified": [4, 8], "min": 4, "max": 64, "multiple_of": 4}},
        entry,
    )
    (out / "polyonnx.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def build_gru_abort(out: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    out.mkdir(parents=True, exist_ok=True)
    hidden = 3
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 3 * hidden, 1)).astype(np.float32)
    r = rng.standard_normal((1, 3 * hidden, hidden)).astype(np.float32)
    # x [batch, time] so that JSON can carry a zero-length time axis ({"x": [[]]} is dims [1, 0]),
    # transposed to the [time, batch, 1] a GRU reads (ORT's CPU GRU refuses layout=1).
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
         helper.make_node("Unsqueeze", ["xt", "axis"], ["x3"]),
         helper.make_node("GRU", ["x3", "W", "R"], ["", "h"], hidden_size=hidden)],
        "gru_abort",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time"])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, "batch", hidden])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "axis")],
    )
    entry = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), out / "model.onnx")
    manifest = _manifest(
        "gru_abort",
        [{"name": "x", "dtype": "float32", "shape": ["batch", "time"]}],
        [{"name": "h", "dtype": "float32", "shape": [1, "batch", hidden]}],
        # min 0 on time: what lets a zero-length sequence reach ONNX Runtime's GRU kernel.
        {"batch": {"example": 1, "verified": [1], "min": 1}, "time": {"example": 4, "verified": [1, 4], "min": 0}},
        entry,
    )
    (out / "polyonnx.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def build_all(out) -> dict[str, Path]:
    out = Path(out)
    return {"embed": build_embed(out / "embed"), "gru_abort": build_gru_abort(out / "gru_abort")}


if __name__ == "__main__":
    for name, path in build_all(sys.argv[1] if len(sys.argv) > 1 else "build/tiny-bundles").items():
        print(f"{name}: {path}")
