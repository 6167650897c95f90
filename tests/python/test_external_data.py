"""ONNX external data (`polyonnx export --external-data`, #13 part 4), forced on a small model:
every ONNX variant (fp32 and int8) ships its weights in <file>.data, listed with size and sha256;
every runtime loads it from the bytes it hashed and gives ONNX Runtime Python's answers for the
self-contained source; a changed data file is refused everywhere. The edge variant, converted
before the weights move out, stays one self-contained file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from _onnx_mlp import IN, write_mlp
from polyonnx.bundle import Bundle, sha256_file
from polyonnx.compare import metrics, passes, tolerance
from polyonnx.errors import PolyonnxError
from polyonnx.runtimes import available, open_runtime

RUNTIMES = ["python", "node", "wasm", "browser"]


def open_uncached(runtime, path, variant):
    """Loads that read the files: the browser would otherwise serve an earlier good copy from its
    Cache API (keyed by sha256) without fetching the changed one."""
    options = {"session_options": {"cache": False}} if runtime == "browser" else {}
    return open_runtime(runtime, path, variant, **options)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_mlp(tmp_path_factory.mktemp("src") / "mlp.onnx")


@pytest.fixture(scope="module")
def bundle(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("ext") / "bundle"
    proc = subprocess.run([sys.executable, "-m", "polyonnx", "export", str(source), "-o", str(out), "--external-data",
                           "--edge", "--quantize", "dynamic", "--json", "-q"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["variants"].keys() == {"fp32", "int8", "ort"}
    return Bundle.load(out)


def test_every_onnx_variant_lists_its_data_file_with_size_and_sha256(bundle):
    for name, data_name in (("fp32", "model.onnx.data"), ("int8", "model.int8.onnx.data")):
        v = bundle.variants[name]
        data = bundle.path / data_name
        assert v["external_data"] == [{"file": data_name, "sha256": sha256_file(data), "bytes": data.stat().st_size}]
        model = bundle.path / v["file"]
        assert (v["sha256"], v["bytes"]) == (sha256_file(model), model.stat().st_size)
        # What the model names is exactly what the manifest lists.
        names = {e.value for t in onnx.load(str(model), load_external_data=False).graph.initializer
                 for e in t.external_data if e.key == "location"}
        assert names == {data_name}


def test_the_data_file_holds_the_source_weights(bundle, source):
    given = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(source)).graph.initializer}
    shipped = onnx.load(str(bundle.path / "model.onnx"), load_external_data=False)
    external = {t.name for t in shipped.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert {"w1", "w2"} <= external  # the weights of 1 KB or more moved out
    loaded = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(bundle.path / "model.onnx")).graph.initializer}
    for name in ("w1", "w2", "b1", "b2"):
        np.testing.assert_array_equal(loaded[name], given[name])


def test_the_edge_variant_stays_one_self_contained_file(bundle):
    v = bundle.variants["ort"]
    assert "external_data" not in v and v["converted_from"] == "fp32"
    blob = (bundle.path / v["file"]).read_bytes()
    assert blob[4:8] == b"ORTM" and v["bytes"] > sum(e["bytes"] for e in bundle.variants["fp32"]["external_data"])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("variant", ["fp32", "int8", "ort"])
def test_variant_gives_onnx_runtime_pythons_answers(bundle, source, runtime, variant):
    ok, why = available(runtime)
    assert ok, f"{runtime} is not available here: {why}"
    feeds = {"x": np.random.default_rng(7).normal(size=(3, IN)).astype(np.float32)}
    # fp32 and its edge copy against the self-contained source; int8 against ONNX Runtime Python
    # on the int8 file (its own reference across runtimes, as `polyonnx verify` does).
    ref_file = bundle.path / "model.int8.onnx" if variant == "int8" else source
    reference = ort.InferenceSession(str(ref_file), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with open_runtime(runtime, bundle, variant) as rt:
        got = rt.run(feeds)["y"]
    kind = "int8" if variant == "int8" else "fp32"
    m = metrics(got, reference)
    assert passes(m, tolerance(kind, runtime), reference), m


@pytest.mark.parametrize("variant,data_name", [("fp32", "model.onnx.data"), ("int8", "model.int8.onnx.data")])
def test_a_changed_data_file_is_refused_in_every_runtime(bundle, tmp_path, variant, data_name):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    data = bytearray((copy / data_name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: the size is unchanged
    (copy / data_name).write_bytes(bytes(data))
    refused = {}
    for runtime in RUNTIMES:
        ok, why = available(runtime)
        assert ok, f"{runtime} is not available here, so 'every runtime' cannot be checked: {why}"
        with pytest.raises(PolyonnxError) as err:
            open_uncached(runtime, copy, variant)
        refused[runtime] = err.value
        assert getattr(err.value, "code", None) == "E_INTEGRITY", (runtime, err.value)
        assert data_name in str(err.value) and "sha256" in str(err.value), (runtime, err.value)
    assert set(refused) == set(RUNTIMES)


def test_a_missing_data_file_is_refused_before_onnx_runtime_reads_the_model(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    (copy / "model.onnx.data").unlink()
    with pytest.raises(PolyonnxError, match="model.onnx.data") as err:
        open_runtime("python", copy, "fp32")
    assert err.value.code == "E_INTEGRITY"


def test_a_variant_with_an_initializer_over_2_gib_is_listed_for_python_only(tmp_path):
    """onnxruntime-node (from bytes) refuses one initializer over 2 GiB: such a variant's runtimes
    say so. The model names a 3 GB external tensor; only its header is read (no data file)."""
    from types import SimpleNamespace

    from onnx import TensorProto, helper

    from polyonnx._external import largest_initializer, limit_runtimes

    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[750_000_000, 1], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "model.onnx.data"), ("offset", "0"), ("length", str(3_000_000_000))):
        e = big.external_data.add()
        e.key, e.value = key, value
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [big])
    path = tmp_path / "model.onnx"
    onnx.save_model(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    assert largest_initializer(path) == ("w", 3_000_000_000)
    # The entry as ship_external leaves it: the external file listed.
    variant = SimpleNamespace(name="fp32", path=path, entry={
        "runtimes": ["python", "node", "web"], "external_data": [{"file": "model.onnx.data", "bytes": 3_000_000_000}]})
    ctx = SimpleNamespace(notes=[])
    limit_runtimes(variant, ctx)
    assert variant.entry["runtimes"] == ["python"]
    assert "'w'" in ctx.notes[0] and "2 GiB" in ctx.notes[0]
    # A self-contained file under 2 GiB cannot hold such a tensor: left as it is, without parsing it.
    small = SimpleNamespace(name="int8", path=tmp_path / "small.onnx", entry={"runtimes": ["python", "node", "web"]})
    small.path.write_bytes(b"not even a model: it is not read")
    limit_runtimes(small, ctx)
    assert small.entry["runtimes"] == ["python", "node", "web"] and len(ctx.notes) == 1
