"""examples/server speaks the Open Inference Protocol (KServe v2): a client nobody here wrote,
`tritonclient.http.InferenceServerClient`, checks health and metadata and runs inference with
JSON and with binary tensors, and gets what ONNX Runtime Python computes on the same bundle.

The server runs as its own process on a free loopback port, as a user starts it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

th = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[grpc,http]' (the test extra)")
from tritonclient.utils import InferenceServerException, np_to_triton_dtype  # noqa: E402

from polyonnx import _node  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "server" / "server.js"
NODE_OK, NODE_WHY = _node.node_available(("node",))
TOL = json.loads((ROOT / "shared-schemas" / "tolerances.json").read_text())["checks"]["fp32"]["node"]
EXAMPLES = ("digits_cnn", "text_transformer", "gru_tagger")

pytestmark = pytest.mark.skipif(not NODE_OK, reason=NODE_WHY)


class Server:
    """`node examples/server/server.js BUNDLE --port 0 --workers 1`, stopped with SIGTERM."""

    def __init__(self, bundle: Path):
        node = _node.find_node().path
        self.proc = subprocess.Popen([node, str(SERVER), str(bundle), "--port", "0", "--workers", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        found = {}
        reader = threading.Thread(target=self._wait_for_port, args=(found,), daemon=True)
        reader.start()
        reader.join(30)
        if "url" not in found:
            self.proc.kill()
            raise RuntimeError(f"server did not start in 30 s: {self.proc.stderr.read()}")
        self.url = found["url"]
        self.host = self.url.removeprefix("http://")

    def _wait_for_port(self, found):
        for line in self.proc.stdout:
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                found["url"] = m.group(1)
                return

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def servers(example_bundles):
    started = {}
    try:
        for name in EXAMPLES:
            started[name] = Server(example_bundles / name)
        yield started
    finally:
        codes = {name: s.stop() for name, s in started.items()}
    assert codes == {name: 0 for name in EXAMPLES}, f"server exit codes {codes}"


def feeds_for(manifest: dict, seed: int = 7) -> dict[str, np.ndarray]:
    """Inputs at each dim's example size, inside every value_range (integers) or [0, 1) (floats)."""
    rng = np.random.default_rng(seed)
    sizes = {name: d["example"] for name, d in manifest["dims"].items()}
    feeds = {}
    for spec in manifest["inputs"]:
        shape = [sizes[d] if isinstance(d, str) else d for d in spec["shape"]]
        dtype = np.dtype(spec["dtype"])
        if dtype == np.bool_:
            feeds[spec["name"]] = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            lo, hi = spec.get("value_range", [0, 9])
            feeds[spec["name"]] = rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
        else:
            lo, hi = spec.get("value_range", [0.0, 1.0])
            feeds[spec["name"]] = (lo + (hi - lo) * rng.random(shape)).astype(dtype)
    return feeds


def reference(bundle: Path, feeds: dict) -> dict[str, np.ndarray]:
    """ONNX Runtime Python on the bundle's default variant: what the server must answer."""
    import onnxruntime as ort

    manifest = json.loads((bundle / "polyonnx.json").read_text())
    variant = manifest["variants"][manifest["default_variant"]]
    session = ort.InferenceSession(str(bundle / variant["file"]), providers=["CPUExecutionProvider"])
    names = [o["name"] for o in manifest["outputs"]]
    return dict(zip(names, session.run(names, feeds)))


def assert_same(got: np.ndarray, want: np.ndarray, what: str):
    if want.dtype == object:  # strings: tritonclient gives bytes (binary) or str (JSON)
        decoded = [g.decode() if isinstance(g, bytes) else g for g in got.ravel()]
        assert got.shape == want.shape and decoded == list(want.ravel()), f"{what}: {got} vs {want}"
        return
    assert (got.dtype, got.shape) == (want.dtype, want.shape), f"{what}: {got.dtype}{got.shape}, want {want.shape}"
    if want.dtype.kind == "f":
        bound = TOL["atol"] + TOL["rtol"] * float(np.max(np.abs(want)))
        assert float(np.max(np.abs(got - want))) <= bound, what
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def infer_inputs(feeds: dict, binary: bool):
    inputs = []
    for name, array in feeds.items():
        i = th.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        i.set_data_from_numpy(array, binary_data=binary)
        inputs.append(i)
    return inputs


def test_the_server_is_live_and_ready_and_so_is_its_model(servers):
    for name, server in servers.items():
        client = th.InferenceServerClient(server.host)
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(name)
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


def test_model_metadata_is_the_manifests_inputs_and_outputs(servers, example_bundles):
    for name, server in servers.items():
        manifest = json.loads((example_bundles / name / "polyonnx.json").read_text())
        meta = th.InferenceServerClient(server.host).get_model_metadata(name)
        assert meta["name"] == manifest["name"]
        for side in ("inputs", "outputs"):
            want = [{"name": s["name"], "datatype": np_to_triton_dtype(np.dtype(s["dtype"])),
                     "shape": [d if isinstance(d, int) else -1 for d in s["shape"]]} for s in manifest[side]]
            assert meta[side] == want


@pytest.mark.parametrize("binary_in,binary_out", [(True, True), (False, False), (True, False), (False, True)])
def test_infer_answers_what_onnx_runtime_python_computes(servers, example_bundles, binary_in, binary_out):
    for name, server in servers.items():
        bundle = example_bundles / name
        manifest = json.loads((bundle / "polyonnx.json").read_text())
        feeds = feeds_for(manifest)
        want = reference(bundle, feeds)
        outputs = [th.InferRequestedOutput(o, binary_data=binary_out) for o in want]
        result = th.InferenceServerClient(server.host).infer(name, infer_inputs(feeds, binary_in), outputs=outputs)
        for out, ref in want.items():
            assert_same(result.as_numpy(out), ref, f"{name}/{out} (binary in {binary_in}, out {binary_out})")


def test_without_requested_outputs_every_output_comes_back_binary(servers, example_bundles):
    server = servers["gru_tagger"]
    bundle = example_bundles / "gru_tagger"
    feeds = feeds_for(json.loads((bundle / "polyonnx.json").read_text()), seed=11)
    result = th.InferenceServerClient(server.host).infer("gru_tagger", infer_inputs(feeds, True), request_id="r-1")
    response = result.get_response()
    assert response["id"] == "r-1" and response["model_name"] == "gru_tagger"
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    for out, ref in reference(bundle, feeds).items():
        assert_same(result.as_numpy(out), ref, out)


def test_errors_are_json_strings_with_4xx_statuses(servers, example_bundles):
    server = servers["text_transformer"]
    client = th.InferenceServerClient(server.host)
    manifest = json.loads((example_bundles / "text_transformer" / "polyonnx.json").read_text())
    (spec,) = manifest["inputs"]
    hi = spec["value_range"][1]
    bad = np.array([[1, hi + 1]], dtype=np.int64)
    with pytest.raises(InferenceServerException) as err:
        client.infer("text_transformer", infer_inputs({spec["name"]: bad}, True))
    assert err.value.status() == "400"
    assert f"is outside its value_range [0, {hi}]" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        client.infer("text_transformer", infer_inputs({spec["name"]: bad.astype(np.int32)}, False))
    assert err.value.status() == "400" and "is INT32, but the model expects INT64" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("no_such_model")
    assert err.value.status() == "404" and "no model 'no_such_model'" in err.value.message()
    ok = np.array([[1, 2]], dtype=np.int64)
    with pytest.raises(InferenceServerException) as err:
        client.infer("text_transformer", infer_inputs({spec["name"]: ok}, True),
                     outputs=[th.InferRequestedOutput("nope")])
    assert err.value.status() == "400" and "nope" in err.value.message()


def raw_post(server, path, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(server.host, timeout=20)
    try:
        conn.request("POST", path, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


def test_binary_data_that_does_not_fit_its_shape_is_a_400(servers):
    server = servers["text_transformer"]
    header = json.dumps({"inputs": [{"name": "input_ids", "shape": [1, 4], "datatype": "INT64",
                                     "parameters": {"binary_data_size": 24}}]}).encode()
    status, _, body = raw_post(server, "/v2/models/text_transformer/infer", header + bytes(24),
                               {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400
    assert "has 24 bytes of INT64, but shape [1, 4] needs 32" in json.loads(body)["error"]
    status, _, body = raw_post(server, "/v2/models/text_transformer/infer", b'{"inputs": ', {})
    assert status == 400 and "not JSON" in json.loads(body)["error"]
    status, _, body = raw_post(server, "/v2/models/text_transformer/infer", b"\x1f\x8b", {"Content-Encoding": "gzip"})
    assert status == 415 and "send it uncompressed" in json.loads(body)["error"]


def test_nested_json_data_and_the_versioned_path_are_accepted(servers, example_bundles):
    server = servers["digits_cnn"]
    bundle = example_bundles / "digits_cnn"
    feeds = feeds_for(json.loads((bundle / "polyonnx.json").read_text()), seed=3)
    (name, array), = feeds.items()
    request = {"inputs": [{"name": name, "shape": list(array.shape), "datatype": "FP32", "data": array.tolist()}]}
    status, headers, body = raw_post(server, "/v2/models/digits_cnn/versions/1/infer", json.dumps(request).encode(),
                                     {"content-type": "application/json"})
    assert status == 200 and headers["content-type"] == "application/json"
    (out,) = json.loads(body)["outputs"]
    ref = reference(bundle, feeds)[out["name"]]
    assert out["shape"] == list(ref.shape)
    assert_same(np.array(out["data"], dtype=np.float32).reshape(out["shape"]), ref, out["name"])


def test_the_servers_own_json_api_still_answers(servers):
    server = servers["text_transformer"]
    status, _, body = raw_post(server, "/run", json.dumps({"feeds": {"input_ids": [[1, 2, 3]]}}).encode(),
                               {"content-type": "application/json"})
    assert status == 200 and len(json.loads(body)["outputs"]["logits"][0]) == 4


# -- several dtypes and outputs: a hand-built bundle (float32, int64, bool, string in and out) ----

@pytest.fixture(scope="module")
def three_outputs(tmp_path_factory):
    import onnx
    from onnx import TensorProto, helper

    def vi(name, elem, shape):
        return helper.make_tensor_value_info(name, elem, shape)

    nodes = [
        helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])),
        helper.make_node("Mul", ["x", "two"], ["y"]),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [], [1])),
        helper.make_node("Add", ["ids", "one"], ["n"]),
        helper.make_node("Not", ["flag"], ["f"]),
        helper.make_node("Identity", ["words"], ["echo"]),
    ]
    graph = helper.make_graph(
        nodes, "three",
        [vi("x", TensorProto.FLOAT, ["batch", 3]), vi("ids", TensorProto.INT64, ["batch"]),
         vi("flag", TensorProto.BOOL, ["batch"]), vi("words", TensorProto.STRING, ["batch"])],
        [vi("y", TensorProto.FLOAT, ["batch", 3]), vi("n", TensorProto.INT64, ["batch"]),
         vi("f", TensorProto.BOOL, ["batch"]), vi("echo", TensorProto.STRING, ["batch"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10  # onnx's default IR is newer than onnxruntime-node 1.30 loads
    folder = tmp_path_factory.mktemp("three") / "three_outputs"
    folder.mkdir()
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    spec = lambda n, t, s: {"name": n, "dtype": t, "shape": s}  # noqa: E731
    manifest = {
        "schema_version": 2, "name": "three_outputs",
        "producer": {"polyonnx": "0.1.0", "onnx": onnx.__version__, "onnxruntime": "1.32.0", "torch": None},
        "opset": 20, "ir_version": 10,
        "inputs": [spec("x", "float32", ["batch", 3]), spec("ids", "int64", ["batch"]), spec("flag", "bool", ["batch"]),
                   spec("words", "string", ["batch"])],
        "outputs": [spec("y", "float32", ["batch", 3]), spec("n", "int64", ["batch"]), spec("f", "bool", ["batch"]),
                    spec("echo", "string", ["batch"])],
        "dims": {"batch": {"example": 3, "verified": [1, 3]}},
        "variants": {"fp32": {"file": "model.onnx", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                              "opset": 20, "ir_version": 10, "optimization": "none",
                              "quantization": {"method": "none"}, "runtimes": ["python", "node", "web"]}},
        "default_variant": "fp32",
        "export": {"source": "onnx", "strategy": "onnx-import", "attempts": [{"strategy": "onnx-import", "ok": True}]},
    }
    (folder / "polyonnx.json").write_text(json.dumps(manifest, indent=2))
    server = Server(folder)
    try:
        yield folder, server
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("binary", [True, False])
def test_outputs_come_back_as_requested_in_the_requested_order(three_outputs, binary):
    bundle, server = three_outputs
    feeds = {"x": np.array([[0.5, -1.0, 3.25], [1e-3, 7.0, -2.5]], dtype=np.float32),
             "ids": np.array([41, -(2**40)], dtype=np.int64), "flag": np.array([True, False]),
             "words": np.array(["héllo", ""], dtype=object)}
    want = reference(bundle, feeds)
    client = th.InferenceServerClient(server.host)
    asked = ["f", "echo", "n"]
    result = client.infer("three_outputs", infer_inputs(feeds, binary),
                          outputs=[th.InferRequestedOutput(o, binary_data=binary) for o in asked])
    assert [o["name"] for o in result.get_response()["outputs"]] == asked
    for out in asked:
        assert_same(result.as_numpy(out), want[out], out)
    assert result.as_numpy("y") is None
    # One binary, one JSON in the same response.
    result = client.infer("three_outputs", infer_inputs(feeds, binary),
                          outputs=[th.InferRequestedOutput("y", binary_data=True),
                                   th.InferRequestedOutput("f", binary_data=False)])
    for out in ("y", "f"):
        assert_same(result.as_numpy(out), want[out], out)
