"""polyonnx._upgrade: graphs whose operator versions ONNX Runtime removed are upgraded and verified.

References are the ONNX backend test data shipped in the installed onnx wheel (each case's own
output_*.pb) and onnx's reference evaluator, never numbers pasted from a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from polyonnx import _ort, _upgrade
from polyonnx.errors import VerificationError

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
# AveragePool(1) and PRelu(6): ONNX Runtime 1.32 implements neither version any more.
AVGPOOL = DATA / "pytorch-converted" / "test_AvgPool2d"
PRELU_PER_CHANNEL = DATA / "pytorch-converted" / "test_PReLU_2d_multiparam"


def _case(folder: Path) -> tuple[onnx.ModelProto, dict, dict]:
    """The case's model, its test_data_set_0 inputs and outputs, both by graph name."""
    model = onnx.load(str(folder / "model.onnx"))
    weights = {t.name for t in model.graph.initializer}
    inputs = [vi.name for vi in model.graph.input if vi.name not in weights]
    data = folder / "test_data_set_0"
    feeds = {inputs[i]: numpy_helper.to_array(onnx.load_tensor(str(data / f"input_{i}.pb")))
             for i in range(len(list(data.glob("input_*.pb"))))}
    outputs = {o.name: numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{i}.pb")))
               for i, o in enumerate(model.graph.output)}
    return model, feeds, outputs


def _run_in_ort(model: onnx.ModelProto, feeds: dict) -> dict:
    session = _ort.session(model.SerializeToString(), level="none", stage="test")
    return _ort.run(session, feeds, [o.name for o in model.graph.output], stage="test")


@pytest.mark.parametrize("folder", [AVGPOOL, PRELU_PER_CHANNEL], ids=lambda p: p.name)
def test_removed_operator_version_is_upgraded_and_matches_the_cases_own_outputs(folder):
    model, feeds, expected = _case(folder)
    assert _upgrade.load_error(model) is not None, "the case must be one ONNX Runtime refuses"

    upgraded, record = _upgrade.load_for_ort(model, [feeds])

    assert set(record) == {"from_opset", "to_opset", "reason", "verified_against", "max_abs", "passed"}
    assert record["passed"] is True and record["verified_against"] == "onnx.reference"
    assert record["from_opset"] == 6 and record["to_opset"] > 6
    assert record["reason"] == _upgrade.load_error(model)
    assert "\n" not in record["reason"] and len(record["reason"]) <= 300
    got = _run_in_ort(upgraded, feeds)
    for name, want in expected.items():
        np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-7)


def test_upgraded_graph_pins_an_ir_version_onnxruntime_node_loads():
    model, feeds, _ = _case(AVGPOOL)
    upgraded, record = _upgrade.load_for_ort(model, [feeds])
    opsets = [o for o in upgraded.opset_import if o.domain in ("", "ai.onnx")]
    assert opsets[0].version == record["to_opset"]
    assert helper.find_min_ir_version_for(opsets) <= upgraded.ir_version <= _upgrade.MAX_IR


def test_without_feed_sets_the_upgrade_is_verified_on_generated_feeds():
    model, _, _ = _case(AVGPOOL)
    upgraded, record = _upgrade.load_for_ort(model, [])
    assert record["passed"] is True
    assert _upgrade.load_error(upgraded) is None


def test_a_graph_onnxruntime_loads_is_returned_untouched():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)

    same, record = _upgrade.load_for_ort(model, [])

    assert same is model and record is None


def test_a_conversion_that_disagrees_with_the_reference_raises_verification_error(monkeypatch):
    model, feeds, _ = _case(AVGPOOL)
    real_convert = _upgrade.version_converter.convert_version

    def convert_then_break(m, target):
        # A converter bug stand-in: the converted graph averages, then doubles.
        out = real_convert(m, target)
        last = out.graph.output[0].name
        for node in out.graph.node:
            node.output[:] = [f"{o}_pre" if o == last else o for o in node.output]
        two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
        out.graph.initializer.append(two)
        out.graph.node.append(helper.make_node("Mul", [f"{last}_pre", "two"], [last]))
        return out

    monkeypatch.setattr(_upgrade.version_converter, "convert_version", convert_then_break)
    with pytest.raises(VerificationError) as err:
        _upgrade.load_for_ort(model, [feeds], stage="export (import)")
    assert err.value.stage == "export (import)"
    assert "opset 7" in err.value.message and "differs from onnx.reference" in err.value.message
    assert err.value.fix


def test_a_graph_no_target_opset_makes_loadable_raises_verification_error_saying_versions_are_not_the_cause():
    # An operator ONNX Runtime has never implemented: no upgrade can help, and the error says so.
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])
    node = helper.make_node("Gradient", ["x"], ["y"], domain="ai.onnx.preview.training", xs=["x"], y="x")
    graph = helper.make_graph([node], "grad", [x], [y])
    model = helper.make_model(graph, ir_version=7, opset_imports=[helper.make_opsetid("", 12),
                                                                   helper.make_opsetid("ai.onnx.preview.training", 1)])
    with pytest.raises(VerificationError) as err:
        _upgrade.load_for_ort(model, [{"x": np.ones(2, np.float32)}])
    assert "cannot load the graph (opset 12)" in err.value.message
    assert "no operator version is the cause" in err.value.message
    assert err.value.fix


def test_comparison_treats_nan_as_equal_and_integers_exactly():
    nan = np.array([np.nan, 1.0], np.float32)
    assert _upgrade.compare(nan, nan.copy()) == (0.0, None)
    assert _upgrade.compare(np.array([1, 2]), np.array([1, 3]))[1] is not None
    assert _upgrade.compare(np.ones(3, np.float32), np.ones(4, np.float32))[1].startswith("shape")


def test_an_import_checks_the_upgraded_graph_at_every_planned_size(tmp_path):
    import polyonnx

    # The backend case's opset-6 AveragePool, with its batch dim made symbolic: the import then
    # plans several batch sizes, and every one must be checked against the reference evaluator,
    # not only the feed set the conversion was chosen on.
    model = onnx.load(AVGPOOL / "model.onnx")
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model, tmp_path / "model.onnx")
    bundle = polyonnx.export(str(tmp_path / "model.onnx"), out=tmp_path / "b", quantize="none", verify=False,
                             progress=False)
    record = bundle.manifest["export"]["upgrade"]
    planned = bundle.dims["batch"]["verified"]
    assert record["from_opset"] == 6 and len(planned) > 1
    assert record["checked_sizes"] == len(planned), (record, planned)
    assert "unchecked" not in record


def test_a_conversion_wrong_at_a_planned_size_only_is_refused_by_the_plan_check():
    model, feeds, _ = _case(AVGPOOL)
    upgraded, record = _upgrade.load_for_ort(model, [feeds])
    # ONNX Runtime's outputs of the upgraded graph at two "planned" feed sets, the second spoiled:
    # what a conversion right on load_for_ort's feeds and wrong elsewhere would give.
    other = {k: v * 0.5 for k, v in feeds.items()}
    right = [_run_in_ort(upgraded, f) for f in (feeds, other)]
    wrong = [right[0], {k: v + 1.0 for k, v in right[1].items()}]
    ok = _upgrade.check_plan(model, right, [feeds, other], [{"n": 1}, {"n": 2}], record)
    assert ok["checked_sizes"] == 2 and ok["max_abs"] is not None
    with pytest.raises(VerificationError) as err:
        _upgrade.check_plan(model, wrong, [feeds, other], [{"n": 1}, {"n": 2}], record)
    assert "at sizes {'n': 2}" in err.value.message and "reference evaluator" in err.value.message
