"""Hostile inputs (issue #11): each ends in a polyonnx error, never a foreign exception, a hang or a leak."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import polyonnx
from polyonnx import manifest
from polyonnx.bundle import Bundle
from polyonnx.errors import ManifestError, PolyonnxError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "shared-schemas" / "examples" / "valid" / "minimal.json"


def _bundle_with(tmp_path: Path, manifest_bytes: bytes) -> Path:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "polyonnx.json").write_bytes(manifest_bytes)
    return folder


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyonnx", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


# --- 3. the manifest loader raises only ManifestError ----------------------------------------------
HOSTILE_MANIFESTS = {
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "deeply-nested-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "invalid-utf8": MINIMAL.read_bytes().replace(b'"tiny_mlp"', b'"tiny\xff\xfemlp"'),
    "utf16": MINIMAL.read_text().encode("utf-16"),
    "utf8-bom": b"\xef\xbb\xbf" + MINIMAL.read_bytes(),
    "huge-integer": MINIMAL.read_bytes().replace(b'"bytes": 412', b'"bytes": ' + b"9" * 5000),
    "nan": MINIMAL.read_bytes().replace(b'"bytes": 412', b'"bytes": NaN'),
    "empty": b"",
    "not-an-object": b"[1, 2, 3]",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MANIFESTS))
def test_a_hostile_polyonnx_json_raises_a_manifest_error_and_nothing_else(tmp_path, case):
    folder = _bundle_with(tmp_path, HOSTILE_MANIFESTS[case])
    with pytest.raises(ManifestError) as err:
        Bundle.load(folder)
    assert err.value.stage == "load" and "polyonnx.json" in str(err.value)


@pytest.mark.parametrize("case", ["deeply-nested", "invalid-utf8", "utf16"])
def test_info_on_a_hostile_manifest_exits_2_with_the_error_not_a_traceback(tmp_path, case):
    folder = _bundle_with(tmp_path, HOSTILE_MANIFESTS[case])
    done = _cli("info", str(folder))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: load:"), done.stderr


def test_a_fifo_polyonnx_json_is_refused_without_blocking(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    os.mkfifo(folder / "polyonnx.json")
    with pytest.raises(ManifestError, match="not a regular file"):
        Bundle.load(folder)


# --- 4. Python accepts exactly what JS accepts -----------------------------------------------------
def test_an_integral_float_in_a_shape_reads_as_the_integer_js_reads():
    text = MINIMAL.read_text().replace('"shape": ["batch", 4]', '"shape": ["batch", 4.0]')
    assert '4.0' in text
    m = manifest.from_json(text)
    assert m["inputs"][0]["shape"] == ["batch", 4] and type(m["inputs"][0]["shape"][1]) is int


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_numbers_json_parse_cannot_read_are_refused(number):
    text = MINIMAL.read_text().replace('"bytes": 412', f'"bytes": {number}')
    with pytest.raises(ManifestError, match="not valid JSON"):
        manifest.from_json(text)


def test_a_non_finite_float_in_a_manifest_dict_is_a_problem():
    m = json.loads(MINIMAL.read_text())
    m["inputs"][0]["value_range"] = [0, float("inf")]
    assert any("inputs/0/value_range/1" in p and "finite" in p for p in manifest.problems(m))


@pytest.mark.parametrize("where", ["name", "variant", "dim", "file"])
def test_a_trailing_newline_is_refused_wherever_an_identifier_goes(where):
    m = json.loads(MINIMAL.read_text())
    if where == "name":
        m["name"] += "\n"
    elif where == "variant":
        m["variants"]["fp32\n"] = m["variants"].pop("fp32")
        m["default_variant"] = "fp32\n"
    elif where == "dim":
        m["dims"]["batch\n"] = m["dims"].pop("batch")
        m["inputs"][0]["shape"][0] = m["outputs"][0]["shape"][0] = "batch\n"
    else:
        m["variants"]["fp32"]["file"] += "\n"
    assert manifest.problems(m)


# --- 2. the demo server serves regular files inside the bundle, to loopback hosts only ---------------
def _raw_get(port: int, target: str, host: str | None = None, method: str = "GET") -> int:
    """The status line's code for one request, sent byte for byte (http.client would quote the target)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"{method} {target} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "Connection: close\r\n\r\n"
        s.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data, f"the server dropped the connection for {target!r}"
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def demo_server(tmp_path):
    from polyonnx._demo import DemoServer

    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "polyonnx.json").write_text(MINIMAL.read_text())
    server = DemoServer(folder).start()
    yield server, folder
    server.close()


def test_demo_refuses_a_bundle_file_that_is_a_link_out_of_the_bundle(demo_server, tmp_path):
    server, folder = demo_server
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (folder / "model.onnx").symlink_to(secret)
    host = f"127.0.0.1:{server.port}"
    assert _raw_get(server.port, "/bundle/polyonnx.json", host) == 200
    assert _raw_get(server.port, "/bundle/model.onnx", host) == 404


def test_demo_refuses_a_bundle_file_that_is_a_fifo_without_blocking(demo_server):
    server, folder = demo_server
    os.mkfifo(folder / "model.onnx")
    assert _raw_get(server.port, "/bundle/model.onnx", f"127.0.0.1:{server.port}") == 404


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}", None])
def test_demo_refuses_a_host_header_that_is_not_loopback_at_its_port(demo_server, host):
    server, _ = demo_server
    code = _raw_get(server.port, "/bundle/polyonnx.json", None if host is None else host.format(port=server.port))
    assert code in (400, 403, 421)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_demo_accepts_the_loopback_names_at_its_port(demo_server, host):
    server, _ = demo_server
    assert _raw_get(server.port, "/bundle/polyonnx.json", host.format(port=server.port)) == 200


@pytest.mark.parametrize("target", ["/demo/%00", "/bundle/%00", "/pkg/js/%00x", "/%00", "/demo/%ff%fe", "/demo/a%0ab",
                                    "/bundles/%00/polyonnx.json", "/ort/%2e%2e", "/demo/" + "a" * 5000])
def test_demo_answers_a_malformed_path_with_a_4xx(demo_server, target):
    server, _ = demo_server
    assert 400 <= _raw_get(server.port, target, f"127.0.0.1:{server.port}") < 500


# --- 10. bundles are readable by others as the umask says ----------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_written_bundle_folder_has_the_mode_the_umask_gives(tmp_path, umask_022):
    from polyonnx.bundle import staging_folder

    with staging_folder(tmp_path / "out", force=False) as tmp:
        (tmp / "polyonnx.json").write_text(MINIMAL.read_text())
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_a_rewritten_manifest_has_the_mode_the_umask_gives(tmp_path, umask_022):
    folder = _bundle_with(tmp_path, MINIMAL.read_bytes())
    bundle = Bundle.load(folder)
    bundle.save_manifest()
    assert stat.S_IMODE((folder / "polyonnx.json").stat().st_mode) == 0o644
    assert Bundle.load(folder).manifest == bundle.manifest


# --- 7. a worker that died while idle is replaced by the next call ----------------------------------
def _node_or_skip():
    from polyonnx import _node

    ok, why = _node.node_available()
    if not ok:
        pytest.skip(why)
    return _node


def _kill_and_wait(worker) -> int:
    import signal

    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    worker._proc.popen.wait(10)  # dead and idle: nobody is waiting for an answer
    return pid


def test_a_request_after_the_idle_worker_was_killed_starts_a_new_worker(tmp_path):
    _node = _node_or_skip()
    with _node.NodeWorker(timeout=60) as worker:
        first = worker.request("info")["pid"]
        assert _kill_and_wait(worker) == first
        assert worker.request("info")["pid"] not in (first, None)


def test_a_run_after_the_idle_worker_was_killed_reloads_and_answers(tmp_path):
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    import _parity_bundles as pb
    from polyonnx import runtimes

    _node = _node_or_skip()
    folder = pb.identity_bundle(tmp_path / "identity")
    feeds = pb.identity_feeds(2)
    with _node.NodeWorker(timeout=60) as worker:
        rt = runtimes.NodeRuntime(polyonnx.load(folder), worker=worker)
        before = rt.run(feeds)["y_float32"]
        _kill_and_wait(worker)
        after = rt.run(feeds)["y_float32"]
        assert after.tobytes() == before.tobytes() == feeds["x_float32"].tobytes()
        rt.close()


# --- 12. wire edge cases (Python side) ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**62, 4], [True, True], [1.0], [-1], [1] * 65, "ab", None])
def test_decode_tensor_with_an_impossible_shape_raises_a_wire_error(shape):
    from polyonnx import wire

    for n in (0, 1, 4):  # whatever count an overflowing or coerced product comes to
        with pytest.raises(wire.WireError):
            wire.decode_tensor({"dtype": "float32", "shape": shape, "data": b"\0" * (4 * n)})
        with pytest.raises(wire.WireError):
            wire.decode_tensor({"dtype": "string", "shape": shape, "data": ["a"] * n})


@pytest.mark.parametrize("dtype", ["constructor", "__proto__", ["float32"], None, 5])
def test_decode_tensor_with_an_unknown_dtype_raises_a_wire_error(dtype):
    from polyonnx import wire

    with pytest.raises(wire.WireError, match="unknown tensor dtype"):
        wire.decode_tensor({"dtype": dtype, "shape": [1], "data": b"\0" * 4})


def test_a_string_tensor_with_a_lone_surrogate_is_a_wire_error_not_a_unicode_error():
    import numpy as np

    from polyonnx import wire

    with pytest.raises(wire.WireError, match="element 1"):
        wire.encode_frame({"t": wire.encode_tensor(np.array(["ok", "a\ud800"], dtype=object))})


def test_an_absurd_but_consistent_shape_still_decodes():
    from polyonnx import wire

    a = wire.decode_tensor({"dtype": "float32", "shape": [0, 2**40], "data": b""})
    assert a.shape == (0, 2**40)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_demo_answers_a_write_method_with_405(demo_server, method):
    server, _ = demo_server
    assert _raw_get(server.port, "/bundle/polyonnx.json", f"127.0.0.1:{server.port}", method) == 405
