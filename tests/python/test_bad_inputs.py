"""The bad-input catalogue (shared-schemas/bad-inputs.json, issue #11), Python's half: every case
whose ``where`` is manifest, python-api, wire, worker or cli ends in the error the catalogue names.
tests/js/bad-inputs.test.js runs the JS half (manifest, js-api, wire, worker, http) of the same file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polyonnx
from polyonnx import errors, wire
from polyonnx.bundle import Bundle

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import tiny_bundles  # noqa: E402

CATALOGUE = json.loads((ROOT / "shared-schemas" / "bad-inputs.json").read_text(encoding="utf-8"))["cases"]
PYTHON_SIDE = {"manifest", "python-api", "wire", "worker", "cli"}


def _cases(*wheres):
    return [pytest.param(c, id=c["case"]) for c in CATALOGUE
            if set([c["where"]] if isinstance(c["where"], str) else c["where"]) & set(wheres)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_bundles.build_all(tmp_path_factory.mktemp("tiny"))


def _error_class(name: str) -> type:
    return getattr(errors, name, None) or getattr(wire, name)


def _apply_patch(doc: dict, ops: list[dict]) -> dict:
    for op in ops:
        keys = [int(k) if k.isdigit() else k for k in op["path"].strip("/").split("/")]
        parent = doc
        for k in keys[:-1]:
            parent = parent[k]
        if op.get("delete"):
            del parent[keys[-1]]
        else:
            parent[keys[-1]] = op["value"]
    return doc


def make_bundle(spec: dict, tiny: dict, out: Path) -> Path:
    """A copy of a tiny bundle whose polyonnx.json (or model file) is changed as ``spec`` says."""
    src = tiny[spec["bundle"]]
    out.mkdir(parents=True)
    model = (src / "model.onnx").read_bytes()
    (out / "model.onnx").write_bytes(model)
    text = (src / "polyonnx.json").read_text(encoding="utf-8")
    if "patch" in spec:
        text = json.dumps(_apply_patch(json.loads(text), spec["patch"]), indent=2)
    if "patch_bytes_delta" in spec:
        doc = json.loads(text)
        doc["variants"]["fp32"]["bytes"] += spec["patch_bytes_delta"]
        text = json.dumps(doc, indent=2)
    if "text" in spec:
        text = spec["text"]
    if "replace" in spec:
        old, new = spec["replace"]
        assert old in text, f"the catalogue's replace target {old!r} is not in the manifest"
        text = text.replace(old, new)
    if "repeat" in spec:
        opener, n, closer = spec["repeat"]
        text = opener * n + text + closer * n
    text += spec.get("suffix", "")
    data = bytes.fromhex(spec.get("prefix_hex", "")) + text.encode(spec.get("encoding", "utf-8"))
    if "replace_bytes" in spec:
        old, new = (bytes.fromhex(h) for h in spec["replace_bytes"])
        assert old in data
        data = data.replace(old, new)
    (out / "polyonnx.json").write_bytes(data)
    if "fifo" in spec:
        (out / spec["fifo"]).unlink()
        os.mkfifo(out / spec["fifo"])
    return out


def _feeds(spec: dict) -> dict:
    out = {}
    for name, t in spec.items():
        shape = t["shape"]
        if "values" in t:
            out[name] = np.array(t["values"], dtype=t["dtype"]).reshape(shape)
        else:
            out[name] = np.full(shape, t["fill"], dtype=t["dtype"])
    return out


def _hex_bytes(value):
    """{"hex": ...} -> bytes, recursively: how the catalogue writes msgpack bin."""
    if isinstance(value, dict):
        return bytes.fromhex(value["hex"]) if set(value) == {"hex"} else {k: _hex_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_bytes(v) for v in value]
    return value


@pytest.mark.parametrize("case", _cases("manifest"))
def test_a_bad_bundle_raises_the_catalogued_error(case, tiny, tmp_path):
    folder = make_bundle(case["input"], tiny, tmp_path / "b")
    with pytest.raises(_error_class(case["expect"]["python"])):
        Bundle.load(folder).model_path(None, check=True)


@pytest.fixture(scope="module")
def embed_runtimes(tiny):
    """The embed bundle open in every runtime Python drives (one session each, for all cases)."""
    from polyonnx.runtimes import available

    opened = {}
    for name in ("python", "node", "wasm", "browser"):
        ok, why = available(name)
        if not ok:
            pytest.fail(f"{name} is not available here, so the contract cannot be checked in it: {why}")
        opened[name] = polyonnx.runtime(name, Bundle.load(tiny["embed"]), threads=1)
    yield opened
    for rt in opened.values():
        rt.close()


@pytest.mark.parametrize("runtime", ["python", "node", "wasm", "browser"])
@pytest.mark.parametrize("case", _cases("python-api"))
def test_bad_feeds_raise_the_catalogued_error_in_the_same_words_in_every_runtime(case, runtime, embed_runtimes):
    with pytest.raises(errors.PolyonnxError) as err:
        embed_runtimes[runtime].run(_feeds(case["input"]["feeds"]))
    if runtime == "python":
        assert isinstance(err.value, _error_class(case["expect"]["python"]))
    assert err.value.code == case["expect"]["js"]
    assert err.value.message == case["expect"]["message"]


def _decode_wire(inp: dict):
    if "frame_hex" in inp:
        return wire.decode_frame(bytes.fromhex(inp["frame_hex"]))
    if "stream_hex" in inp:
        return wire.FrameReader().push(bytes.fromhex(inp["stream_hex"]))
    return wire.decode_tensor(_hex_bytes(inp["tensor"]))


@pytest.mark.parametrize("case", _cases("wire"))
def test_a_bad_frame_or_tensor_raises_the_catalogued_error(case):
    with pytest.raises(_error_class(case["expect"]["python"])):
        _decode_wire(case["input"])


def test_every_worker_case_gets_its_catalogued_code_from_one_live_worker(tiny):
    cases = [c for c in CATALOGUE if c["where"] == "worker"]
    frames = b""
    for i, c in enumerate(cases):
        msg = _hex_bytes(c["input"]["message"])
        if isinstance(msg, dict):
            msg = {k: str(tiny["embed"]) if v == "$embed" else v for k, v in msg.items()}
            if "id" in msg:
                msg["id"] = i + 1
        frames += wire.encode_frame(msg)
    done = subprocess.run(["node", str(ROOT / "js" / "worker.mjs")], input=frames, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    reader = wire.FrameReader()
    answers = [wire.unpack(b) for b in reader.push(done.stdout)]
    assert len(answers) == len(cases) and reader.pending == 0
    got = {c["case"]: a["error"]["code"] if not a["ok"] else "ok" for c, a in zip(cases, answers)}
    assert got == {c["case"]: c["expect"]["code"] for c in cases}


@pytest.mark.parametrize("case", _cases("cli"))
def test_the_cli_exits_with_the_catalogued_status_and_no_traceback(case, tiny, tmp_path):
    args = list(case["input"]["args"])
    if "bundle" in case["input"]:
        folder = make_bundle(case["input"]["bundle"], tiny, tmp_path / "b")
        args = [str(folder) if a == "$bundle" else a for a in args]
    if "$file" in args:
        (tmp_path / "notes.txt").write_text("not a bundle")
        args = [str(tmp_path / "notes.txt") if a == "$file" else a for a in args]
    done = subprocess.run([sys.executable, "-m", "polyonnx", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == case["expect"]["exit"], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_the_catalogue_has_60_cases_or_more_across_every_kind_of_input():
    wheres = {w for c in CATALOGUE for w in ([c["where"]] if isinstance(c["where"], str) else c["where"])}
    assert len(CATALOGUE) >= 60 and len({c["case"] for c in CATALOGUE}) == len(CATALOGUE)
    assert wheres == PYTHON_SIDE | {"js-api", "http"}
