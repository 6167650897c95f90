"""Mutations for the fuzz tests (issue #11), driven by a ``random.Random`` seeded by an integer that
hypothesis draws, so every case is reproducible from the test's seed (st.randoms() made hypothesis
report FlakyStrategyDefinition on replays with thousands of draws per case).

Manifests are mutated as data (a value replaced, a key dropped or added, a string or number
nudged to an edge) and as text (bytes flipped, truncated, numbers JSON cannot hold, other
encodings, deep nesting). Frames are mutated as bytes around the shared wire vectors.
"""

from __future__ import annotations

import copy
import json
import random
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Values that sit on an edge somewhere in the schema or in one of the two JSON readers.
EDGE_VALUES = [
    0, 1, -1, 2, 7, 2**31, 2**32, 2**53, 2**53 + 1, 2**63, 2**64, 10**30, -(2**53), 0.5, 1.5, -0.0, 1e308, 4.0,
    True, False, None, "", " ", "x", "x\n", "\n", "a/b", "..", ".", "../model.onnx", "/etc/passwd", "model.onnx",
    "model.onnx\n", "é", "\u2028", "\ud800", "\x00", "NaN", "batch", "float32", "int64", "float16", "string",
    "none", "fp32", "__proto__", "constructor", "toString", "0" * 64, "f" * 64, "F" * 64,
    [], [0], [0, 1], [1, 0], ["batch"], [0.5, 99], {}, {"min": 0}, {"method": "none"}, {"__proto__": 1},
]
STRING_EDITS = [
    lambda s: s + "\n", lambda s: "\n" + s, lambda s: s + " ", lambda s: s.upper(), lambda s: "", lambda s: s * 40,
    lambda s: s + "/x", lambda s: "../" + s, lambda s: s + "\ud800", lambda s: s + "\x00", lambda s: s + "é",
    lambda s: s + "\u0130", lambda s: s[:-1], lambda s: s + "$", lambda s: "-" + s,
]
NUMBER_EDITS = [
    lambda n: n + 1, lambda n: n - 1, lambda n: -n, lambda n: 0, lambda n: n + 0.5, lambda n: float(n),
    lambda n: n * 2**40, lambda n: 2**53 + 1, lambda n: 1e308, lambda n: str(n), lambda n: bool(n),
]
TEXT_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1E2", b"-0", b"0.0", b"1.0", b"1e-400",
                b"01", b"+1", b".5", b"0x10", b"1_000", b"9" * 400]


def valid_manifests(extra: list[Path] = ()) -> list[bytes]:
    """The shared valid examples (and any manifests given) as bytes: the seeds to mutate."""
    paths = sorted((ROOT / "shared-schemas" / "examples" / "valid").glob("*.json")) + list(extra)
    return [p.read_bytes() for p in paths]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _get(value, path):
    for p in path:
        value = value[p]
    return value


def _mutate_data(rng: random.Random, doc):
    paths = list(_paths(doc))
    path = rng.choice(paths)
    if not path:
        return rng.choice(EDGE_VALUES + [[doc], {"m": doc}])
    parent, key = _get(doc, path[:-1]), path[-1]
    value = parent[key]
    op = rng.randrange(7)
    if op == 0:
        parent[key] = copy.deepcopy(rng.choice(EDGE_VALUES))
    elif op == 1:
        del parent[key]
    elif op == 2 and isinstance(value, str):
        parent[key] = rng.choice(STRING_EDITS)(value)
    elif op == 2 and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = rng.choice(NUMBER_EDITS)(value)
    elif op == 3 and isinstance(parent, dict):
        new_key = rng.choice(["extra", key + "\n", key.upper(), "__proto__", "", "x" * 200])
        parent[new_key] = copy.deepcopy(value)
    elif op == 4 and isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(rng.choice(parent)))
    elif op == 5 and isinstance(value, dict) and value:
        # Rename one key: variants and dims are keyed by name, so names and references drift apart.
        k = rng.choice(list(value))
        value[rng.choice(STRING_EDITS)(k)] = value.pop(k)
    else:
        parent[key] = copy.deepcopy(rng.choice(EDGE_VALUES))
    return doc


def _serialize(rng: random.Random, doc) -> bytes:
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
    # surrogatepass: a lone surrogate written raw is invalid UTF-8, which both readers must refuse.
    return text.encode("utf-8", "surrogatepass")


def _mutate_text(rng: random.Random, data: bytes) -> bytes:
    op = rng.randrange(10)
    if op == 0 and data:
        return data[: rng.randrange(len(data))]
    if op == 1 and data:
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if op == 2:
        i = rng.randrange(len(data) + 1)
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4))) + data[i:]
    if op == 3:
        digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39 and not (0x30 <= data[i - 1] <= 0x39)]
        if digits:
            i = rng.choice(digits)
            j = i
            while j < len(data) and (0x30 <= data[j] <= 0x39 or data[j] in b".eE+-"):
                j += 1
            return data[:i] + rng.choice(TEXT_NUMBERS) + data[j:]
    if op == 4:
        return b"\xef\xbb\xbf" + data
    if op == 5:
        return data.decode("utf-8", "surrogatepass").encode(rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1"]),
                                                             "replace")
    if op == 6:
        depth = rng.choice([10, 1000, 100_000])
        return b"[" * depth + data + b"]" * depth
    if op == 7:
        return data + rng.choice([b"x", b"\x00", b" ", b"\n", b"{}", b",", b"\xff"])
    if op == 8 and data.startswith(b"{"):
        # A duplicate key: both JSON.parse and Python's json keep the last one.
        return b'{"name": "dup",' + data[1:]
    return data


def mutated_manifest(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One mutated polyonnx.json: 1-3 data mutations, then (one time in four) a text mutation."""
    doc = json.loads(rng.choice(seeds))
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        doc = _mutate_data(rng, doc)
    data = _serialize(rng, doc)
    if rng.random() < 0.25:
        data = _mutate_text(rng, data)
    return data


# --- wire frames ------------------------------------------------------------------------------

def valid_frames() -> list[bytes]:
    vectors = json.loads((ROOT / "shared-schemas" / "vectors" / "messages.json").read_text(encoding="utf-8"))
    return [bytes.fromhex(v["frame_hex"]) for v in vectors["valid"]]


MSGPACK_EDGES = [b"\xc1", b"\xc0", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
                 b"\xdb\x7f\xff\xff\xff", b"\xd4\x00", b"\xc7\x00\xff", b"\xd7\xff" + b"\x00" * 8, b"\x91" * 50,
                 b"\x81\xa0", b"\xa3\xed\xa0\x80", b"\xcf" + b"\xff" * 8, b"\xd3" + b"\x80" + b"\x00" * 7]


def mutated_frame(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A frame (header and body) that is almost one of the valid vectors, or random bytes."""
    op = rng.randrange(9)
    frame = bytearray(rng.choice(seeds))
    if op == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    if op == 1:
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(4, len(frame))
            frame[i] ^= 1 << rng.randrange(8)
        return bytes(frame)
    if op == 2:
        i = rng.randrange(4, len(frame) + 1)
        body = bytes(frame[4:i]) + rng.choice(MSGPACK_EDGES) + bytes(frame[i:])
        return struct.pack("<I", len(body)) + body
    if op == 3:
        body = bytes(frame[4:rng.randrange(4, len(frame) + 1)])
        return struct.pack("<I", len(body)) + body
    if op == 4:
        body = bytes(frame[4:])
        return struct.pack("<I", rng.choice([0, len(body) - 1, len(body) + 1, 2**29, 2**29 + 1, 2**32 - 1])) + body
    if op == 5:
        body = rng.choice(MSGPACK_EDGES) * rng.randrange(1, 4)
        return struct.pack("<I", len(body)) + body
    if op == 6:
        return b"listening on stdout\n" + bytes(frame)
    if op == 7:
        i = rng.randrange(4, len(frame))
        frame[i] = rng.choice([0xc0, 0xc2, 0xc3, 0x90, 0x80, 0xa0, 0xc4, 0xcc, 0xd0, 0xff, 0x00, 0x7f])
        return bytes(frame)
    return bytes(frame)
