"""Two models nobody here wrote, as CI's slice of bench/corpus.py: a random-init Hugging Face BERT
(text) and ConvNeXt (vision), built from tiny configs (no hub), exported with the dynamic axes a
user would give, and run in the python and node runtimes.

The manifest's dims are the contract (issue #10): at >= 3 sizes per dim picked from its
min/max/multiple_of, both runtimes give PyTorch's answers; a size just inside the constraints runs
everywhere; sizes just outside, and a token id just beyond the embedding table, are refused by both
runtimes with the same error (Python: a polyonnx error; Node: code E_FEED) before ONNX Runtime
sees them. Pretrained models from wheels stay in the bench, not here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import polyonnx
from polyonnx import _node

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import corpus  # noqa: E402  (bench/corpus.py: how sizes are chosen from a manifest's constraints)
import corpus_models as cm  # noqa: E402

import torch  # noqa: E402  (the test extra installs both: a missing one is a broken set-up, not a skip)
import transformers  # noqa: E402,F401

NODE_OK, NODE_WHY = _node.node_available(("node",))
needs_node = pytest.mark.skipif(not NODE_OK, reason=NODE_WHY)
TOL = json.loads((ROOT / "shared-schemas" / "tolerances.json").read_text())["checks"]["fp32"]["torch"]
MODELS = ("hf-bert", "hf-convnext")


def assert_close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    bound = TOL["atol"] + TOL["rtol"] * float(np.max(np.abs(ref)))
    assert float(np.max(np.abs(got.astype(np.float64) - ref))) <= bound, what


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (bundle, PyTorch model, output names, case), exported once per module."""
    out = {}
    for name in MODELS:
        case = cm.CASES[name]
        model, names = case.build()
        example = {k: torch.from_numpy(v) for k, v in cm.user_feeds(case, case.user_sizes[1]).items()}
        dynamic = {i.name: {a: d for a, d in enumerate(i.shape) if isinstance(d, str)} for i in case.inputs}
        bundle = polyonnx.export(model, example, tmp_path_factory.mktemp(name), dynamic_axes=dynamic,
                                 output_names=names, quantize="none", progress=False, force=True)
        out[name] = (bundle, model, names, case)
    return out


@pytest.fixture(scope="module")
def opened(exported):
    rts = {}
    for name, (bundle, *_rest) in exported.items():
        rts[name] = {"python": polyonnx.runtime("python", bundle)}
        if NODE_OK:
            rts[name]["node"] = polyonnx.runtime("node", bundle)
    yield rts
    for per_model in rts.values():
        for rt in per_model.values():
            rt.close()


def torch_answers(model, names, feeds) -> dict:
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return {names[0]: out.numpy()}


@pytest.mark.parametrize("name", MODELS)
def test_every_dim_has_three_legal_sizes_and_the_manifest_constraints_admit_the_example(exported, name):
    bundle = exported[name][0]
    dims = corpus.input_dims(bundle.manifest)
    assert dims, "the user declared dynamic axes"
    for dname, d in dims.items():
        assert corpus.legal(d, d["example"]), f"{dname}: the traced example size is outside its own constraints"
        assert len(corpus.sizes_for(d)) >= 3, f"{dname}: fewer than 3 legal sizes in {d}"


@needs_node
@pytest.mark.parametrize("name", MODELS)
def test_python_and_node_give_pytorchs_answers_at_every_planned_size(exported, opened, name):
    bundle, model, names, case = exported[name]
    for i, plan in enumerate(corpus.size_plans(corpus.input_dims(bundle.manifest))):
        feeds = corpus.bundle_feeds(case, bundle.manifest, plan, seed=i)
        ref = torch_answers(model, names, feeds)
        for rt_name, rt in opened[name].items():
            got = rt.run(feeds)
            assert_close(got[names[0]], ref[names[0]], f"{name} {rt_name} at {plan}")


@needs_node
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("end,seed", [("smallest", 7), ("largest", 11)])
def test_each_end_of_each_legal_range_runs_in_python_and_node(exported, opened, name, end, seed):
    """Each dim at its smallest legal size, and at its top: ``max`` where the manifest has one
    (BERT's seq: the position table), else a large size; the others at their example."""
    pick = corpus.smallest_legal if end == "smallest" else corpus.largest_probe
    bundle, model, names, case = exported[name]
    dims = corpus.input_dims(bundle.manifest)
    base = {n: d["example"] for n, d in dims.items()}
    for dname, d in dims.items():
        size = pick(d)
        if size is None:
            continue
        plan = dict(base, **{dname: size})
        feeds = corpus.bundle_feeds(case, bundle.manifest, plan, seed=seed)
        ref = torch_answers(model, names, feeds)
        for rt_name, rt in opened[name].items():
            assert_close(rt.run(feeds)[names[0]], ref[names[0]], f"{name} {rt_name} at {plan}")


def outside_sizes(d: dict) -> list[int]:
    lo = corpus.smallest_legal(d)
    sizes = [d.get("min", 1) - 1] if d.get("min", 1) > 0 else []
    if d.get("multiple_of", 1) > 1:
        sizes.append(lo + 1)
    if "max" in d:
        sizes.append(d["max"] + 1)
    return sizes


def refused_alike(rts: dict, feeds: dict, what: str) -> None:
    """Python raises a polyonnx error, Node one with code E_FEED, and both say the same thing."""
    messages = {}
    for rt_name, rt in rts.items():
        with pytest.raises(polyonnx.PolyonnxError) as info:
            rt.run(feeds)
        err = info.value
        if rt_name == "node":
            assert getattr(err, "code", None) == "E_FEED", f"{what}: node {err}"
        else:
            assert "ONNXRuntimeError" not in err.message, f"{what}: python let ONNX Runtime see it: {err}"
        messages[rt_name] = err.message
    assert len(set(messages.values())) == 1, f"{what}: the runtimes refuse differently: {messages}"


@needs_node
@pytest.mark.parametrize("name", MODELS)
def test_sizes_just_outside_the_constraints_are_refused_by_python_and_node_with_the_same_error(exported, opened,
                                                                                               name):
    bundle, _model, _names, case = exported[name]
    dims = corpus.input_dims(bundle.manifest)
    base = {n: d["example"] for n, d in dims.items()}
    for dname, d in dims.items():
        for size in outside_sizes(d):
            plan = dict(base, **{dname: size})
            refused_alike(opened[name], corpus.bundle_feeds(case, bundle.manifest, plan, seed=3),
                          f"{name} {dname}={size} outside {d}")


@needs_node
def test_every_token_id_in_the_vocabulary_runs_and_the_first_beyond_it_is_refused_alike(exported, opened):
    bundle, model, names, case = exported["hf-bert"]
    vocab = model.inner.config.vocab_size
    spec = next(i for i in bundle.inputs if i["name"] == "input_ids")
    assert spec.get("value_range") == [0, vocab - 1], "the embedding table proves the id domain"
    feeds = corpus.bundle_feeds(case, bundle.manifest, {"batch": 1, "seq": 4}, seed=5)
    feeds["input_ids"][0, :2] = [0, vocab - 1]  # the random example never drew these ids
    ref = torch_answers(model, names, feeds)
    for rt_name, rt in opened["hf-bert"].items():
        assert_close(rt.run(feeds)[names[0]], ref[names[0]], f"ids 0 and {vocab - 1} in {rt_name}")
    feeds["input_ids"][0, 1] = vocab
    refused_alike(opened["hf-bert"], feeds, f"token id {vocab}")


def test_bert_seq_max_is_its_position_table(exported):
    bundle, model, _names, _case = exported["hf-bert"]
    assert bundle.dims["seq"].get("max") == model.inner.config.max_position_embeddings
