"""The browser runtime in real Chromium: parity with ONNX Runtime Python, the demo page, the commands.

Needs Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it). Without it these
tests fail, naming the install command: a browser runtime that was never run is not tested.
One Chromium (and one demo server) serves the whole module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import polyonnx
from polyonnx import compare
from polyonnx.feeds import make_feeds

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PARITY_BUNDLES = ("digits_cnn", "text_transformer")


@pytest.fixture(scope="module")
def browser():
    """The browser module, once Chromium is known to be there (a failure names the install command)."""
    from polyonnx import _browser

    try:
        _browser.find_chromium()
    except _browser.BrowserNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    yield _browser
    _browser.shutdown()


def _feed_sets(bundle) -> list[dict]:
    """Feeds at the example sizes and at the largest verified sizes (two different shapes)."""
    dims = {d: v for d, v in bundle.dims.items() if not v.get("derived")}
    example = {d: v["example"] for d, v in dims.items()}
    largest = {d: max(v["verified"]) for d, v in dims.items()}
    return [make_feeds(bundle.inputs, example, seed=11), make_feeds(bundle.inputs, largest, seed=12)]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
@pytest.mark.parametrize("name", PARITY_BUNDLES)
def test_browser_outputs_match_onnxruntime_python_within_the_browser_tolerance(browser, example_bundles, name, variant):
    from polyonnx.manifest import variant_kind

    bundle = polyonnx.load(example_bundles / name)
    kind = variant_kind(bundle.variant(variant))
    tol = compare.tolerance(kind, "browser")
    with polyonnx.runtime("python", bundle, variant) as ref, browser.BrowserRuntime(bundle, variant) as rt:
        assert rt.info["runtime"]["package"] == "onnxruntime-web"
        for feeds in _feed_sets(bundle):
            got = rt.run(feeds)
            want = ref.run(feeds)
            result, ok = compare.compare_outputs(got, want, bundle.outputs, tol)
            assert ok, f"{name} {variant} in the browser vs ONNX Runtime Python: {json.dumps(result)} (tolerance {tol})"


def test_browser_runtime_uses_two_threads_when_asked_on_an_isolated_page(browser, example_bundles):
    with browser.BrowserRuntime(example_bundles / "digits_cnn", "fp32", threads=2) as rt:
        threads = rt.info["threads"]
        assert threads["crossOriginIsolated"] is True  # the demo server sends COOP/COEP
        assert threads["count"] == min(2, threads["hardwareConcurrency"])


def test_feed_and_integrity_errors_come_back_from_the_page_with_their_js_codes(browser, example_bundles, tmp_path):
    from polyonnx._node import WorkerIntegrityError, WorkerRequestError

    with browser.BrowserRuntime(example_bundles / "digits_cnn", "fp32") as rt:
        with pytest.raises(WorkerRequestError) as err:
            rt.run({"pixels": np.zeros((1, 1, 8, 4), np.float32)})
        assert err.value.code == "E_FEED" and "axis 3" in str(err.value) and str(err.value).startswith("browser ")
    copy = tmp_path / "digits_cnn"
    shutil.copytree(example_bundles / "digits_cnn", copy)
    manifest = json.loads((copy / "polyonnx.json").read_text())
    model = copy / manifest["variants"]["fp32"]["file"]
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(WorkerIntegrityError) as err:
        browser.BrowserRuntime(copy, "fp32")
    assert err.value.code == "E_INTEGRITY" and "sha256" in str(err.value)


def test_verify_runs_the_browser_like_any_other_runtime(browser, example_bundles):
    from polyonnx import runtimes, verify

    assert runtimes.RUNTIMES["browser"] is browser.BrowserRuntime
    checks, _ = verify.run_parity(example_bundles / "digits_cnn", runtimes=["python", "browser"], variants=["fp32"])
    mine = [c for c in checks if c["runtime"] == "browser"]
    assert mine and all(c["passed"] for c in mine), mine


# --- the demo page: draw a held-out digit ----------------------------------------------------------
def _strokes_for(image: np.ndarray, ink: float = 6.0) -> list[list[tuple[float, float]]]:
    """Pen strokes that trace an 8x8 digit (values 0..16), in fractions of the pad: one straight
    stroke along each maximal run of ink cells in a row, a column or a diagonal, a dot for a cell
    in no run. Few strokes, because headless Chromium takes each mouse event at a frame (~17-35 ms)."""
    on = image >= ink
    at = lambda r, c: (0.12 + 0.76 * (c + 0.5) / 8, 0.08 + 0.84 * (r + 0.5) / 8)  # noqa: E731
    inside = lambda r, c: 0 <= r < 8 and 0 <= c < 8 and on[r, c]  # noqa: E731
    strokes, covered = [], np.zeros_like(on)
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for r in range(8):
            for c in range(8):
                if not inside(r, c) or inside(r - dr, c - dc):
                    continue  # not the start of a run in this direction
                n = 1
                while inside(r + n * dr, c + n * dc):
                    n += 1
                # A diagonal step that an L of row and column cells already joins adds nothing.
                if dr and dc and n == 2 and (inside(r, c + dc) or inside(r + 1, c)):
                    continue
                if n >= 2:
                    strokes.append([at(r, c), at(r + (n - 1) * dr, c + (n - 1) * dc)])
                    for k in range(n):
                        covered[r + k * dr, c + k * dc] = True
    strokes += [[at(r, c)] for r in range(8) for c in range(8) if on[r, c] and not covered[r, c]]
    return strokes


def test_drawing_a_held_out_digit_predicts_what_onnxruntime_python_predicts_for_the_same_8x8(browser, example_bundles):
    from sklearn.datasets import load_digits

    from polyonnx._demo import DIGITS_HELD_OUT, DemoServer

    bundle = polyonnx.load(example_bundles / "digits_cnn")
    digits = load_digits()
    # One held-out digit per class, the first of each in the held-out tail.
    tail = range(len(digits.images) - DIGITS_HELD_OUT, len(digits.images))
    picks = [next(i for i in tail if digits.target[i] == k) for k in range(10)]
    server = DemoServer(bundle).start()
    refs = {v: polyonnx.runtime("python", bundle, v) for v in bundle.variants}
    try:
        page = browser.Page(server.url("/"), wait='body[data-ready="1"]')
        correct = 0
        for i in picks:
            page.eval("() => document.getElementById('clear').click()")
            page.draw("#pad", _strokes_for(digits.images[i]), steps=2)
            state = page.eval("async () => { await window.polyonnxDemo.settled(); return window.polyonnxDemo.state(); }")
            counts = np.array(state["counts"], dtype=np.float32)
            assert counts.shape == (64,) and counts.min() >= 0 and counts.max() <= 16
            pixels = (counts / 16.0).reshape(1, 1, 8, 8)
            for variant, rt in refs.items():
                logits = rt.run({"pixels": pixels})["logits"]
                shown = state["predictions"][variant]
                assert shown["class"] == int(np.argmax(logits)), (i, variant, shown, logits)
                tol = compare.tolerance("fp32" if variant == "fp32" else "int8", "browser")
                m = compare.metrics(np.array([shown["logits"]], np.float32), logits, class_axis=1)
                assert compare.passes(m, tol, logits), (i, variant, m)
            correct += state["predictions"]["fp32"]["class"] == digits.target[i]
            if i == picks[3]:
                page.screenshot(ARTIFACTS / "demo-digits.png")
        # The strokes are a rough tracing of each digit, so not every one must be read right; most
        # must, or the page's preprocessing does not match the training data's.
        assert correct >= 8, f"only {correct}/10 traced held-out digits were recognised"
    finally:
        for rt in refs.values():
            rt.close()
        server.close()
    assert (ARTIFACTS / "demo-digits.png").stat().st_size > 10_000


# --- the commands ------------------------------------------------------------------------------------
def test_demo_command_serves_the_page_with_isolation_headers_and_only_bundle_files(example_bundles):
    # The CLI as a user runs it; 'demo' is registered here too in case cli.py does not list it yet.
    launcher = ("import sys; from polyonnx import cli; "
                "cli.COMMANDS.setdefault('demo', ('polyonnx._cmd_demo', 'the bundle in a browser page')); "
                "sys.exit(cli.main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", launcher, "demo", str(example_bundles / "digits_cnn")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
        base = url.group(0)
        with urllib.request.urlopen(base) as r:
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert b'"polyonnx": "/pkg/js/browser.mjs"' in r.read()
        with urllib.request.urlopen(base + "bundle/polyonnx.json") as r:
            assert json.loads(r.read())["name"] == "digits_cnn"
        with urllib.request.urlopen(base + "ort/ort.wasm.min.mjs") as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
        for path in ("bundle/../../pyproject.toml", "bundle/SOURCE", "pkg/pyproject.toml", "pkg/node_modules/ajv/package.json"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + path)
            assert err.value.code == 404, path
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_view_command_serves_the_checked_variant_with_netron(example_bundles):
    pytest.importorskip("netron", reason="Netron is the optional 'view' extra: pip install 'polyonnx[view]'")
    from polyonnx._cmd_view import start

    url = start(example_bundles / "digits_cnn", "int8")
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url) as r:
        assert r.status == 200 and b"<html" in r.read(400).lower()


def test_view_command_refuses_a_variant_the_bundle_does_not_have(example_bundles):
    pytest.importorskip("netron")
    from polyonnx._cmd_view import start

    with pytest.raises(polyonnx.PolyonnxError, match="int4"):
        start(example_bundles / "digits_cnn", "int4")
