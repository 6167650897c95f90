"""The edge variant (`polyonnx export --edge`, #13 part 5): the default variant in ONNX Runtime's
ORT format with its required-operators configuration, listed and hashed in the manifest, and
giving ONNX Runtime Python's answers for the ONNX file in every runtime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from _onnx_mlp import IN, write_mlp
from polyonnx.bundle import Bundle, sha256_file
from polyonnx.compare import metrics, passes, tolerance
from polyonnx.errors import PolyonnxError
from polyonnx.runtimes import available, open_runtime

RUNTIMES = ["python", "node", "wasm", "browser"]


def open_uncached(runtime, path, variant):
    """The browser keeps files in the Cache API by their sha256 and would serve the good copy an
    earlier test loaded without fetching the changed file: these loads must read the files."""
    options = {"session_options": {"cache": False}} if runtime == "browser" else {}
    return open_runtime(runtime, path, variant, **options)


@pytest.fixture(scope="module")
def edge_bundle(tmp_path_factory):
    """Exported on the command line with --json: stdout must hold the manifest and nothing else
    (the converter prints its progress; it runs in a child process whose output is captured)."""
    tmp = tmp_path_factory.mktemp("edge")
    src = write_mlp(tmp / "mlp.onnx")
    out = tmp / "bundle"
    proc = subprocess.run([sys.executable, "-m", "polyonnx", "export", str(src), "-o", str(out), "--edge",
                           "--quantize", "dynamic", "--json", "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    return Bundle.load(out), printed


def test_export_json_prints_the_manifest_with_the_ort_variant(edge_bundle):
    bundle, printed = edge_bundle
    assert printed == bundle.manifest
    assert set(bundle.variants) == {"fp32", "int8", "ort"}


def test_ort_variant_is_listed_and_hashed_with_its_operators_config(edge_bundle):
    bundle, _ = edge_bundle
    v = bundle.variants["ort"]
    fp32 = bundle.variants["fp32"]
    assert (v["format"], v["file"], v["converted_from"]) == ("ort", "model.ort", "fp32")
    model, config = bundle.path / v["file"], bundle.path / v["operators_config"]["file"]
    assert config.name == "required_operators.config"
    assert (v["sha256"], v["bytes"]) == (sha256_file(model), model.stat().st_size)
    assert (v["operators_config"]["sha256"], v["operators_config"]["bytes"]) == (sha256_file(config), config.stat().st_size)
    assert (v["opset"], v["ir_version"], v["quantization"]) == (fp32["opset"], fp32["ir_version"], fp32["quantization"])
    assert "external_data" not in v
    # The bytes are the ORT format: its flatbuffer identifier, and ONNX Runtime loads them as such.
    assert model.read_bytes()[4:8] == b"ORTM"
    sess = ort.InferenceSession(model.read_bytes(), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [i["name"] for i in bundle.inputs]


def test_operators_config_lists_the_ops_of_the_graph_it_was_converted_from(edge_bundle):
    bundle, _ = edge_bundle
    text = (bundle.path / "required_operators.config").read_text()
    listed = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            domain, _opset, ops = line.split(";")
            listed.update((domain, op) for op in ops.split(","))
    graph = onnx.load(str(bundle.path / "model.onnx")).graph
    assert listed == {(n.domain or "ai.onnx", n.op_type) for n in graph.node}
    assert str(bundle.path.parent) not in text  # no scratch paths in a shipped file


def test_export_verified_the_ort_variant_against_fp32(edge_bundle):
    bundle, _ = edge_bundle
    checks = bundle.variants["ort"]["verification"]
    assert [c["reference"] for c in checks] == ["python:fp32"] and all(c["passed"] for c in checks)
    node = [c for c in bundle.manifest.get("parity", {}).get("checks", []) if c["variant"] == "ort"]
    assert available("node")[0], "node is not available here: the export's Node check cannot be checked"
    assert node and all(c["passed"] for c in node)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ort_variant_gives_onnx_runtime_pythons_answers_for_the_onnx_file(edge_bundle, runtime):
    ok, why = available(runtime)
    assert ok, f"{runtime} is not available here: {why}"
    bundle, _ = edge_bundle
    feeds = {"x": np.random.default_rng(3).normal(size=(5, IN)).astype(np.float32)}
    reference = ort.InferenceSession(str(bundle.path / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with open_runtime(runtime, bundle, "ort") as rt:
        got = rt.run(feeds)["y"]
    m = metrics(got, reference)
    assert passes(m, tolerance("fp32", runtime), reference), m


def test_a_changed_ort_file_is_refused_in_every_runtime(edge_bundle, tmp_path):
    bundle, _ = edge_bundle
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    data = bytearray((copy / "model.ort").read_bytes())
    data[-9] ^= 0xFF
    (copy / "model.ort").write_bytes(bytes(data))
    for runtime in RUNTIMES:
        ok, why = available(runtime)
        assert ok, f"{runtime} is not available here, so 'every runtime' cannot be checked: {why}"
        with pytest.raises(PolyonnxError) as err:
            open_uncached(runtime, copy, "ort")
        assert getattr(err.value, "code", None) == "E_INTEGRITY", (runtime, err.value)


def test_edge_refuses_a_model_over_the_ort_formats_2_gb():
    from polyonnx._edge import check_fits

    entry = {"bytes": 40_000, "external_data": [{"file": "model.onnx.data", "sha256": "0" * 64, "bytes": 3 * 2**30}]}
    with pytest.raises(PolyonnxError, match="holds at most 2 GB") as err:
        check_fits(entry, "fp32")
    assert "without --edge" in err.value.fix


def test_triton_leaves_the_ort_variant_out_and_refuses_it_by_name(edge_bundle):
    from polyonnx._triton import TritonOptions, plan_repository

    bundle, _ = edge_bundle
    planned = plan_repository([bundle], TritonOptions())
    assert sorted(v for _, _, v in planned) == ["fp32", "int8"]
    with pytest.raises(PolyonnxError, match="ORT format"):
        plan_repository([bundle], TritonOptions(variants=("ort",)))
