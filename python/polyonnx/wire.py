"""The worker protocol's bytes: tensors <-> msgpack maps, messages <-> length-prefixed frames.

The contract is shared-schemas/wire.schema.json and WIRE.md; js/wire.mjs is the mirror (same
names in camelCase). Both are checked against the same vectors in shared-schemas/vectors/.

A frame is a 4-byte little-endian uint32 body length followed by a msgpack body. A tensor is
``{"dtype", "shape", "data"}`` where ``data`` holds the row-major little-endian bytes (msgpack
bin), or a list of str for dtype ``string``.
"""

from __future__ import annotations

import math
import struct
from typing import Any, BinaryIO

import numpy as np

from .errors import PolyonnxError

# Wire dtype words (the manifest's) -> explicit little-endian numpy dtypes. Explicit byte order
# because the bytes on the wire are little-endian whatever machine produced them.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "float16": np.dtype("<f2"),
    "int8": np.dtype("i1"), "uint8": np.dtype("u1"), "int16": np.dtype("<i2"), "uint16": np.dtype("<u2"),
    "int32": np.dtype("<i4"), "uint32": np.dtype("<u4"), "int64": np.dtype("<i8"), "uint64": np.dtype("<u8"),
    "bool": np.dtype("?"),
}
DTYPES = tuple(NUMPY_DTYPES) + ("string",)

HEADER = struct.Struct("<I")
MAX_DIMS = 64  # numpy's limit on the number of dims (NPY_MAXDIMS, numpy 2)
# 512 MiB per message. Text mistaken for a header (a library printing to stdout) has a printable
# byte (>= 0x20) as its last, most significant byte, so it reads as a length of at least 512 MiB:
# with this bound such text is reported at once instead of waited for as a giant frame.
MAX_FRAME_BYTES = 2**29
# The bound on a run request's `repeat` (wire.schema.json; js/worker.mjs MAX_REPEAT).
MAX_REPEAT = 100000


def check_repeat(repeat, stage: str) -> int:
    """``repeat`` for runtime.run: an int from 1 to MAX_REPEAT, the same bound for every runtime."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise PolyonnxError(stage, f"repeat is {repeat!r}", f"pass an integer from 1 to {MAX_REPEAT}")
    return repeat


class WireError(PolyonnxError):
    """A tensor or frame that does not follow shared-schemas/wire.schema.json."""

    code = "E_WIRE"  # js/wire.mjs's code: it was E_POLYONNX here, found by tests/python/test_fuzz.py

    def __init__(self, message: str, fix: str | None = None, *, details: dict | None = None):
        super().__init__("wire", message, fix, details=details)


def _dtype_word(dtype: np.dtype) -> str:
    if dtype.kind in "OUS":
        return "string"
    for word, np_t in NUMPY_DTYPES.items():
        # Compare ignoring byte order: '>f4' is float32 too, it is converted below.
        if dtype.newbyteorder("<") == np_t:
            return word
    raise WireError(
        f"numpy dtype {dtype} has no ONNX Runtime JS tensor type",
        "cast the array to one of " + ", ".join(DTYPES),
    )


def encode_tensor(array: Any) -> dict:
    """A numpy array (any layout or byte order) -> the wire map ``{dtype, shape, data}``."""
    arr = np.asarray(array)
    word = _dtype_word(arr.dtype)
    shape = [int(d) for d in arr.shape]
    if word == "string":
        values = arr.ravel(order="C").tolist()
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise WireError(
                    f"string tensor holds a {type(v).__name__} ({v!r:.40}), not str",
                    "decode bytes to str before sending (the wire carries UTF-8 strings)",
                )
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    raise WireError(
                        f"string tensor element {i} holds a lone surrogate ({v!r:.40}), which UTF-8 cannot carry",
                        "pass well-formed strings (text decoded with errors='surrogateescape' is not)",
                    ) from None
        return {"dtype": "string", "shape": shape, "data": values}
    # ascontiguousarray with an explicit '<' dtype both packs a strided view and byte-swaps a
    # big-endian array; it copies only when one of those is needed.
    flat = np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[word]).reshape(-1)
    if word == "bool":
        # numpy bools are 0/1 bytes already; a uint8 array viewed as bool may not be.
        flat = flat.view(np.uint8).astype(bool).view(np.uint8)
    return {"dtype": word, "shape": shape, "data": memoryview(flat.view(np.uint8))}


def decode_tensor(obj: Any) -> np.ndarray:
    """The wire map ``{dtype, shape, data}`` -> a new, writable, native-order numpy array."""
    if not isinstance(obj, dict) or not {"dtype", "shape", "data"} <= obj.keys():
        raise WireError(f"a tensor must be a map with dtype, shape and data, got {type(obj).__name__}")
    word, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if not isinstance(word, str) or word not in DTYPES:
        raise WireError(f"unknown tensor dtype {word!r:.60}", "use one of " + ", ".join(DTYPES))
    # type() is int: a bool is an int to isinstance, and numpy's reshape refuses it (TypeError).
    if not isinstance(shape, (list, tuple)) or not all(type(d) is int and d >= 0 for d in shape):
        raise WireError(f"tensor shape must be a list of non-negative integers, got {shape!r:.200}")
    if len(shape) > MAX_DIMS:
        raise WireError(f"tensor shape has {len(shape)} dims, more than numpy's {MAX_DIMS}")
    # math.prod on Python ints: np.prod in int64 wrapped [2**32, 2**32] to 0, which matched an
    # empty data and then failed in reshape (ValueError, issue #11).
    count = math.prod(shape)
    if word == "string":
        if not isinstance(data, (list, tuple)) or len(data) != count or not all(isinstance(s, str) for s in data):
            raise WireError(f"string tensor of shape {list(shape)} needs a list of {count} str")
        out = np.empty(count, dtype=object)
        out[:] = list(data)
        return out.reshape(shape)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"{word} tensor data must be msgpack bin (bytes), got {type(data).__name__}")
    np_t = NUMPY_DTYPES[word]
    if len(data) != count * np_t.itemsize:
        raise WireError(
            f"{word} tensor of shape {list(shape)} needs {count * np_t.itemsize} bytes, got {len(data)}",
            details={"dtype": word, "shape": list(shape), "bytes": len(data)},
        )
    if word == "bool":
        # Any non-zero byte is true, like ONNX Runtime reads them.
        return (np.frombuffer(data, dtype=np.uint8) != 0).reshape(shape)
    # .astype to the native dtype copies: the result owns its memory (bytes from msgpack are
    # read-only) and is in native byte order.
    return np.frombuffer(data, dtype=np_t).astype(np_t.newbyteorder("="), copy=True).reshape(shape)


def encode_tensors(arrays: dict) -> dict:
    return {str(name): encode_tensor(a) for name, a in arrays.items()}


def decode_tensors(objs: dict) -> dict[str, np.ndarray]:
    if not isinstance(objs, dict):
        raise WireError(f"tensors must be a map of name -> tensor, got {type(objs).__name__}")
    return {name: decode_tensor(o) for name, o in objs.items()}


def pack(message: Any) -> bytes:
    """msgpack body of one message (bytes/memoryview -> bin, str -> str)."""
    import msgpack

    try:
        return msgpack.packb(message, use_bin_type=True)
    except UnicodeEncodeError as e:
        raise WireError(f"a string in the message is not UTF-8 encodable ({e.reason}: {e.object[e.start:e.end]!r})",
                        "pass well-formed strings (a lone surrogate cannot be sent)") from None
    except (TypeError, ValueError, OverflowError) as e:  # a value msgpack has no type for, or too deep
        raise WireError(f"the message cannot be packed ({type(e).__name__}: {e})",
                        "send only maps, lists, str, bytes, numbers, bools and None") from None


def unpack(body: bytes) -> Any:
    import msgpack

    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types for bad bytes
        raise WireError(f"frame body is not valid msgpack ({type(e).__name__}: {e})") from None


def encode_frame(message: Any) -> bytes:
    body = pack(message)
    if len(body) > MAX_FRAME_BYTES:
        raise WireError(f"message of {len(body)} bytes is over the {MAX_FRAME_BYTES}-byte frame limit",
                        "send smaller batches")
    return HEADER.pack(len(body)) + body


def decode_frame(frame: bytes) -> Any:
    """Exactly one frame (header + body) -> its message."""
    if len(frame) < HEADER.size:
        raise WireError(f"a frame needs a {HEADER.size}-byte header, got {len(frame)} bytes")
    (n,) = HEADER.unpack_from(frame)
    if len(frame) - HEADER.size != n:
        raise WireError(f"frame header says {n} bytes but {len(frame) - HEADER.size} follow")
    return unpack(bytes(frame[HEADER.size:]))


def check_length(n: int, header: bytes) -> None:
    """Reject a header that cannot be a frame, showing the bytes: usually text printed to the stream."""
    if n > MAX_FRAME_BYTES:
        raise WireError(
            f"stream header {header!r} announces {n} bytes: this is not a frame, something printed "
            "text into the frame stream",
            "a library wrote to stdout: the worker redirects console output to stderr, so this is "
            "probably native code writing to file descriptor 1",
        )


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame body from a blocking binary stream; None at a clean end of stream."""
    header = _read_exact(stream, HEADER.size, allow_eof=True)
    if header is None:
        return None
    (n,) = HEADER.unpack(header)
    check_length(n, header)
    return _read_exact(stream, n, allow_eof=False)


def _read_exact(stream: BinaryIO, n: int, *, allow_eof: bool) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got == 0 and allow_eof:
                return None
            raise EOFError(f"stream ended {got} bytes into a {n}-byte read")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class FrameReader:
    """Incremental splitter: ``push(bytes)`` returns the complete frame bodies so far."""

    def __init__(self):
        self._buf = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        self._buf += data
        bodies = []
        while len(self._buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf)
            check_length(n, bytes(self._buf[:HEADER.size]))
            if len(self._buf) < HEADER.size + n:
                break
            bodies.append(bytes(self._buf[HEADER.size:HEADER.size + n]))
            del self._buf[:HEADER.size + n]
        return bodies

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf)
