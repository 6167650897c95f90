"""The bundled examples, end to end: written, schema-valid, dynamic at every size, int8 in tolerance.

References are computed here, in the test: PyTorch for fp32, the fp32 variant for int8, and the
held-out digits labels for accuracy. Nothing is compared with numbers from an earlier run.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import polyonnx
from polyonnx import manifest
from polyonnx.compare import metrics, tolerance
from polyonnx.feeds import make_feeds

EXAMPLES = ("digits_cnn", "text_transformer", "gru_tagger")


def _session(bundle, variant):
    return ort.InferenceSession(str(bundle.path / bundle.variants[variant]["file"]), providers=["CPUExecutionProvider"])


def _torch_run(model, feeds, bundle):
    with torch.inference_mode():
        out = model(*[torch.from_numpy(feeds[i["name"]]) for i in bundle.inputs])
    return {bundle.outputs[0]["name"]: out.numpy()}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_bundle_is_written_and_schema_valid(example_bundles, name):
    folder = example_bundles / name
    data = json.loads((folder / "polyonnx.json").read_text())
    assert manifest.problems(data) == []
    bundle = polyonnx.load(folder)
    for vname in bundle.variants:
        bundle.model_path(vname, check=True)  # sha256 and size match the manifest
        model = onnx.load(str(bundle.path / bundle.variants[vname]["file"]))
        onnx.checker.check_model(model)
        # onnxruntime-node/web 1.30 load up to IR 13 / opset 26 (shared-schemas/runtimes.json).
        assert model.ir_version <= 13 and bundle.variants[vname]["opset"] <= 26
    assert not [p for p in example_bundles.iterdir() if p.name.startswith(f".{name}.")], "staging folders left behind"


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_dynamic_dim_was_verified_at_three_or_more_sizes_including_1(example_bundles, name):
    bundle = polyonnx.load(example_bundles / name)
    for dname, dim in bundle.dims.items():
        assert len(dim["verified"]) >= 3 and 1 in dim["verified"], dname
        assert dim["example"] >= 2
    check = bundle.variants["fp32"]["verification"][0]
    assert check["reference"] == "torch" and check["passed"]
    # The graph itself keeps the declared dims symbolic.
    model = onnx.load(str(bundle.path / "model.onnx"))
    for graph_input, spec in zip(model.graph.input, bundle.inputs):
        for d, want in zip(graph_input.type.tensor_type.shape.dim, spec["shape"]):
            if isinstance(want, str):
                assert d.dim_param == want


@pytest.mark.parametrize("name", EXAMPLES)
def test_fp32_matches_pytorch_at_sizes_never_used_during_export(example_bundles, torch_examples, name):
    bundle = polyonnx.load(example_bundles / name)
    model = torch_examples[name]
    sess = _session(bundle, "fp32")
    tol = tolerance("fp32", "torch")
    # Sizes outside the verified set: the export never saw these.
    for k, bump in enumerate((4, 11)):
        sizes = {d: max(v["verified"]) + bump for d, v in bundle.dims.items() if not v.get("derived")}
        feeds = make_feeds(bundle.inputs, sizes, seed=1000 + k)
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        ref = _torch_run(model, feeds, bundle)
        for out in bundle.outputs:
            m = metrics(got[out["name"]], ref[out["name"]])
            assert got[out["name"]].shape == ref[out["name"]].shape
            assert m["max_abs"] <= tol["atol"] + tol["rtol"] * np.abs(ref[out["name"]]).max(), (sizes, m)
            assert m["cosine"] >= tol["min_cosine"]


@pytest.mark.parametrize("name", ["digits_cnn", "text_transformer"])
def test_int8_matches_fp32_within_tolerance(example_bundles, name):
    bundle = polyonnx.load(example_bundles / name)
    assert "int8" in bundle.variants
    fp32, int8 = _session(bundle, "fp32"), _session(bundle, "int8")
    tol = tolerance("int8", "fp32")
    agree = []
    for seed, sizes in enumerate([{d: 3 for d in bundle.dims}, {d: 8 for d in bundle.dims}]):
        feeds = make_feeds(bundle.inputs, sizes, seed=seed + 50)
        a, b = fp32.run(None, feeds)[0], int8.run(None, feeds)[0]
        m = metrics(b, a, class_axis=1)
        assert m["cosine"] >= tol["min_cosine"], m
        agree.append(m["argmax_agreement"])
    assert np.mean(agree) >= tol["min_argmax_agreement"]
    q = bundle.variants["int8"]["quantization"]
    assert q["method"] in ("dynamic", "static") and q["weight_type"] == "int8"
    assert bundle.variants["int8"]["bytes"] < 0.6 * bundle.variants["fp32"]["bytes"]


def test_digits_int8_keeps_held_out_accuracy_within_one_point(example_bundles):
    from polyonnx.examples._digits import load_split

    bundle = polyonnx.load(example_bundles / "digits_cnn")
    _, _, x_test, y_test = load_split()
    acc = {}
    for vname in ("fp32", "int8"):
        logits = _session(bundle, vname).run(None, {"pixels": x_test})[0]
        acc[vname] = float((logits.argmax(1) == y_test).mean())
        assert bundle.variants[vname]["evaluation"]["value"] == pytest.approx(acc[vname])
    assert acc["fp32"] > 0.95
    assert acc["fp32"] - acc["int8"] <= 0.01
    assert bundle.variants["int8"]["quantization"]["method"] == "static"
    assert bundle.variants["int8"]["quantization"]["calibration_samples"] > 0


def test_gru_tagger_falls_back_from_dynamo_to_legacy(example_bundles):
    bundle = polyonnx.load(example_bundles / "gru_tagger")
    attempts = bundle.manifest["export"]["attempts"]
    assert [a["strategy"] for a in attempts] == ["dynamo", "legacy"]
    assert not attempts[0]["ok"] and "time" in attempts[0]["reason"]
    assert attempts[1]["ok"] and bundle.manifest["export"]["strategy"] == "legacy"
    assert bundle.outputs[0]["shape"] == ["batch", "time", 8]


def test_gru_tagger_ships_no_int8_and_says_why(example_bundles):
    bundle = polyonnx.load(example_bundles / "gru_tagger")
    assert list(bundle.variants) == ["fp32"]
    report = bundle.manifest["quantization_report"]
    assert report["chosen"] is None and report["summary"].startswith("fp32 only")
    dynamic = next(c for c in report["candidates"] if c["name"] == "dynamic-int8")
    assert not dynamic["accepted"] and "MatMul/Gemm/Gather hold" in dynamic["reason"]


def test_text_transformer_records_vocabulary_range_and_dims(example_bundles):
    bundle = polyonnx.load(example_bundles / "text_transformer")
    assert bundle.inputs[0]["value_range"] == [0, 7999]
    assert set(bundle.dims) == {"batch", "seq"}
    assert bundle.manifest["export"]["strategy"] == "dynamo"
