"""Quantization that earns its place: calibration inputs and methods, bounded streaming, the auto
choice and its refusals, fp16 in Node, and the report.

Accuracy references are computed here (fp32 in ONNX Runtime, labels); latency figures are never
asserted as numbers, only the decisions' consistency with the figures the export recorded.
"""

from __future__ import annotations

import gc
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import polyonnx
from polyonnx import _quantize as q
from polyonnx.cli import main as cli
from polyonnx.compare import metrics, tolerance
from polyonnx.manifest import variant_kind

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _models  # noqa: E402

CNN_INPUT = [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 16, 16)).astype(np.float32)


def _int8_close_to_fp32(bundle, variant="int8", n=6):
    feeds = {"image": _images(n, seed=99)}
    a = ort.InferenceSession(str(bundle.path / bundle.variants["fp32"]["file"])).run(None, feeds)[0]
    b = ort.InferenceSession(str(bundle.path / bundle.variants[variant]["file"])).run(None, feeds)[0]
    return metrics(b, a)["cosine"]


# -- calibration input forms and methods -------------------------------------------------------------
def test_calibration_from_a_folder_of_npy_files(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"{i:03}.npy", _images(5, seed=i))
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "b", quantize="static",
                             calibration=folder, progress=False)
    assert bundle.variants["int8"]["quantization"]["calibration_samples"] == 15
    assert _int8_close_to_fp32(bundle) >= tolerance("int8", "fp32")["min_cosine"]


@pytest.mark.parametrize("form", ["iterable", "callable"])
def test_calibration_from_python_feed_dicts(tmp_path, form):
    batches = [{"image": _images(4, seed=i)} for i in range(3)]
    source = iter(batches) if form == "iterable" else (lambda: iter(batches))
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "b", quantize="static",
                             calibration=source, progress=False)
    assert bundle.variants["int8"]["quantization"]["calibration_samples"] == 12


@pytest.mark.parametrize("method", ["MinMax", "Entropy", "Percentile"])
def test_each_calibration_method_gives_an_int8_close_to_fp32(tmp_path, method):
    calib = tmp_path / "c.npz"
    np.savez(calib, image=_images(32))
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "b", quantize="static", calibration=calib,
                             quant_options={"methods": [method], "per_channel": method == "MinMax"}, progress=False)
    info = bundle.variants["int8"]["quantization"]
    assert info["calibrate_method"] == method and info["format"] == "QDQ"
    assert info["per_channel"] == (method == "MinMax")
    assert _int8_close_to_fp32(bundle) >= tolerance("int8", "fp32")["min_cosine"]
    # A chosen static variant names the activations that lose the most, worst first.
    worst = bundle.manifest["quantization_report"]["worst_tensors"]
    assert worst and [w["sqnr_db"] for w in worst] == sorted(w["sqnr_db"] for w in worst)


def test_op_types_and_excluded_nodes_are_respected(tmp_path):
    import onnx

    calib = tmp_path / "c.npz"
    np.savez(calib, image=_images(16))
    probe = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "probe", quantize="none", progress=False)
    convs = [n.name for n in onnx.load(str(probe.path / "model.onnx")).graph.node if n.op_type == "Conv"]
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "b", quantize="static", calibration=calib,
                             quant_options={"methods": ["MinMax"], "nodes_to_exclude": convs[:1]}, progress=False)
    info = bundle.variants["int8"]["quantization"]
    assert info["nodes_excluded"] == convs[:1]
    graph = onnx.load(str(bundle.path / "model.int8.onnx")).graph
    producers = {o: n for n in graph.node for o in n.output}
    excluded = next(n for n in graph.node if n.name == convs[0])
    # The excluded conv reads its weight directly, not through a DequantizeLinear.
    weight = excluded.input[1]
    assert weight not in producers or producers[weight].op_type != "DequantizeLinear"


# -- streaming ---------------------------------------------------------------------------------------
def test_a_large_npz_is_streamed_in_bounded_batches(tmp_path):
    calib = tmp_path / "big.npz"
    np.savez(calib, image=_images(200))
    sizes = [b["image"].shape[0] for b in q.calibration_batches(calib, CNN_INPUT, {"batch": 2})]
    assert sizes == [64, 64, 64, 8]


def test_static_calibration_never_holds_more_than_a_few_batches(tmp_path):
    """The reader hands ONNX Runtime one batch at a time; earlier batches can be freed."""
    probe = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "probe", quantize="none", progress=False)
    alive, peak, made = set(), [0], [0]

    def batches():
        for i in range(40):  # far more than one batch, and than CalibMaxIntermediateOutputs (16)
            arr = _images(8, seed=i)
            made[0] += 1
            alive.add(id(arr))
            weakref.finalize(arr, alive.discard, id(arr))
            gc.collect()
            peak[0] = max(peak[0], len(alive))
            yield {"image": arr}
            del arr

    info = q.static_int8(probe.path / "model.onnx", tmp_path / "q.onnx",
                         q.calibration_batches(batches(), CNN_INPUT, {"batch": 8}))
    assert made[0] == 40 and info["calibration_samples"] == 320
    assert peak[0] <= 3, f"{peak[0]} calibration batches were alive at once"


# -- the auto choice ----------------------------------------------------------------------------------
def _check_decisions(report):
    """The recorded decisions agree with the recorded figures."""
    chosen = [c for c in report["candidates"] if c.get("chosen")]
    assert len(chosen) <= 1
    assert report["chosen"] == (chosen[0]["name"] if chosen else None)
    for c in report["candidates"]:
        if c.get("accepted"):
            assert c["speedup"] and all(s > 1.0 for s in c["speedup"].values()), c
            kind = variant_kind({"quantization": c["quantization"]})
            assert c["cosine"] >= tolerance(kind, "fp32")["min_cosine"]
        else:
            assert c.get("reason"), c
    if chosen:
        best = min(chosen[0]["speedup"].values())
        assert all(min(c["speedup"].values()) <= best for c in report["candidates"] if c.get("accepted"))


@pytest.fixture(scope="module")
def auto_text_transformer(tmp_path_factory):
    return polyonnx.export("polyonnx.examples:text_transformer", None, tmp_path_factory.mktemp("auto") / "tt",
                           progress=False)


def test_auto_on_text_transformer_records_every_candidate_and_a_consistent_choice(auto_text_transformer):
    bundle = auto_text_transformer
    report = bundle.manifest["quantization_report"]
    assert report["mode"] == "auto"
    assert {c["name"] for c in report["candidates"]} == {"dynamic-int8", "int4", "fp16"}
    assert report["evaluation"]["latency_sizes"] == {"batch": 1, "seq": 128}
    assert "python" in report["fp32"]["latency_ms"]
    _check_decisions(report)
    if report["chosen"]:
        chosen = next(c for c in report["candidates"] if c["name"] == report["chosen"])
        assert variant_kind({"quantization": chosen["quantization"]}) in bundle.variants
    else:
        assert list(bundle.variants) == ["fp32"]
    dynamic = next(c for c in report["candidates"] if c["name"] == "dynamic-int8")
    assert dynamic["size_ratio"] <= 0.3  # embeddings, MatMul and Gemm in int8


def test_auto_refuses_every_candidate_that_costs_accuracy_against_labels(tmp_path):
    import torch

    model = _models.NearTie().eval()
    x = np.random.default_rng(0).standard_normal((128, 16)).astype(np.float32)
    with torch.inference_mode():
        logits = model(torch.from_numpy(x)).numpy()
    # Only samples where class 0 or 1 wins: exactly where rounding decides the label.
    keep = logits.argmax(1) <= 1
    x, labels = x[keep], logits[keep].argmax(1)
    calib, label_file = tmp_path / "c.npz", tmp_path / "labels.npy"
    np.savez(calib, x=x)
    np.save(label_file, labels)
    code = cli(["export", f"{HERE / '_models.py'}:NearTie", "-o", str(tmp_path / "b"), "-q",
                "--calibration", str(calib), "--labels", str(label_file), "--max-drop", "0"])
    assert code == 0
    bundle = polyonnx.load(tmp_path / "b")
    report = bundle.manifest["quantization_report"]
    assert report["evaluation"]["metric"] == "accuracy" and report["fp32"]["task_metric"] == 1.0
    assert {"dynamic-int8", "static-minmax", "static-entropy", "static-percentile", "fp16"} <= {
        c["name"] for c in report["candidates"]}
    # Recompute each built candidate's accuracy from the recorded numbers' definition.
    for c in report["candidates"]:
        assert not c["accepted"] and c.get("reason")
        if c.get("task_metric") is not None and c["task_metric"] < 1.0:
            assert "task metric drops" in c["reason"]
    int8_like = [c for c in report["candidates"] if c["quantization"]["method"] in ("dynamic", "static")]
    assert any(c.get("task_metric") is not None and c["task_metric"] < 1.0 for c in int8_like)
    assert list(bundle.variants) == ["fp32"] and report["chosen"] is None
    assert report["summary"].startswith("fp32 only")
    _check_decisions(report)


def test_decide_prefers_the_candidate_fastest_everywhere():
    from polyonnx.autoquant import Candidate, QuantOptions, decide

    def cand(name, speed, cosine=0.9999):
        c = Candidate(name, "int8", path=Path(name))
        c.entry = {"name": name, "quantization": {"method": "dynamic"}, "accepted": False, "cosine": cosine,
                   "argmax_agreement": 1.0, "task_drop": 0.0, "speedup": speed}
        return c

    a = cand("a", {"python": 3.0, "node": 1.1})
    b = cand("b", {"python": 1.5, "node": 1.4})
    slow = cand("slow", {"python": 1.2, "node": 0.95})
    bad = cand("bad", {"python": 4.0, "node": 4.0}, cosine=0.5)
    chosen = decide([a, b, slow, bad], QuantOptions(mode="auto"))
    assert chosen is b and b.entry["chosen"]
    assert a.entry["accepted"] and not slow.entry["accepted"] and "node 0.95x" in slow.entry["reason"]
    assert not bad.entry["accepted"] and "cosine" in bad.entry["reason"]


# -- fp16 and the report -------------------------------------------------------------------------------
def test_fp16_variant_runs_in_node_and_the_browser_like_in_python(tmp_path):
    bundle = polyonnx.export(_models.tiny_mlp(), None, tmp_path / "b", quantize="fp16", progress=False)
    assert bundle.variants["fp16"]["quantization"]["method"] == "fp16"
    assert bundle.inputs[0]["dtype"] == "float32"  # fp16 keeps the float32 interface
    feeds = {"x": np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)}
    with polyonnx.runtime("python", bundle, variant="fp16") as py:
        ref = py.run(feeds)["y"]
    for name in ("node", "browser"):
        with polyonnx.runtime(name, bundle, variant="fp16") as rt:
            got = rt.run(feeds)["y"]
        tol = tolerance("fp16", name)
        m = metrics(got, ref)
        if tol["atol"] is not None:
            assert m["max_abs"] <= tol["atol"] + tol["rtol"] * np.abs(ref).max(), (name, m)
        assert m["cosine"] >= tol["min_cosine"], (name, m)


def test_static_int8_of_a_cnn_runs_in_onnxruntime_web(tmp_path):
    calib = tmp_path / "c.npz"
    np.savez(calib, image=_images(16))
    bundle = polyonnx.export(_models.PureCNN().eval(), None, tmp_path / "b", quantize="static", calibration=calib,
                             progress=False)
    assert "web" in bundle.variants["int8"]["runtimes"]
    feeds = {"image": _images(2, seed=5)}
    with polyonnx.runtime("python", bundle, variant="int8") as py, polyonnx.runtime("wasm", bundle, variant="int8") as web:
        a, b = py.run(feeds)["features"], web.run(feeds)["features"]
    assert metrics(b, a)["cosine"] >= tolerance("int8", "wasm")["min_cosine"]


def test_report_writes_a_table_and_a_self_contained_html_page(auto_text_transformer, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli(["report", str(auto_text_transformer.path), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dynamic-int8" in text and "fp16" in text and "=>" in text
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2
    assert "dynamic-int8" in page and "<script" not in page and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", "")


def test_latency_rules_on_constructed_timings():
    """The rules auto's latency measurement closes on, fed timings whose answer is known."""
    from polyonnx import autoquant as aq

    ranks = list(range(1, 101))  # the median's interval by order statistics: ranks 50 -+ 0.98 * sqrt(100)
    assert aq._median_interval(ranks) == (ranks[int(50 - 9.8)], ranks[int(np.ceil(50 + 9.8))])
    assert aq._median_interval([7.0]) == (7.0, 7.0)
    both = ("python", "node")
    clearly_faster = {rt: {"fp32": [10.0] * 20, "int8": [5.0] * 20} for rt in both}
    clearly_slower = {rt: {"fp32": [5.0] * 20, "int8": [10.0] * 20} for rt in both}
    overlapping = {rt: {"fp32": list(np.linspace(9, 11, 20)), "int8": list(np.linspace(9.5, 11.5, 20))} for rt in both}
    faster_in_one = {"python": clearly_faster["python"], "node": overlapping["node"]}
    assert not aq._verdict_open(clearly_faster, "int8")  # accepted on speed: every runtime agrees
    assert not aq._verdict_open(clearly_slower, "int8")  # refused: slower somewhere is enough
    assert aq._verdict_open(overlapping, "int8")
    assert aq._verdict_open(faster_in_one, "int8")  # not yet faster everywhere


def test_a_latency_block_warms_up_then_times_between_its_bounds():
    from polyonnx import autoquant as aq

    asked, closed = [], []

    def opener(_variant):
        def run(n):
            asked.append(n)
            time.sleep(0.0005 * n)
            return [0.5] * n
        return run, lambda: closed.append(True)

    ms = aq._time_block(opener, "int8")
    assert asked[0] == aq.LATENCY_WARMUP  # untimed warm-up first, not counted
    assert sum(asked[1:]) == len(ms)
    assert aq.LATENCY_BLOCK_MIN <= len(ms) <= aq.LATENCY_BLOCK_MAX
    assert closed == [True]
