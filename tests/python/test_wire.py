"""polyonnx.wire against the language-neutral vectors in shared-schemas/vectors/.

tests/js/wire.test.js checks js/wire.js against the same files, so a frame one side writes is
a frame the other side reads.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from polyonnx import wire

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "shared-schemas" / "vectors"
TENSORS = json.loads((VECTORS / "tensors.json").read_text(encoding="utf-8"))["cases"]
MESSAGES = json.loads((VECTORS / "messages.json").read_text(encoding="utf-8"))
SCHEMA = json.loads((ROOT / "shared-schemas" / "wire.schema.json").read_text(encoding="utf-8"))
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def expected_array(case: dict) -> np.ndarray:
    """The case's values as numpy, built the plain way (C order, native byte order)."""
    dtype = case["dtype"]
    if dtype == "string":
        return np.array(case["values"], dtype=object).reshape(case["shape"])
    vals = [int(v) if dtype in ("int64", "uint64") else SPECIAL.get(v, v) if isinstance(v, str) else v
            for v in case["values"]]
    return np.array(vals, dtype=wire.NUMPY_DTYPES[dtype].newbyteorder("=")).reshape(case["shape"])


def source_array(case: dict) -> np.ndarray:
    """The array the Python caller hands over: a strided view or big-endian where the case says so."""
    src = case.get("python_source")
    if not src:
        return expected_array(case)
    if "byteorder" in src:
        arr = expected_array(case)
        return arr.astype(arr.dtype.newbyteorder(src["byteorder"]))
    base = np.array(src["values"], dtype=wire.NUMPY_DTYPES[case["dtype"]]).reshape(src["shape"])
    if "transpose" in src:
        return base.transpose(src["transpose"])
    return base[:: src["step"]]


def unhex(obj):
    if isinstance(obj, dict):
        if set(obj) == {"$hex"}:
            return bytes.fromhex(obj["$hex"])
        return {k: unhex(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unhex(v) for v in obj]
    return obj


@pytest.mark.parametrize("case", TENSORS, ids=[c["name"] for c in TENSORS])
def test_encoding_a_tensor_gives_the_vector_frame(case):
    arr = source_array(case)
    if case.get("python_source", {}).get("byteorder"):
        assert arr.dtype.byteorder == ">"
    elif case.get("python_source"):
        assert not arr.flags.c_contiguous
    assert wire.encode_frame(wire.encode_tensor(arr)).hex() == case["frame_hex"]


@pytest.mark.parametrize("case", TENSORS, ids=[c["name"] for c in TENSORS])
def test_decoding_the_vector_frame_gives_the_values_bit_for_bit(case):
    arr = wire.decode_tensor(wire.decode_frame(bytes.fromhex(case["frame_hex"])))
    want = expected_array(case)
    assert arr.shape == want.shape
    assert arr.dtype == want.dtype
    if case["dtype"] == "string":
        assert arr.tolist() == want.tolist()
        return
    assert arr.flags.writeable and arr.dtype.isnative
    assert arr.tobytes() == want.tobytes()
    assert arr.astype(arr.dtype.newbyteorder("<")).tobytes().hex() == case["data_hex"]


def test_vector_files_are_what_make_vectors_writes():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for fname, make in mod.FILES.items():
        assert (VECTORS / fname).read_text(encoding="utf-8") == mod.render(make()), (
            f"{fname} is stale: run .venv/bin/python shared-schemas/vectors/make_vectors.py")


def test_wire_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@pytest.mark.parametrize("vec", MESSAGES["valid"], ids=[v["name"] for v in MESSAGES["valid"]])
def test_valid_message_passes_the_schema_and_encodes_to_the_vector_frame(vec):
    msg = unhex(vec["message"])
    VALIDATOR.validate(msg)
    assert wire.encode_frame(msg).hex() == vec["frame_hex"]
    assert wire.decode_frame(bytes.fromhex(vec["frame_hex"])) == msg


@pytest.mark.parametrize("vec", MESSAGES["invalid"], ids=[v["why"] for v in MESSAGES["invalid"]])
def test_invalid_message_is_rejected_by_the_schema(vec):
    assert not VALIDATOR.is_valid(unhex(vec["message"]))


def test_results_in_the_vectors_match_their_result_schemas():
    defs = {"load_response": "load_result", "run_response": "run_result"}
    for vec in MESSAGES["valid"]:
        if vec["name"] in defs:
            sub = {"$ref": f"#/$defs/{defs[vec['name']]}", "$defs": SCHEMA["$defs"]}
            jsonschema.Draft202012Validator(sub).validate(unhex(vec["message"])["result"])


def test_frame_reader_splits_a_stream_fed_one_byte_at_a_time():
    frames = [bytes.fromhex(c["frame_hex"]) for c in TENSORS]
    reader, bodies = wire.FrameReader(), []
    for b in b"".join(frames):
        bodies += reader.push(bytes([b]))
    assert bodies == [f[4:] for f in frames]
    assert reader.pending == 0


def test_read_frame_reads_frames_then_none_at_end_of_stream():
    stream = io.BytesIO(wire.encode_frame({"id": 1}) + wire.encode_frame({"id": 2}))
    assert wire.unpack(wire.read_frame(stream)) == {"id": 1}
    assert wire.unpack(wire.read_frame(stream)) == {"id": 2}
    assert wire.read_frame(stream) is None


def test_printed_text_in_the_stream_is_named_as_such():
    with pytest.raises(wire.WireError, match="printed text"):
        wire.read_frame(io.BytesIO(b"hello from a library\n"))


def test_a_4mb_tensor_round_trips_through_a_frame():
    arr = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    back = wire.decode_tensor(wire.decode_frame(wire.encode_frame(wire.encode_tensor(arr))))
    np.testing.assert_array_equal(back, arr)


def test_decode_rejects_data_that_does_not_fit_the_shape():
    with pytest.raises(wire.WireError, match="needs 12 bytes, got 8"):
        wire.decode_tensor({"dtype": "float32", "shape": [3], "data": b"\0" * 8})


def test_encode_rejects_a_dtype_javascript_cannot_hold():
    with pytest.raises(wire.WireError, match="complex64"):
        wire.encode_tensor(np.zeros(2, dtype=np.complex64))


def test_bool_bytes_other_than_0_and_1_decode_as_true():
    arr = wire.decode_tensor({"dtype": "bool", "shape": [3], "data": b"\x00\x02\xff"})
    assert arr.tolist() == [False, True, True]
