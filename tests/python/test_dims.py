"""Dim constraints and value domains end to end (issue #10): found from the model's own failures
or given by the user, recorded with their origin, verified only inside, and enforced with the
same words by the python and node runtimes. References are PyTorch and ONNX Runtime Python."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import polyonnx
from polyonnx.errors import FeedError, PolyonnxError


class DownUp(nn.Module):
    """A 5x5 conv stem, then down- and up-sampling by 4 with a skip connection: H and W must be
    multiples of 4 and at least 8 (the stride-4 path needs two pixels), like a small segmenter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(1, 4, 5, padding=2)
        self.down = nn.Conv2d(4, 4, 4, stride=4)
        self.up = nn.ConvTranspose2d(4, 4, 4, stride=4)
        self.head = nn.Conv2d(4, 2, 3)

    def forward(self, x):
        h = self.stem(x)
        return self.head(h + self.up(self.down(h)))


class Tokens(nn.Module):
    def __init__(self, vocab=1000):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, input_ids):
        return self.out(self.embed(input_ids).mean(1))


def _error(fn):
    try:
        fn()
    except FeedError as e:  # every runtime's refusal is a FeedError (node's come back as WorkerFeedError)
        return e
    raise AssertionError("no error")


def _torch(model, x):
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def downup(tmp_path_factory):
    model = DownUp().eval()
    out = tmp_path_factory.mktemp("dims") / "downup"
    bundle = polyonnx.export(model, (torch.randn(2, 1, 32, 48),), out, quantize="none", progress=False,
                             dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}}, output_names=["y"])
    return model, bundle


def test_stride_and_minimum_are_discovered_from_the_models_own_failures(downup):
    model, bundle = downup
    for d in ("height", "width"):
        entry = bundle.dims[d]
        assert entry["multiple_of"] == 4
        assert entry["origin"]["multiple_of"].startswith("discovered: ") and "fails in torch" in entry["origin"]["multiple_of"]
        # Every verified size is legal, and there are at least three of them.
        assert len(entry["verified"]) >= 3
        assert all(s % 4 == 0 and s >= entry["min"] for s in entry["verified"])
    # The smallest legal size really runs in PyTorch and the one below it really fails.
    low = bundle.dims["height"]["min"]
    _torch(model, np.zeros((1, 1, low, 8), np.float32))
    if low - 4 > 0:
        with pytest.raises(Exception):
            _torch(model, np.zeros((1, 1, low - 4, 8), np.float32))
    assert bundle.dims["batch"]["min"] == 1 and "multiple_of" not in bundle.dims["batch"]


def test_a_size_just_inside_runs_everywhere_and_one_just_outside_is_refused_alike(downup):
    model, bundle = downup
    inside = np.random.default_rng(0).standard_normal((1, 1, 36, 20)).astype(np.float32)
    ref = _torch(model, inside)
    off_stride = np.zeros((1, 1, 34, 20), np.float32)
    with polyonnx.runtime("python", bundle) as py, polyonnx.runtime("node", bundle) as node:
        for rt in (py, node):
            np.testing.assert_allclose(rt.run({"x": inside})["y"], ref, atol=1e-4)
        e_py = _error(lambda: py.run({"x": off_stride}))
        e_node = _error(lambda: node.run({"x": off_stride}))
    assert e_py.code == e_node.code == "E_FEED"
    assert e_py.message == e_node.message
    assert "'height' is 34, not a multiple of 4" in e_py.message


def test_user_constraints_win_and_say_so(tmp_path):
    model = DownUp().eval()
    bundle = polyonnx.export(model, (torch.randn(1, 1, 64, 64),), tmp_path / "b", quantize="none", progress=False,
                             dynamic_axes={"x": {2: "height", 3: "width"}}, output_names=["y"],
                             dims={"height": {"min": 32, "max": 128, "multiple_of": 32}})
    h = bundle.dims["height"]
    assert (h["min"], h["max"], h["multiple_of"]) == (32, 128, 32)
    assert h["origin"]["min"] == h["origin"]["max"] == h["origin"]["multiple_of"] == "user"
    assert set(h["verified"]) <= {32, 64, 96, 128} and len(h["verified"]) >= 3
    with polyonnx.runtime("python", bundle) as py:
        e = _error(lambda: py.run({"x": np.zeros((1, 1, 160, 64), np.float32)}))
    assert "above its maximum 128 (user)" in e.message


def test_example_ids_never_become_limits_the_embedding_table_does(tmp_path):
    model = Tokens(1000).eval()
    ids = torch.randint(100, 500, (2, 16))
    bundle = polyonnx.export(model, (ids,), tmp_path / "b", quantize="none", progress=False,
                             dynamic_axes={"input_ids": {0: "batch", 1: "seq"}}, output_names=["logits"])
    spec = bundle.inputs[0]
    assert spec["value_range"] == [0, 999] and "1000 rows" in spec["value_range_origin"]
    low = np.array([[11, 999, 0]], dtype=np.int64)
    with polyonnx.runtime("python", bundle) as py, polyonnx.runtime("node", bundle) as node:
        np.testing.assert_allclose(node.run({"input_ids": low})["logits"], _torch(model, low), atol=1e-5)
        np.testing.assert_allclose(py.run({"input_ids": low})["logits"], _torch(model, low), atol=1e-5)
        beyond = np.array([[1, 1000]], dtype=np.int64)
        e_py, e_node = _error(lambda: py.run({"input_ids": beyond})), _error(lambda: node.run({"input_ids": beyond}))
        empty = np.zeros((1, 0), dtype=np.int64)
        z_py, z_node = _error(lambda: py.run({"input_ids": empty})), _error(lambda: node.run({"input_ids": empty}))
    assert "input_ids[0][1] = 1000 is outside its value_range [0, 999]" in e_py.message
    assert e_py.message == e_node.message
    assert "'seq' is 0, below its minimum 1" in z_py.message and z_py.message == z_node.message


def test_user_value_ranges_apply_beside_example_inputs(tmp_path):
    bundle = polyonnx.export(Tokens(1000).eval(), (torch.randint(0, 10, (2, 4)),), tmp_path / "b", quantize="none",
                             progress=False, dynamic_axes={"input_ids": {0: "batch", 1: "seq"}},
                             value_ranges={"input_ids": [0, 499]})
    assert bundle.inputs[0]["value_range"] == [0, 499] and bundle.inputs[0]["value_range_origin"] == "user"


def _with_anonymous_dims(src: str, dst: str, placeholder: str) -> None:
    m = onnx.load(src)
    for v in list(m.graph.input) + list(m.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.Clear()
                if placeholder:
                    d.dim_param = placeholder
    onnx.save(m, dst)


def test_anonymous_height_and_width_of_an_import_stay_two_dims(downup, tmp_path):
    model, bundle = downup
    src = tmp_path / "anon.onnx"
    _with_anonymous_dims(str(bundle.path / "model.onnx"), str(src), "?")
    imported = polyonnx.export(str(src), None, tmp_path / "imp", quantize="none", progress=False)
    names = imported.inputs[0]["shape"]
    assert names[1] == 1 and len({names[0], names[2], names[3]}) == 3
    # The import discovers the stride from ONNX Runtime, and a non-square image runs in Node.
    assert imported.dims[names[2]]["multiple_of"] == 4 and "fails in onnxruntime" in imported.dims[names[2]]["origin"]["multiple_of"]
    x = np.random.default_rng(1).standard_normal((1, 1, 48, 192)).astype(np.float32)
    with polyonnx.runtime("node", imported) as node:
        np.testing.assert_allclose(node.run({"x": x})["y"], _torch(model, x), atol=1e-4)


def test_input_on_an_onnx_names_and_pins_dims_and_refuses_a_mismatch(downup, tmp_path):
    _, bundle = downup
    src = tmp_path / "anon.onnx"
    _with_anonymous_dims(str(bundle.path / "model.onnx"), str(src), "")
    b = polyonnx.export(str(src), None, tmp_path / "named", quantize="none", progress=False,
                        inputs=["x:float32[1,1,side,side]"])
    assert b.inputs[0]["shape"] == [1, 1, "side", "side"]
    assert all(s % 4 == 0 for s in b.dims["side"]["verified"])
    with pytest.raises(PolyonnxError) as e:
        polyonnx.export(str(src), None, tmp_path / "bad", quantize="none", progress=False,
                        inputs=["x:float32[1,3,side,side]"])
    assert "axis 1 is 3, but the graph fixes it to 1" in str(e.value)


class Pick(nn.Module):
    def forward(self, table, idx):
        return table[idx] * 2.0


def test_feeds_make_an_index_input_verifiable(tmp_path):
    table = torch.randn(50, 4)
    idx = torch.tensor([0, 49, 7])
    onnx_path = tmp_path / "pick.onnx"
    torch.onnx.export(Pick(), (table, idx), str(onnx_path), dynamo=False, input_names=["table", "idx"],
                      output_names=["rows"], dynamic_axes={"idx": {0: "k"}})
    m = onnx.load(str(onnx_path))
    m.graph.input[0].type.tensor_type.shape.dim[0].Clear()  # rows of the table: unknown, as shipped
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
    onnx.save(m, str(onnx_path))
    feeds = {"table": table.numpy(), "idx": idx.numpy()}
    np.savez(tmp_path / "f.npz", **feeds)
    b = polyonnx.export(str(onnx_path), None, tmp_path / "b", quantize="none", progress=False,
                        feeds=[str(tmp_path / "f.npz")])
    assert b.manifest["export"]["feeds"].get("user") == 1
    with polyonnx.runtime("node", b) as node:
        np.testing.assert_allclose(node.run(feeds)["rows"], table.numpy()[idx.numpy()] * 2.0, atol=1e-6)


def test_no_verify_import_writes_a_bundle_instead_of_crashing(downup, tmp_path):
    _, bundle = downup
    b = polyonnx.export(str(bundle.path / "model.onnx"), None, tmp_path / "nv", quantize="none", progress=False,
                        verify=False)
    assert b.variants["fp32"]["file"] == "model.onnx"


def test_the_browser_refuses_what_python_refuses_with_the_same_words(downup):
    from polyonnx import _browser

    try:
        _browser.find_chromium()
    except _browser.BrowserNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    model, bundle = downup
    inside = np.random.default_rng(2).standard_normal((1, 1, 12, 16)).astype(np.float32)
    bad = {"x": np.zeros((1, 1, 14, 16), np.float32)}
    try:
        with polyonnx.runtime("python", bundle) as py, polyonnx.runtime("browser", bundle) as web:
            np.testing.assert_allclose(web.run({"x": inside})["y"], _torch(model, inside), atol=1e-4)
            e_py, e_web = _error(lambda: py.run(bad)), _error(lambda: web.run(bad))
    finally:
        _browser.shutdown()
    assert e_web.code == "E_FEED" and e_py.message == e_web.message


class Fragile(nn.Module):
    """Breaks itself when run below its minimum, as Hugging Face's Swin shrinks its window_size
    attribute for small inputs: probing a small size must not break the runs after it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        self.broken = False

    def forward(self, x):
        if x.shape[1] < 4:
            self.broken = True
            raise RuntimeError("needs at least 4 steps")
        if self.broken:
            raise RuntimeError("broken by an earlier call")
        return self.lin(x)


def test_probing_a_small_size_does_not_break_the_model_for_later_runs(tmp_path):
    model = Fragile().eval()
    bundle = polyonnx.export(model, (torch.randn(2, 6, 4),), tmp_path / "b", quantize="none", progress=False,
                             dynamic_axes={"x": {0: "batch", 1: "steps"}}, output_names=["y"])
    assert model.broken is False
    steps = bundle.dims["steps"]
    assert steps["min"] == 4 and "3 fails in torch: RuntimeError: needs at least 4 steps" in steps["origin"]["min"]


class VarArgs(nn.Module):
    def forward(self, *xs):
        return xs[0] * 2 + xs[1].sum(-1, keepdim=True)


def test_a_varargs_forward_keeps_the_dynamo_exporter(tmp_path):
    a, b = torch.randn(2, 3), torch.randn(2, 5)
    bundle = polyonnx.export(VarArgs(), (a, b), tmp_path / "b", input_names=["a", "b"], quantize="none",
                             progress=False, dynamic_axes={"a": {0: "batch"}, "b": {0: "batch"}}, output_names=["y"])
    assert bundle.manifest["export"]["strategy"] == "dynamo", bundle.manifest["export"]["attempts"]
    a2, b2 = np.ones((4, 3), np.float32), np.ones((4, 5), np.float32)
    with polyonnx.runtime("node", bundle) as node:
        np.testing.assert_allclose(node.run({"a": a2, "b": b2})["y"], a2 * 2 + 5, atol=1e-6)


def test_a_graph_onnxruntime_cannot_optimize_ships_unoptimized_with_a_note(downup, tmp_path, monkeypatch):
    from polyonnx import _ort

    def refuse(src, dst, level):
        raise PolyonnxError("optimize", f"ONNX Runtime could not optimize the model at level '{level}': "
                            "Graph attribute inferencing failed", "retry with --optimize none")

    monkeypatch.setattr(_ort, "optimize", refuse)
    model, bundle = downup
    b = polyonnx.export(str(bundle.path / "model.onnx"), None, tmp_path / "b", quantize="none", progress=False)
    assert b.variants["fp32"]["optimization"] == "none"
    assert any("not optimized" in n and "inferencing failed" in n for n in b.manifest["notes"])
    x = np.random.default_rng(3).standard_normal((1, 1, 16, 16)).astype(np.float32)
    with polyonnx.runtime("node", b) as node:
        np.testing.assert_allclose(node.run({"x": x})["y"], _torch(model, x), atol=1e-4)


class StepWithState(nn.Module):
    """One recurrent step: the state's batch must equal the input's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.cell = nn.Linear(4, 8)

    def forward(self, x, h):
        return torch.tanh(self.cell(x) + h)


def test_two_anonymous_dims_that_run_only_when_equal_become_one(tmp_path):
    src = tmp_path / "step.onnx"
    torch.onnx.export(StepWithState().eval(), (torch.randn(2, 4), torch.randn(2, 8)), str(src), dynamo=False,
                      input_names=["x", "h"], output_names=["h_next"], dynamic_axes={"x": {0: "b1"}, "h": {0: "b2"}})
    _with_anonymous_dims(str(src), str(src), "")
    b = polyonnx.export(str(src), None, tmp_path / "b", quantize="none", progress=False)
    x_shape, h_shape = b.inputs[0]["shape"], b.inputs[1]["shape"]
    assert x_shape[0] == h_shape[0] and isinstance(x_shape[0], str)
    assert "tied with" in b.dims[x_shape[0]]["origin"]["example"]
    assert b.dims[x_shape[0]]["min"] == 1
    x, h = np.ones((5, 4), np.float32), np.zeros((5, 8), np.float32)
    with polyonnx.runtime("node", b) as node:
        assert node.run({"x": x, "h": h})["h_next"].shape == (5, 8)
        e = _error(lambda: node.run({"x": x, "h": h[:3]}))
    assert f"'{x_shape[0]}' is 3 in h but 5 in x" in e.message


class PadToFour(nn.Module):
    """Pads the last axis to a multiple of 4, with the amount computed in Python: a traced graph
    keeps the example's padding, so it is right only where no padding is needed."""

    def forward(self, x):
        pad = (4 - int(x.shape[-1]) % 4) % 4
        x = nn.functional.pad(x, (0, pad))
        return x.reshape(x.shape[0], -1, 4).sum(-1)


def test_a_graph_right_only_on_a_stride_is_kept_inside_it_not_refused(tmp_path):
    bundle = polyonnx.export(PadToFour(), (torch.randn(2, 8),), tmp_path / "b", quantize="none", progress=False,
                             dynamic_axes={"x": {0: "batch", 1: "n"}}, output_names=["y"], strategies=("legacy",))
    n = bundle.dims["n"]
    assert n["multiple_of"] == 4 and "the legacy graph" in n["origin"]["multiple_of"]
    assert any("narrower constraints" in note for note in bundle.manifest["notes"])
    x = np.random.default_rng(4).standard_normal((3, 12)).astype(np.float32)
    with polyonnx.runtime("node", bundle) as node:
        np.testing.assert_allclose(node.run({"x": x})["y"], _torch(PadToFour(), x), atol=1e-5)
        e = _error(lambda: node.run({"x": x[:, :10]}))
    assert "'n' is 10, not a multiple of 4" in e.message


def test_the_python_runtime_refuses_a_model_that_reads_unlisted_external_data(downup, tmp_path):
    # Issue #11 item 13: ONNX Runtime reads every file a model names; only listed files are hashed.
    import json
    import shutil

    from polyonnx.bundle import sha256_file
    from polyonnx.errors import IntegrityError

    _, bundle = downup
    b = tmp_path / "ext"
    shutil.copytree(bundle.path, b)
    m = onnx.load(str(b / "model.onnx"))
    onnx.save_model(m, str(b / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    manifest = json.loads((b / "polyonnx.json").read_text())
    fp32 = manifest["variants"]["fp32"]
    fp32.update(sha256=sha256_file(b / "model.onnx"), bytes=(b / "model.onnx").stat().st_size)
    for v in list(manifest["variants"]):
        if v != "fp32":
            del manifest["variants"][v]
    (b / "polyonnx.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError) as e:
        polyonnx.runtime("python", b)
    assert "'weights.bin'" in str(e.value) and "does not list" in str(e.value)
    fp32["external_data"] = [{"file": "weights.bin", "sha256": sha256_file(b / "weights.bin"),
                              "bytes": (b / "weights.bin").stat().st_size}]
    (b / "polyonnx.json").write_text(json.dumps(manifest))
    x = np.zeros((1, 1, 8, 8), np.float32)
    with polyonnx.runtime("python", b) as py, polyonnx.runtime("python", bundle) as ref:
        np.testing.assert_array_equal(py.run({"x": x})["y"], ref.run({"x": x})["y"])


def test_pytorch_runs_kept_for_the_plan_stay_within_their_budget():
    # Discovery probes are kept to serve as references; many probes must not add up without bound.
    from polyonnx._capture import _Capturer

    cap = _Capturer.__new__(_Capturer)
    cap._ran, cap._ran_bytes = {}, 0
    mib = np.zeros(1 << 18, np.float32)  # 1 MiB
    per_run = _Capturer._KEEP_BYTES // (2 << 20)  # MiB of outputs per run: half the per-run limit
    outputs = [mib] * per_run
    for n in range(64):
        cap._keep_run({"n": n}, {"x": mib}, outputs)
    size = (per_run + 1) << 20
    assert len(cap._ran) == _Capturer._KEEP_TOTAL_BYTES // size
    assert cap._ran_bytes == len(cap._ran) * size <= _Capturer._KEEP_TOTAL_BYTES
    cap._keep_run({"n": 0}, {"x": mib}, outputs)  # the same sizes again: replaced, not counted twice
    assert cap._ran_bytes == len(cap._ran) * size
    cap._keep_run({"big": 1}, {"x": np.zeros(_Capturer._KEEP_BYTES // 4 + 1, np.float32)}, [])
    assert ("big", 1) not in [k[0] for k in cap._ran]  # over the per-run limit: never kept
