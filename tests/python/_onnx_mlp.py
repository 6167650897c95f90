"""A small ONNX MLP built with onnx.helper (no torch): weights large enough (>= 1 KB) to go to
external data, MatMuls that dynamic int8 quantization takes, a dynamic batch dim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IN, HIDDEN, OUT = 16, 64, 10


def write_mlp(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (IN, HIDDEN)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (HIDDEN, OUT)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, (OUT,)).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", IN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", OUT])], inits)
    # IR 10 pinned: onnx 1.23's helpers default to IR 14, which onnxruntime-node 1.30 refuses.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path
