"""Export behaviour beyond the examples: the API, .onnx import, exporter fallback, bad input.

Every bad input must give a one-paragraph error naming the stage, the thing and the fix, exit
code 2 on the command line, and leave nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import polyonnx
from polyonnx.cli import main as cli
from polyonnx.errors import VerificationError

HERE = Path(__file__).resolve().parent
MODELS = HERE / "_models.py"
sys.path.insert(0, str(HERE))
import _models  # noqa: E402


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def _cli_error(capsys, argv) -> str:
    code = cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    return err


# -- the Python API ------------------------------------------------------------------------------
def test_api_with_example_tensors_and_torch_dynamic_axes(tmp_path):
    model = _models.TwoInputs().eval()
    ids = torch.randint(0, 50, (3, 5))
    mask = torch.ones(3, 5)
    bundle = polyonnx.export(model, {"ids": ids, "mask": mask}, tmp_path / "b",
                             dynamic_axes={"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}},
                             output_names=["scores", "hidden"], quantize="none", progress=False)
    assert [i["shape"] for i in bundle.inputs] == [["batch", "seq"], ["batch", "seq"]]
    # The example's min/max is only what verification drew from; the enforced domain is the
    # embedding table the graph indexes (issue #10: example values never become limits).
    vocab = model.embed.num_embeddings
    assert bundle.inputs[0]["verified_range"] == [int(ids.min()), int(ids.max())]
    assert bundle.inputs[0]["value_range"] == [0, vocab - 1]
    assert "Gather" in bundle.inputs[0]["value_range_origin"] and str(vocab) in bundle.inputs[0]["value_range_origin"]
    assert [o["shape"] for o in bundle.outputs] == [["batch", 5], ["batch", "seq", 8]]
    sess = ort.InferenceSession(str(bundle.path / "model.onnx"))
    ids2, mask2 = torch.randint(0, 50, (1, 9)), torch.rand(1, 9)
    got = sess.run(None, {"ids": ids2.numpy(), "mask": mask2.numpy()})
    with torch.inference_mode():
        ref = model(ids2, mask2)
    np.testing.assert_allclose(got[0], ref[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(got[1], ref[1].numpy(), atol=1e-5)


def test_api_tuple_examples_take_names_from_forward(tmp_path):
    bundle = polyonnx.export(_models.tiny_mlp(), (torch.randn(2, 4),), tmp_path / "b",
                             dynamic_axes={"x": {0: "batch"}}, quantize="none", progress=False)
    # Input names come from forward(), output names from the model's polyonnx_spec.
    assert bundle.inputs[0]["name"] == "x" and bundle.outputs[0]["name"] == "y"
    assert bundle.dims["batch"]["verified"] == [1, 2, 3, 5]


def test_model_declared_spec_needs_no_flags_and_cli_writes_a_table(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert cli(["export", f"{MODELS}:tiny_mlp", "-o", str(out), "-q", "--quantize", "dynamic"]) == 0
    table = capsys.readouterr().out
    assert "fp32" in table and "int8" in table and "batch" in table
    bundle = polyonnx.load(out)
    assert bundle.outputs[0]["class_axis"] == 1
    assert bundle.variants["int8"]["quantization"]["op_types"] == ["MatMul", "Gemm", "Gather"]


def test_legacy_exporter_is_rejected_for_the_transformer_it_specializes(tmp_path):
    from polyonnx.examples import text_transformer
    # Force the legacy exporter only: it bakes the example seq length into reshapes.
    with pytest.raises(VerificationError) as err:
        polyonnx.export(text_transformer(), None, tmp_path / "t", quantize="none", progress=False,
                        strategies=("legacy",))
    assert "seq" in str(err.value) or "legacy" in str(err.value)
    assert not (tmp_path / "t").exists()


def test_a_dim_fixed_inside_forward_fails_the_export_and_names_it(tmp_path, capsys):
    out = tmp_path / "fixed"
    err = _cli_error(capsys, ["export", f"{MODELS}:FixedBatch", "-o", str(out), "-q"])
    assert "batch" in err and "export" in err
    assert not out.exists() and not _leftovers(tmp_path)


# -- .onnx import ---------------------------------------------------------------------------------
def test_existing_onnx_file_is_imported_with_its_symbolic_dims(tmp_path):
    model = _models.tiny_mlp()
    src = tmp_path / "mlp.onnx"
    torch.onnx.export(model, (torch.randn(2, 4),), str(src), dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=18)
    bundle = polyonnx.export(src, None, tmp_path / "imported", quantize="dynamic", progress=False)
    assert bundle.manifest["export"]["source"] == "onnx"
    assert bundle.manifest["export"]["strategy"] == "onnx-import"
    assert bundle.inputs[0]["shape"] == ["n", 4] and bundle.outputs[0]["shape"] == ["n", 3]
    assert bundle.dims["n"]["verified"] == [1, 2, 3, 5]
    assert "int8" in bundle.variants and bundle.manifest["producer"]["torch"] is None
    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    got = ort.InferenceSession(str(bundle.path / "model.onnx")).run(None, {"x": x})[0]
    with torch.inference_mode():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_a_file_that_is_not_a_model_is_refused(tmp_path, capsys):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"this is not protobuf")
    err = _cli_error(capsys, ["export", str(bad), "-o", str(tmp_path / "out"), "-q"])
    assert "not a readable ONNX model" in err and "junk.onnx" in err
    assert not (tmp_path / "out").exists()


# -- int8 choices -----------------------------------------------------------------------------------
def test_pure_cnn_without_calibration_ships_no_int8_and_says_why(tmp_path):
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "cnn", quantize="dynamic", progress=False)
    assert list(bundle.variants) == ["fp32"]
    report = bundle.manifest["quantization_report"]
    assert report["chosen"] is None
    (cand,) = report["candidates"]
    assert cand["name"] == "dynamic-int8" and not cand["accepted"] and "--quantize static" in cand["reason"]
    assert any("fp32 only" in n for n in bundle.manifest["notes"])


@pytest.mark.parametrize("form", ["npz", "folder"])
def test_static_int8_from_calibration_file_or_folder(tmp_path, form):
    rng = np.random.default_rng(0)
    if form == "npz":
        calib = tmp_path / "calib.npz"
        np.savez(calib, image=rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
    else:
        calib = tmp_path / "calib"
        calib.mkdir()
        for i in range(3):
            np.savez(calib / f"{i}.npz", image=rng.standard_normal((4, 3, 16, 16)).astype(np.float32))
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "cnn", quantize="static",
                             calibration=calib, progress=False)
    q = bundle.variants["int8"]["quantization"]
    assert q["method"] == "static" and q["format"] == "QDQ"
    assert q["calibration_samples"] == (16 if form == "npz" else 12)
    assert "web" in bundle.variants["int8"]["runtimes"]  # QDQ, no ConvInteger


def test_calibration_with_wrong_names_or_shapes_is_refused(tmp_path, capsys):
    wrong_name = tmp_path / "a.npz"
    np.savez(wrong_name, pixels=np.zeros((2, 3, 16, 16), np.float32))
    err = _cli_error(capsys, ["export", f"{MODELS}:PureCNN", "-o", str(tmp_path / "o"), "-q",
                              "--quantize", "static", "--calibration", str(wrong_name)])
    assert "calibration" in err and "pixels" in err and "image" in err
    wrong_shape = tmp_path / "b.npz"
    np.savez(wrong_shape, image=np.zeros((2, 3, 8, 8), np.float32))
    err = _cli_error(capsys, ["export", f"{MODELS}:PureCNN", "-o", str(tmp_path / "o"), "-q",
                              "--quantize", "static", "--calibration", str(wrong_shape)])
    assert "[2, 3, 8, 8]" in err
    assert not (tmp_path / "o").exists() and not _leftovers(tmp_path)


def test_static_without_any_calibration_data_is_refused(tmp_path, capsys):
    err = _cli_error(capsys, ["export", f"{MODELS}:PureCNN", "-o", str(tmp_path / "o"), "-q", "--quantize", "static"])
    assert "--calibration" in err


# -- bad input on the command line ------------------------------------------------------------------
@pytest.mark.parametrize("argv, expect", [
    (["no_such_module_xyz:Model"], "module 'no_such_module_xyz' not found"),
    ([f"{MODELS}:DoesNotExist"], "has no attribute 'DoesNotExist'"),
    ([f"{MODELS}:not_a_model"], "not an nn.Module"),
    ([f"{MODELS}:NoSpec"], "--input"),
    ([f"{MODELS}:NoSpec", "--input", "x:float32(batch,4)"], "cannot read input spec"),
    ([f"{MODELS}:NoSpec", "--input", "x:float99[batch,4]"], "unknown dtype 'float99'"),
    ([f"{MODELS}:NoSpec", "--input", "x:float32[batch,5]"], "the model itself fails"),
    ([f"{MODELS}:NoSpec", "--input", "x:float32[batch,4]", "--dim", "batch=1"], "would be specialized"),
    ([f"{MODELS}:NoSpec", "--input", "x:float32[batch,4]", "--dim", "seq=4"], "names no dynamic dim"),
    (["trained_weights.pt"], "--allow-pickle"),
    (["just_a_word"], "cannot tell where model"),
])
def test_bad_input_gives_a_clear_error_and_exit_code_2(tmp_path, capsys, argv, expect):
    out = tmp_path / "out"
    err = _cli_error(capsys, ["export", *argv, "-o", str(out), "-q"])
    assert expect in err
    assert err.startswith("error: export")
    assert " -- " in err  # every error says what to do next
    assert not out.exists() and not _leftovers(tmp_path)


def test_existing_output_folder_needs_force_and_a_failed_export_keeps_the_old_bundle(tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["export", f"{MODELS}:tiny_mlp", "-o", str(out), "-q", "--quantize", "none"]) == 0
    before = (out / "polyonnx.json").read_text()
    err = _cli_error(capsys, ["export", f"{MODELS}:tiny_mlp", "-o", str(out), "-q"])
    assert "already exists" in err and "--force" in err
    # A failing export with --force leaves the previous bundle exactly as it was.
    err = _cli_error(capsys, ["export", f"{MODELS}:FixedBatch", "-o", str(out), "-q", "--force"])
    assert (out / "polyonnx.json").read_text() == before
    assert polyonnx.load(out).variants["fp32"]
    assert not _leftovers(tmp_path)


def test_cli_subprocess_exit_code_is_2_on_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "polyonnx", "export", "nope_module:X", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == "" and "error: export (model)" in proc.stderr


def test_load_refuses_a_tampered_model_file(tmp_path):
    from polyonnx.errors import IntegrityError

    bundle = polyonnx.export(_models.tiny_mlp(), None, tmp_path / "b", quantize="none", progress=False)
    path = bundle.path / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        polyonnx.load(tmp_path / "b").model_path("fp32")
    assert "sha256" in str(err.value)


def test_extended_optimization_is_verified_and_runs_in_node(tmp_path):
    from polyonnx.examples import text_transformer

    model = text_transformer()
    bundle = polyonnx.export(model, None, tmp_path / "x", optimize="extended", quantize="none", progress=False)
    fp32 = bundle.variants["fp32"]
    assert fp32["optimization"] == "extended"
    assert fp32.get("domains") == ["com.microsoft"]  # fused ops such as SkipLayerNormalization
    assert {"node", "web"} <= set(fp32["runtimes"])
    assert fp32["verification"][0]["passed"]
    node = [c for c in bundle.manifest["parity"]["checks"] if c["runtime"] == "node"]
    assert node and all(c["passed"] for c in node)
    ids = np.random.default_rng(0).integers(0, 8000, (3, 21))
    got = ort.InferenceSession(str(bundle.path / "model.onnx")).run(None, {"input_ids": ids})[0]
    with torch.inference_mode():
        ref = model(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)


def test_a_range_for_an_input_an_imported_graph_lacks_is_refused_like_in_an_export(tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(tmp_path / "m.onnx"))
    with pytest.raises(polyonnx.PolyonnxError, match="--range names unknown input 'typo'"):
        polyonnx.export(str(tmp_path / "m.onnx"), out=tmp_path / "b", value_ranges={"typo": [0, 1]}, progress=False)
    assert not (tmp_path / "b").exists()
