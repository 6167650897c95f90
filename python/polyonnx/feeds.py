"""Generated feeds: numpy inputs for a manifest's input specs at given dim sizes.

Export verification and `polyonnx verify` both use this, so every runtime sees the same feeds.
Integer inputs stay inside their recorded ``value_range`` (token ids inside the vocabulary).
"""

from __future__ import annotations

import numpy as np

from .errors import PolyonnxError

# ONNX Runtime JS type strings (the manifest's words) <-> numpy dtypes.
NUMPY_DTYPES = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "bool": np.bool_, "string": np.object_,
}


def dtype_name(dtype) -> str:
    """The manifest's dtype word for a numpy (or numpy-compatible) dtype."""
    dt = np.dtype(dtype)
    if dt.kind in "OUS":
        return "string"
    for name, np_t in NUMPY_DTYPES.items():
        if np_t is not np.object_ and dt == np.dtype(np_t):
            return name
    raise PolyonnxError("export", f"dtype {dt} has no ONNX Runtime JS equivalent",
                        "cast the tensor to float32, float16, int64, int32, uint8 or bool")


def shape_at(shape: list, sizes: dict) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else int(sizes[d]) for d in shape)


def make_feed(spec: dict, sizes: dict, rng: np.random.Generator) -> np.ndarray:
    shape = shape_at(spec["shape"], sizes)
    dtype = spec["dtype"]
    if dtype in ("float32", "float64", "float16"):
        if spec.get("value_range"):
            lo, hi = spec["value_range"]
            return rng.uniform(lo, hi, size=shape).astype(NUMPY_DTYPES[dtype])
        return rng.standard_normal(shape).astype(NUMPY_DTYPES[dtype])
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "string":
        return np.array(["polyonnx"] * int(np.prod(shape)), dtype=object).reshape(shape)
    info = np.iinfo(NUMPY_DTYPES[dtype])
    lo, hi = spec.get("value_range") or [max(info.min, -100), min(info.max, 100)]
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(NUMPY_DTYPES[dtype])


def make_feeds(input_specs: list[dict], sizes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {spec["name"]: make_feed(spec, sizes, rng) for spec in input_specs}


def size_plan(dims: dict[str, int], *, input_dims: set[str] | None = None) -> list[dict]:
    """Dim-size sets to verify at: the example sizes, each dim at 1 and at a larger size, all together.

    Every dynamic dim is run at 3+ distinct sizes (1, the example, and 2*example+1), the case
    that catches an axis the exporter silently fixed.
    """
    names = [d for d in dims if input_dims is None or d in input_dims]
    example = {d: int(dims[d]) for d in names}
    plans = [dict(example)]
    for d in names:
        for size in (1, 2 * example[d] + 1):
            plan = dict(example, **{d: size})
            if plan not in plans:
                plans.append(plan)
    bigger = {d: example[d] + 1 for d in names}
    if bigger not in plans and names:
        plans.append(bigger)
    return plans
