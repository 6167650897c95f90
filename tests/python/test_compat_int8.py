"""onnxruntime-web has ConvInteger for uint8 weights but not int8 (shared-schemas/runtimes.json):
Python's runtimes_for and js/onnx-header.mjs read a graph's weight types the same way."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from polyonnx import _graph

ROOT = Path(__file__).resolve().parents[2]


def _conv_integer(weight_dtype) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), dtype=weight_dtype), "w")
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2, 3, 3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=9)


@pytest.mark.parametrize("dtype, web", [(np.uint8, True), (np.int8, False)])
def test_convinteger_loads_in_web_only_with_uint8_weights_in_both_languages(tmp_path, dtype, web):
    model = _conv_integer(dtype)
    runtimes, why = _graph.runtimes_for(model)
    assert ("web" in runtimes) == web and ("node" in runtimes)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    script = ("import('" + (ROOT / "js" / "onnx-header.mjs").as_uri() + "').then(({ readModelHeader }) => "
              "console.log(JSON.stringify(readModelHeader(require('fs').readFileSync(process.argv[1])))))")
    node = shutil.which("node")
    out = subprocess.run([node, "-e", script, str(path)], capture_output=True, text=True, check=True).stdout
    assert (json.loads(out)["int8WeightOps"] == ["ConvInteger"]) == (not web)
