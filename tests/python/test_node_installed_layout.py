"""The Node worker as a pip-installed polyonnx runs it: js/ inside the Python package, with no
node_modules above it, and the worker's npm packages in another folder named by NODE_PATH
(``python -m polyonnx setup-node``). ES module imports ignore NODE_PATH, so every bare package the
worker's module graph loads (@msgpack/msgpack, onnxruntime-node, onnxruntime-web) must go through
require(); this runs the worker from such a copy, on both backends, against ONNX Runtime Python.
The copy's packages folder is this checkout's node_modules (the same pins setup-node installs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from polyonnx import _node, wire

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "build" / "test-bundles" / "digits_cnn"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A copy laid out as the wheel lays it out (polyonnx/{js,shared-schemas,package.json})."""
    if not (ROOT / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail(f"no {ROOT / 'node_modules'}: run `{_node.REPO_INSTALL}` in {ROOT}")
    if not BUNDLE.is_dir():
        pytest.fail(f"no {BUNDLE}: run `.venv/bin/python tests/make_bundles.py build/test-bundles`")
    site = tmp_path_factory.mktemp("site-packages") / "polyonnx"
    shutil.copytree(ROOT / "js", site / "js", ignore=shutil.ignore_patterns("demo"))
    shutil.copytree(ROOT / "shared-schemas", site / "shared-schemas")
    shutil.copy(ROOT / "package.json", site / "package.json")
    return _node.JsPackage(js_dir=site / "js", modules=ROOT / "node_modules", clone=False)


def _run(worker, backend: str, pixels: np.ndarray) -> np.ndarray:
    loaded = worker.request("load", bundle=str(BUNDLE), backend=backend)
    out = worker.request("run", session=loaded["session"], feeds=wire.encode_tensors({"pixels": pixels}))
    worker.request("close", session=loaded["session"])
    return wire.decode_tensors(out["outputs"])["logits"]


def test_the_installed_worker_resolves_its_packages_through_node_path_and_matches_onnxruntime_python(installed):
    import onnxruntime as ort

    assert "node_modules" not in {p.name for p in installed.js_dir.parents}, "the copy must have no node_modules above it"
    assert installed.env()["NODE_PATH"].split(":")[0] == str(ROOT / "node_modules")
    pixels = np.linspace(0, 1, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    manifest = json.loads((BUNDLE / "polyonnx.json").read_text())
    file = BUNDLE / manifest["variants"][manifest["default_variant"]]["file"]
    reference = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"]).run(["logits"], {"pixels": pixels})[0]
    worker = _node.NodeWorker(js=installed, backends=("node", "wasm"))
    try:
        info = worker.request("info")
        pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
        assert info["versions"]["@msgpack/msgpack"] == pins["@msgpack/msgpack"]
        for backend in ("node", "wasm"):
            got = _run(worker, backend, pixels)
            assert got.shape == reference.shape
            # The runtime's fp32 tolerance (shared-schemas/tolerances.json): max_abs within
            # atol + rtol * max|reference|.
            tol = json.loads((ROOT / "shared-schemas" / "tolerances.json").read_text())["checks"]["fp32"][backend]
            bound = tol["atol"] + tol["rtol"] * float(np.abs(reference).max())
            assert float(np.abs(got - reference).max()) <= bound, backend
    finally:
        worker.close()
