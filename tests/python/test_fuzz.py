"""Property-based fuzzing (issue #11): the manifest loader, the wire codec and feed checking end in
polyonnx's own errors, never a foreign exception, a hang or unbounded memory; and Python and JS
accept and refuse the same mutated manifests.

CI runs a few hundred cases per target with fixed seeds (derandomized hypothesis). The long run
(``bench/fuzz.py``) sets POLYONNX_FUZZ_LONG=1 for >= 10,000 manifests and frames and >= 2,000
feeds, and POLYONNX_FUZZ_REPORT=DIR to receive the counts as JSON.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from polyonnx import wire
from polyonnx.bundle import Bundle
from polyonnx.errors import PolyonnxError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import fuzz_mutations as mut  # noqa: E402
import tiny_bundles  # noqa: E402

LONG = os.environ.get("POLYONNX_FUZZ_LONG") == "1"
COUNTS = {"manifests": 10_000, "frames": 10_000, "feeds": 2_000} if LONG else \
    {"manifests": 300, "frames": 500, "feeds": 150}
SEED = 20261130
CASE_SECONDS = 20  # one case taking this long is a hang
MEMORY_BOUND = 512 << 20  # peak RSS may grow this much over a whole target, no more


def _settings(n: int):
    return settings(max_examples=n, deadline=None, database=None, derandomize=False, print_blob=True,
                    suppress_health_check=list(HealthCheck))


class Hang(Exception):
    pass


@contextmanager
def _bounded(seconds: int = CASE_SECONDS):
    def alarm(*_):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Tally:
    """Outcome counts for one fuzz target; foreign exceptions and hangs keep their first examples."""

    def __init__(self, target: str):
        self.target = target
        self.counts = Counter()
        self.foreign: list[str] = []
        self.rss0 = _peak_rss()

    def run(self, fn, *args) -> str:
        """fn(*args) -> 'ok', the polyonnx error code it raised, 'hang' or 'foreign'."""
        try:
            with _bounded():
                fn(*args)
            outcome = "ok"
        except Hang as e:
            outcome = "hangs"
            self.foreign.append(f"hang: {e} on {args!r:.300}")
        except PolyonnxError as e:
            outcome = e.code
        except Exception as e:  # the point of the test: anything else is a bug
            outcome = "foreign"
            self.foreign.append(f"{type(e).__name__}: {e!s:.200} on {args!r:.300}")
        self.counts[outcome] += 1
        return outcome

    def finish(self, extra: dict | None = None) -> dict:
        growth = max(0, _peak_rss() - self.rss0)
        report = {"target": self.target, "language": "python", "cases": sum(self.counts.values()),
                  "counts": dict(self.counts), "foreign_examples": sorted({f[:160] for f in self.foreign})[:8],
                  "peak_rss_growth": growth,
                  **(extra or {})}
        out = os.environ.get("POLYONNX_FUZZ_REPORT")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / f"python-{self.target}.json").write_text(json.dumps(report, indent=1))
        assert not self.foreign, f"{self.target}: {self.counts['foreign']} foreign exceptions, " \
                                 f"{self.counts['hangs']} hangs; first: {self.foreign[:3]}"
        assert growth < MEMORY_BOUND, f"{self.target}: peak RSS grew {growth >> 20} MB"
        return report


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_bundles.build_all(tmp_path_factory.mktemp("tiny"))


# --- manifests: Python alone, then the same corpus through JS ------------------------------------
def _load_bundle(path: Path):
    b = Bundle.load(path)
    b.model_path(None, check=True)
    return b


def test_mutated_manifests_end_in_polyonnx_errors_and_js_agrees_on_every_one(tmp_path, tiny):
    """Each mutated polyonnx.json, beside a real model file, is loaded as a bundle (manifest and the
    default variant's size/sha256) by Python here and by js/bundle-node.mjs in one Node process; the two
    must accept and refuse exactly the same files."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "model.onnx").write_bytes((tiny["embed"] / "model.onnx").read_bytes())
    seeds = mut.valid_manifests([tiny["embed"] / "polyonnx.json"] * 4)  # mostly the one with real files
    tally = Tally("manifests")
    verdicts = []

    @_settings(COUNTS["manifests"])
    @seed(SEED)
    @given(st.integers(0, 2**64 - 1))
    def prop(case_seed):
        rng = random.Random(case_seed)
        path = corpus / f"m{len(verdicts):05d}.json"
        path.write_bytes(mut.mutated_manifest(rng, seeds))
        outcome = tally.run(_load_bundle, path)
        verdicts.append((path.name, "accept" if outcome == "ok" else outcome))

    prop()
    py = {name: verdict for name, verdict in verdicts}
    js = _js_verdicts(corpus, sorted(py))
    disagreements = [(n, py[n], js[n]) for n in sorted(py) if (py[n] == "accept") != (js[n]["verdict"] == "accept")]
    js_foreign = [(n, js[n]) for n in sorted(js) if js[n]["verdict"] == "foreign"]
    accepted = sum(v == "accept" for v in py.values())
    tally.finish({"disagreements": len(disagreements), "accepted": accepted,
                  "js_cases": len(js), "js_foreign": len(js_foreign),
                  "disagreement_examples": [(n, (corpus / n).read_bytes()[:400].decode("latin-1"), p, j)
                                            for n, p, j in disagreements[:3]]})
    assert not js_foreign, f"JS raised non-polyonnx errors: {js_foreign[:3]}"
    assert not disagreements, f"{len(disagreements)} accept/reject disagreements, first: {disagreements[:3]}"
    assert 0 < accepted < len(py), "the mutations should leave some manifests valid and break others"


def _js_verdicts(corpus: Path, names: list[str]) -> dict:
    done = subprocess.run(["node", str(ROOT / "tests" / "js" / "fuzz" / "manifest-verdicts.js"), str(corpus)],
                          input="\n".join(names), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# --- the wire codec ----------------------------------------------------------------------------
def _decode_everything(frame: bytes, split: int):
    """What the client does with bytes from the worker: split frames, unpack, decode any tensors."""
    reader = wire.FrameReader()
    bodies = reader.push(frame[:split]) + reader.push(frame[split:])
    if len(frame) >= wire.HEADER.size:
        try:
            wire.decode_frame(frame)
        except PolyonnxError:
            pass
    for body in bodies:
        msg = wire.unpack(body)
        if isinstance(msg, dict):
            for field in ("feeds", "outputs", "tensors"):
                if isinstance(msg.get(field), dict):
                    wire.decode_tensors(msg[field])
            result = msg.get("result")
            if isinstance(result, dict) and isinstance(result.get("outputs"), dict):
                wire.decode_tensors(result["outputs"])


_TENSOR_PARTS = {
    "dtype": st.sampled_from(list(wire.DTYPES) + ["constructor", "__proto__", "float", "", "INT64"]) | st.integers(),
    "shape": st.lists(st.integers(-2, 2**33) | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=2),
                      max_size=6) | st.integers() | st.none(),
    "data": st.binary(max_size=64) | st.lists(st.text(max_size=4) | st.integers(), max_size=8) | st.none(),
}


def test_mutated_frames_and_tensors_end_in_wire_errors():
    seeds = mut.valid_frames()
    tally = Tally("frames")

    @_settings(COUNTS["frames"])
    @seed(SEED)
    @given(st.integers(0, 2**64 - 1), st.integers(0, 64), st.fixed_dictionaries(_TENSOR_PARTS))
    def prop(case_seed, split, tensor):
        frame = mut.mutated_frame(random.Random(case_seed), seeds)
        tally.run(_decode_everything, frame, split)
        tally.run(wire.decode_tensor, tensor)
        tally.run(wire.encode_frame, {"id": 1, "op": "run", "feeds": {"x": tensor}})

    prop()
    report = tally.finish()
    assert report["counts"].get("E_WIRE", 0) > 0 and report["counts"].get("ok", 0) > 0


# --- feeds in the python runtime ----------------------------------------------------------------
# Regressions the fuzzer found (fixed in feeds.as_arrays): ragged lists (ValueError from
# np.asarray) and str arrays for an input with a value_range (numpy's UFuncTypeError).
_NUMPY_DTYPES = ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool", "uint64", "object"]
_VALUES = st.sampled_from([0, 1, 3, 9, 10, -1, 2**31, 2**63 - 1, -(2**63), 0.5, float("nan"), float("inf"), -0.0, 1e30])


@st.composite
def _feed(draw, default_shape, dtype, legal):
    kind = draw(st.sampled_from(["legal", "legal", "array", "array", "array", "list", "scalar", "junk"]))
    if kind == "legal":
        return np.full(default_shape, draw(st.sampled_from(legal)), dtype=dtype)
    if kind == "junk":
        return draw(st.sampled_from([None, "ids", {"dtype": "int64"}, [[[]]], b"\x00\x01", object()]))
    shape = draw(st.sampled_from([default_shape, [0, 4], [1, 0], [9, 4], [2, 3], [1, 68], [1], [1, 1, 1], []]) |
                 st.lists(st.integers(0, 9), max_size=3))
    values = draw(st.lists(_VALUES, min_size=1, max_size=4))
    count = int(np.prod(shape)) if shape else 1
    flat = [values[i % len(values)] for i in range(count)]
    if kind == "list":
        return np.array(flat, dtype=object).reshape(shape).tolist() if shape else values[0]
    if kind == "scalar":
        return values[0]
    dtype = draw(st.sampled_from(_NUMPY_DTYPES))
    with np.errstate(all="ignore"):
        try:
            return np.array(flat, dtype=np.float64 if dtype == "<U3" else object).astype(dtype).reshape(shape)
        except (ValueError, OverflowError, TypeError):
            return np.zeros(shape, dtype=dtype)


def test_hostile_feeds_to_the_python_runtime_end_in_polyonnx_errors(tiny):
    import polyonnx

    rt = polyonnx.runtime("python", Bundle.load(tiny["embed"]), threads=1)
    tally = Tally("feeds")
    names = st.sampled_from([("ids", "x")] * 6 + [("ids",), ("ids", "x", "extra")])

    @_settings(COUNTS["feeds"])
    @seed(SEED)
    @given(names, _feed([1, 3], np.int64, [0, 5, 9]), _feed([1, 8], np.float32, [-1.5, 0.0, 2.0]))
    def prop(which, ids, x):
        feeds = dict(zip(which, [ids, x, x]))
        tally.run(rt.run, feeds)

    prop()
    report = tally.finish()
    assert report["counts"].get("E_FEED", 0) > 0 and report["counts"].get("ok", 0) > 0


def test_a_ragged_list_feed_is_a_feed_error_in_the_python_runtime(tiny):
    import polyonnx

    rt = polyonnx.runtime("python", Bundle.load(tiny["embed"]), threads=1)
    with pytest.raises(PolyonnxError):
        rt.run({"ids": [[1], [1, 2]], "x": np.zeros((1, 8), np.float32)})


def test_a_str_array_for_an_int64_input_is_a_feed_error_in_the_python_runtime(tiny):
    import polyonnx

    rt = polyonnx.runtime("python", Bundle.load(tiny["embed"]), threads=1)
    with pytest.raises(PolyonnxError):
        rt.run({"ids": np.array([["1", "2", "3"]]), "x": np.zeros((1, 8), np.float32)})


def test_a_python_wire_error_has_the_code_js_gives_it():
    # Found by the frames fuzzer: Python's WireError said E_POLYONNX where js/wire.js says E_WIRE.
    with pytest.raises(wire.WireError) as err:
        wire.decode_frame(b"\x01\x00")
    assert err.value.code == "E_WIRE"
