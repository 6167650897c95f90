"""A CI subset of bench/onnx_backend.py: ONNX backend test cases from the installed onnx wheel,
imported with the public API and run in the `python` and `node` runtimes, against each case's own
output_*.pb (onnx's backend-test tolerances: rtol 1e-3, atol 1e-7, NaN equals NaN).

Each case stands for a class of graphs polyonnx must take as ONNX Runtime takes them; the whole
data set runs with `python bench/onnx_backend.py` (docs/onnx-backend.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import polyonnx

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CASES = {
    # opset 6, IR 3, weights listed among the graph inputs (PyTorch 0.3's exporter)
    "pytorch-converted/test_Conv2d": "opset-6 graph with initializers among its inputs",
    # a model-zoo CNN at IR 3 / opset 9, weights from ConstantOfShape; 15 KB, runs at 1x3x224x224
    "light/light_squeezenet": "old-IR model-zoo CNN",
    # int64 indices into a 4-row table: random ids fail, the case's own ids do not
    "pytorch-converted/test_Embedding": "int64 index input",
    # an int64 shape tensor as input
    "simple/test_expand_shape_model1": "shape-tensor input",
    # BatchNormalization(6): ONNX Runtime 1.32 removed it, so the import upgrades the graph
    "pytorch-converted/test_BatchNorm2d_eval": "removed operator version (upgrade)",
    # Add(6) with broadcast=1 on float64 inputs: an upgrade that changes broadcasting semantics
    "pytorch-operator/test_operator_add_broadcast": "float64, two inputs, upgrade",
    # three inputs, three outputs, named by number
    "pytorch-operator/test_operator_symbolic_override_nested": "multi-input, multi-output",
    # Sqrt of negative numbers: NaN in the expected output
    "pytorch-operator/test_operator_sqrt": "NaN outputs",
    # SplitToSequence / SequenceLength inside, an int64 split-sizes input
    "simple/test_sequence_model8": "sequence ops inside the graph",
}
RTOL, ATOL = 1e-3, 1e-7


def _case(key: str) -> tuple[Path, dict, dict]:
    """Model path, inputs and expected outputs of test_data_set_0, by graph name."""
    family, name = key.split("/")
    if family == "light":
        path = DATA / family / f"{name}.onnx"
        model = onnx.load(str(path))
        weights = {t.name for t in model.graph.initializer}
        inputs = {}
        for vi in model.graph.input:
            if vi.name not in weights:
                # onnx's runner feeds `light` models arange(n)/n, dynamic dims at 1
                shape = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
                n = int(np.prod(shape))
                inputs[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        outputs = {o.name: numpy_helper.to_array(onnx.load_tensor(str(DATA / family / f"{name}_output_{i}.pb")))
                   for i, o in enumerate(model.graph.output)}
        return path, inputs, outputs
    path = DATA / family / name / "model.onnx"
    model = onnx.load(str(path))
    data = path.parent / "test_data_set_0"
    graph_inputs = [vi.name for vi in model.graph.input]  # input_i.pb is graph.input[i]
    inputs = {graph_inputs[i]: numpy_helper.to_array(onnx.load_tensor(str(data / f"input_{i}.pb")))
              for i in range(len(list(data.glob("input_*.pb"))))}
    outputs = {o.name: numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{i}.pb")))
               for i, o in enumerate(model.graph.output)}
    return path, inputs, outputs


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Each case exported once, on first use; a failed export fails every test of its case."""
    made = {}

    def get(key: str):
        if key not in made:
            path, inputs, _ = _case(key)
            out = tmp_path_factory.mktemp("backend") / key.replace("/", "_")
            # Other cases keep test_data_set_* beside model.onnx, which the import finds by itself;
            # `light` models have none, so theirs are given (the public feeds= keyword).
            given = {"feeds": [inputs]} if key.startswith("light/") else {}
            try:
                made[key] = polyonnx.export(str(path), out=out, quantize="none", progress=False, force=True, **given)
            except Exception as e:
                made[key] = e
        if isinstance(made[key], Exception):
            raise made[key]
        return made[key]

    return get


@pytest.mark.parametrize("runtime", ["python", "node"])
@pytest.mark.parametrize("key", list(CASES), ids=[k.split("/")[1] for k in CASES])
def test_imported_backend_case_matches_its_own_outputs(bundles, key, runtime):
    _, inputs, expected = _case(key)
    bundle = bundles(key)
    with polyonnx.runtime(runtime, bundle) as rt:
        got = rt.run(inputs)
    for name, want in expected.items():
        assert name in got, f"{key} ({CASES[key]}): output '{name}' missing in {runtime}"
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, (key, name)
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL, err_msg=f"{key} ({CASES[key]})")


def test_import_of_a_removed_operator_version_records_a_verified_upgrade(bundles):
    bundle = bundles("pytorch-converted/test_BatchNorm2d_eval")
    upgrade = bundle.manifest["export"].get("upgrade")
    assert upgrade is not None, "BatchNormalization(6) was imported without an upgrade record"
    assert upgrade["from_opset"] == 6 and upgrade["to_opset"] > 6
    assert upgrade["passed"] is True and upgrade["verified_against"] == "onnx.reference"
    assert "BatchNormalization(6)" in upgrade["reason"]
