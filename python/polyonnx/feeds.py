"""Generated feeds: numpy inputs for a manifest's input specs at given dim sizes.

Export verification and `polyonnx verify` both use this, so every runtime sees the same feeds.
Values are drawn from an input's ``verified_range`` (what verification fed), else its enforced
``value_range``. ``check_feeds`` is the Python runtime's copy of js/feeds.mjs's dim and value
checks: same rules, same words (shared-schemas/vectors/feeds.json holds the cases both pass).
"""

from __future__ import annotations

import numpy as np

from ._dims import legal_text, size_problem
from .errors import FeedError, PolyonnxError, one_line

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
    domain = spec.get("verified_range") or spec.get("value_range")
    if dtype in ("float32", "float64", "float16"):
        if domain:
            lo, hi = domain
            return rng.uniform(lo, hi, size=shape).astype(NUMPY_DTYPES[dtype])
        return rng.standard_normal(shape).astype(NUMPY_DTYPES[dtype])
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "string":
        return np.array(["polyonnx"] * int(np.prod(shape)), dtype=object).reshape(shape)
    info = np.iinfo(NUMPY_DTYPES[dtype])
    lo, hi = domain or [max(info.min, -100), min(info.max, 100)]
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(NUMPY_DTYPES[dtype])


def make_feeds(input_specs: list[dict], sizes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {spec["name"]: make_feed(spec, sizes, rng) for spec in input_specs}


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _js_number(x) -> str:
    """A number as JavaScript's String() writes it, so both languages give the same message."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def _position(name: str, dims: tuple, flat: int) -> str:
    if not dims:
        return name
    return name + "".join(f"[{int(i)}]" for i in np.unravel_index(flat, dims))


def _dtype_name(dtype) -> str:
    """dtype_name, or numpy's own word for a dtype ONNX Runtime JS has none for (complex128...)."""
    try:
        return dtype_name(dtype)
    except PolyonnxError:
        return str(np.dtype(dtype))


def _quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in names)


def check_names(feeds: dict, inputs: list[dict], *, stage: str = "run") -> None:
    """Every input given, nothing else: js/feeds.mjs's rule and words (shared-schemas/bad-inputs.json)."""
    expected = [spec["name"] for spec in inputs]
    missing = [n for n in expected if n not in feeds]
    unknown = [n for n in feeds if n not in expected]
    if missing or unknown:
        parts = ([f"missing input{'s' if len(missing) > 1 else ''} {_quoted(missing)}"] if missing else []) + (
            [f"unknown input{'s' if len(unknown) > 1 else ''} {_quoted(unknown)}"] if unknown else [])
        raise FeedError(stage, "; ".join(parts) + f" (the model's inputs are {_quoted(expected)})",
                        "pass exactly the inputs listed in polyonnx.json, by name",
                        details={"missing": missing, "unknown": unknown, "expected": expected})


def as_arrays(feeds: dict, inputs: list[dict], *, stage: str = "run") -> dict[str, np.ndarray]:
    """The Python runtime's feed conversion, with js/feeds.mjs's rule: plain (nested) lists and
    Python scalars become the input's dtype; an array must already have it. Ragged lists, values
    the dtype cannot hold and arrays of another dtype are FeedErrors, not numpy's exceptions."""
    out = {}
    for spec in inputs:
        name, dtype = spec["name"], spec["dtype"]
        value, want = feeds[name], np.dtype(NUMPY_DTYPES[dtype])
        if isinstance(value, (np.ndarray, np.generic)):
            arr = np.asarray(value)
            same = arr.dtype == want or (dtype == "string" and arr.dtype.kind in "OUS")
            if not same:
                # js/feeds.mjs's words: the dtype names are ONNX Runtime's in both languages.
                raise FeedError(stage, f"input '{name}' is {_dtype_name(arr.dtype)}, but the model expects {dtype}",
                                f"convert it first, e.g. x.astype(np.{want.name})" if dtype != "string"
                                else "pass an array of str", details={"input": name, "expected": dtype})
            out[name] = arr
            continue
        try:
            with np.errstate(all="ignore"):
                arr = np.array(value, dtype=object if dtype == "string" else None)
                if dtype != "string":
                    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and want.kind in "iub"
                                                          and not np.all(np.isfinite(arr) & (arr == np.round(arr)))):
                        raise TypeError(f"its values are {arr.dtype}")
                    # js/feeds.mjs's rule: booleans only for a bool input, and a bool input takes
                    # true/false or 1/0, nothing else.
                    if arr.size and (arr.dtype.kind == "b") != (want.kind == "b") and not (
                            want.kind == "b" and np.isin(arr, (0, 1)).all()):
                        raise TypeError(f"its values are {arr.dtype}")
                    if want.kind in "iu" and arr.size and (arr.min() < np.iinfo(want).min or arr.max() > np.iinfo(want).max):
                        raise OverflowError(f"its values leave the {dtype} range")
                    arr = arr.astype(want)
        except (ValueError, TypeError, OverflowError) as e:
            raise FeedError(stage, f"input '{name}' cannot be read as {dtype} ({one_line(e, 160)})",
                            "give numbers in nested lists of equal length, or an array of the model's dtype",
                            details={"input": name, "expected": dtype}) from None
        out[name] = arr
    return out


def check_feeds(feeds: dict, inputs: list[dict], dims: dict, *, stage: str = "run") -> dict[str, int]:
    """Check ranks, static axes, shared dims, dim constraints and value domains of ``feeds``
    (name -> array-like) against the manifest's ``inputs``/``dims``, in js/feeds.mjs's order and
    words. Returns the size of every named dim; raises FeedError."""
    sizes: dict[str, int] = {}
    size_from: dict[str, str] = {}
    for spec in inputs:
        name, shape = spec["name"], spec["shape"]
        arr = np.asarray(feeds[name])
        got_dims = tuple(int(n) for n in arr.shape)
        if len(got_dims) != len(shape):
            raise FeedError(stage, f"input '{name}' has rank {len(got_dims)} (dims [{', '.join(map(str, got_dims))}]), "
                            f"but the model expects rank {len(shape)} {_shape_text(shape)}",
                            f"pass {len(shape)} dims", details={"input": name})
        for axis, d in enumerate(shape):
            got = got_dims[axis]
            if isinstance(d, int):
                if got != d:
                    raise FeedError(stage, f"input '{name}' axis {axis} is {got}, but the model fixes it to {d} "
                                    f"(shape {_shape_text(shape)}, given [{', '.join(map(str, got_dims))}])",
                                    f"give axis {axis} exactly {d} entries", details={"input": name, "axis": axis})
                continue
            if d in sizes and sizes[d] != got:
                raise FeedError(stage, f"'{d}' is {got} in {name} but {sizes[d]} in {size_from[d]}",
                                f"inputs that share the dim '{d}' must agree on its size", details={"dim": d})
            entry = dims.get(d, {})
            why = size_problem(entry, got)
            if why:
                raise FeedError(stage, f"input '{name}': '{d}' is {got}, {why}",
                                f"give '{d}' a size in {legal_text(entry)}", details={"input": name, "dim": d, "given": got})
            sizes[d] = got
            size_from[d] = name
        if spec.get("value_range") and arr.size:
            _check_range(name, spec, arr, stage)
    return sizes


def _check_range(name: str, spec: dict, arr: np.ndarray, stage: str) -> None:
    lo, hi = spec["value_range"]
    values = arr.astype(np.float64) if arr.dtype == np.float16 else arr
    if values.dtype.kind == "f":
        bad = ~((values >= lo) & (values <= hi))  # NaN is outside every range
    else:
        bad = (values < lo) | (values > hi)
    if bad.any():
        flat = int(np.flatnonzero(bad.reshape(-1))[0])
        value = values.reshape(-1)[flat]
        origin = f" ({spec['value_range_origin']})" if spec.get("value_range_origin") else ""
        raise FeedError(stage, f"input '{name}': {_position(name, arr.shape, flat)} = {_js_number(value)} is outside "
                        f"its value_range [{_js_number(lo)}, {_js_number(hi)}]{origin}",
                        f"keep '{name}' values within [{_js_number(lo)}, {_js_number(hi)}]",
                        details={"input": name, "index": flat})


def size_plan(dims: dict[str, dict]) -> list[dict]:
    """Dim-size sets to verify a bundle at, from its manifest ``dims`` entries (named input dims
    only): every dim at its minimum, its example and larger legal sizes (``_dims.plan_sizes``), never
    a size its constraints exclude."""
    from ._dims import from_manifest, plan_sizes

    return plan_sizes({n: from_manifest(n, e) for n, e in dims.items()})
