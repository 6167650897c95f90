"""Small hand-built bundles for the runtime and wire tests (no torch, built in milliseconds).

- ``identity``: one Identity per dtype (every dtype the wire carries), dynamic dim ``n``:
  what goes in must come out bit for bit, in every runtime.
- ``mlp``: MatMul/Add/Relu/MatMul with a class axis, plus an int8 variant from
  onnxruntime.quantization.quantize_dynamic: enough to exercise fp32 and int8 parity.

The manifests are written by hand and validated against the schema, the way the exporter does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from polyonnx import manifest as _manifest

OPSET = 18
IR_VERSION = 9  # onnx 1.23 helpers default to IR 14; onnxruntime-node 1.30 loads up to 13

# dtype word -> onnx TensorProto name
ONNX_TYPES = {
    "float32": "FLOAT", "float64": "DOUBLE", "float16": "FLOAT16", "int8": "INT8", "uint8": "UINT8",
    "int16": "INT16", "uint16": "UINT16", "int32": "INT32", "uint32": "UINT32", "int64": "INT64",
    "uint64": "UINT64", "bool": "BOOL", "string": "STRING",
}


def _variant_entry(folder: Path, file: str, quantization: dict) -> dict:
    data = (folder / file).read_bytes()
    return {
        "file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "opset": OPSET,
        "ir_version": IR_VERSION, "optimization": "none", "quantization": quantization,
        "runtimes": ["python", "node", "web"],
    }


def write_manifest(folder: Path, name: str, inputs: list, outputs: list, dims: dict, variants: dict) -> Path:
    """variants: name -> (file, quantization dict); files must already be in ``folder``."""
    m = {
        "schema_version": 2, "name": name,
        "producer": {"polyonnx": "test", "onnx": "test", "onnxruntime": "test", "torch": None},
        "opset": OPSET, "ir_version": IR_VERSION, "inputs": inputs, "outputs": outputs, "dims": dims,
        "variants": {v: _variant_entry(folder, f, q) for v, (f, q) in variants.items()},
        "default_variant": next(iter(variants)),
        "export": {"source": "onnx", "strategy": "onnx-import", "attempts": [{"strategy": "onnx-import", "ok": True}]},
    }
    _manifest.validate(m)
    (folder / _manifest.MANIFEST_NAME).write_text(_manifest.to_json(m), encoding="utf-8")
    return folder


def _save(model, path: Path) -> None:
    import onnx

    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def identity_bundle(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    nodes, ins, outs, inputs, outputs = [], [], [], [], []
    for dtype, onnx_name in ONNX_TYPES.items():
        t = getattr(TensorProto, onnx_name)
        ins.append(helper.make_tensor_value_info(f"x_{dtype}", t, ["n", 3]))
        outs.append(helper.make_tensor_value_info(f"y_{dtype}", t, ["n", 3]))
        nodes.append(helper.make_node("Identity", [f"x_{dtype}"], [f"y_{dtype}"]))
        inputs.append({"name": f"x_{dtype}", "dtype": dtype, "shape": ["n", 3]})
        outputs.append({"name": f"y_{dtype}", "dtype": dtype, "shape": ["n", 3]})
    graph = helper.make_graph(nodes, "identity", ins, outs)
    _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), folder / "model.onnx")
    del onnx
    return write_manifest(folder, "identity", inputs, outputs, {"n": {"example": 2, "verified": [1, 2, 5]}},
                          {"fp32": ("model.onnx", {"method": "none"})})


def identity_feeds(n: int, seed: int = 0) -> dict:
    """One array per dtype, with the values that are easiest to get wrong (NaN, -0, int64 beyond 2**53)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for dtype in ONNX_TYPES:
        shape = (n, 3)
        if dtype == "string":
            a = np.array([f"s{i}-\u00e9\u6570" for i in range(n * 3)], dtype=object).reshape(shape)
        elif dtype == "bool":
            a = rng.random(shape) < 0.5
        elif dtype.startswith("float"):
            a = rng.standard_normal(shape).astype(dtype)
            a.flat[0] = np.nan
            if a.size > 1:
                a.flat[1] = -0.0
            if a.size > 2:
                a.flat[2] = np.inf
        else:
            info = np.iinfo(dtype)
            a = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
            a.flat[0] = info.max
            if a.size > 1:
                a.flat[1] = info.min
        feeds[f"x_{dtype}"] = a
    return feeds


def mlp_bundle(folder: Path, *, seed: int = 0) -> Path:
    """x:float32[batch,16] -> logits:float32[batch,10] (class axis 1), variants fp32 and int8."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 64)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(64).astype(np.float32) * 0.1, "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32) * 0.3, "w2")
    b2 = numpy_helper.from_array(rng.standard_normal(10).astype(np.float32) * 0.1, "b2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [w1, b1, w2, b2])
    _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), folder / "model.onnx")
    quantize_dynamic(str(folder / "model.onnx"), str(folder / "model.int8.onnx"), weight_type=QuantType.QInt8)
    # quantize_dynamic re-saves with onnx's default IR; pin it back so Node 1.30 loads it.
    q = onnx.load(str(folder / "model.int8.onnx"))
    q.ir_version = IR_VERSION
    onnx.save(q, str(folder / "model.int8.onnx"))
    return write_manifest(
        folder, "mlp", [{"name": "x", "dtype": "float32", "shape": ["batch", 16]}],
        [{"name": "logits", "dtype": "float32", "shape": ["batch", 10], "class_axis": 1}],
        {"batch": {"example": 2, "verified": [1, 2, 5]}},
        {"fp32": ("model.onnx", {"method": "none"}),
         "int8": ("model.int8.onnx", {"method": "dynamic", "weight_type": "int8"})},
    )
