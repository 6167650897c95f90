"""What to export: input specs (`name:dtype[dims]`), example dim sizes, value ranges.

This module is pure Python (no torch) so the CLI can reject a malformed spec instantly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import PolyonnxError
from ._dims import check_user_dim
from .feeds import NUMPY_DTYPES

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.:/-]*)\s*:\s*([a-z0-9]+)\s*\[([^\]]*)\]\s*$")
_DIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_EXAMPLE_SIZE = 2


@dataclass
class InputSpec:
    name: str
    dtype: str
    shape: list  # ints (static) and dim names (dynamic)
    value_range: list | None = None  # enforced by every runtime: only what the user gave or the graph proves
    verified_range: list | None = None  # what verification feeds are drawn from; never enforced
    value_range_origin: str | None = None

    def to_manifest(self) -> dict:
        out = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        cast = float if self.dtype.startswith("float") else int
        if self.value_range is not None:
            out["value_range"] = [cast(self.value_range[0]), cast(self.value_range[1])]
            if self.value_range_origin:
                out["value_range_origin"] = self.value_range_origin
        if self.verified_range is not None:
            out["verified_range"] = [cast(self.verified_range[0]), cast(self.verified_range[1])]
        return out


@dataclass
class ExportSpec:
    """Everything the exporter needs to know about a model's interface."""

    inputs: list[InputSpec]
    output_names: list[str] | None = None
    dims: dict[str, int] = field(default_factory=dict)  # example size per dynamic dim
    dim_given: dict[str, dict] = field(default_factory=dict)  # user constraints per dim (_dims.check_user_dim)
    class_axes: dict[str, int] = field(default_factory=dict)
    description: str | None = None

    def dim_names(self) -> list[str]:
        seen = []
        for spec in self.inputs:
            for d in spec.shape:
                if isinstance(d, str) and d not in seen:
                    seen.append(d)
        return seen


def parse_input(text: str) -> InputSpec:
    """Parse `input_ids:int64[batch,seq]` (names are dynamic axes, numbers static)."""
    m = _SPEC.match(text)
    if not m:
        raise PolyonnxError(
            "export (spec)", f"cannot read input spec {text!r}",
            "write it as NAME:DTYPE[DIM,...], e.g. --input 'input_ids:int64[batch,seq]' or 'x:float32[batch,3,32,32]'",
        )
    name, dtype, dims_text = m.groups()
    if dtype not in NUMPY_DTYPES or dtype == "string":
        raise PolyonnxError(
            "export (spec)", f"input '{name}' has unknown dtype '{dtype}'",
            "use one of " + ", ".join(d for d in NUMPY_DTYPES if d != "string"),
        )
    shape = []
    for raw in [d.strip() for d in dims_text.split(",")] if dims_text.strip() else []:
        if raw.isdigit():
            if int(raw) == 0:
                raise PolyonnxError("export (spec)", f"input '{name}' has a static dim of size 0",
                                    "give static dims as positive integers")
            shape.append(int(raw))
        elif _DIM.match(raw):
            shape.append(raw)
        else:
            raise PolyonnxError(
                "export (spec)", f"input '{name}' has dim {raw!r}, which is neither a number nor a name",
                "static dims are positive integers, dynamic dims are names like batch or seq",
            )
    return InputSpec(name, dtype, shape)


def parse_dim(text: str) -> tuple[str, dict]:
    """Parse `batch=4` or `height=64,min=32,multiple_of=32,max=2048` (example size and constraints)."""
    from ._dims import parse_dim as parse

    return parse(text)


def parse_range(text: str) -> tuple[str, dict]:
    """Parse `input_ids=0:999` (inclusive; enforced for integer inputs) or `x=0:1:strict` (a float
    range is only the verification domain unless it says strict)."""
    name, sep, rng = text.partition("=")
    parts = rng.split(":")
    strict = len(parts) == 3 and parts[2].strip() == "strict"
    try:
        low, high = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        low = high = None
    if not sep or low is None or len(parts) not in (2, 3) or (len(parts) == 3 and not strict) or low > high:
        raise PolyonnxError("export (spec)", f"cannot read --range {text!r}",
                            "write it as NAME=LOW:HIGH (inclusive), e.g. --range input_ids=0:30521, or "
                            "NAME=LOW:HIGH:strict for a float input every runtime should refuse values outside of")
    cast = int if low.is_integer() and high.is_integer() else float
    return name.strip(), {"min": cast(low), "max": cast(high), "strict": strict}


def apply_range(spec: InputSpec, given) -> None:
    """A user's value range always wins: enforced for integer inputs (and for floats marked strict),
    and the domain verification feeds are drawn from."""
    if isinstance(given, dict):
        lo, hi, strict = given["min"], given["max"], bool(given.get("strict"))
    else:
        lo, hi = given
        strict = False
    spec.verified_range = [lo, hi]
    if not spec.dtype.startswith("float") or strict:
        spec.value_range = [lo, hi]
        spec.value_range_origin = "user"
    else:
        spec.value_range = None


def check_example_size(name: str, size: int) -> None:
    # Exporters specialize sizes 0 and 1 (a size-1 axis broadcasts, so the tracer treats it as
    # static: pytorch#149065, optimum#2219); a dynamic dim must be traced at 2 or more.
    if size < 2:
        raise PolyonnxError(
            "export (spec)", f"example size {size} for dynamic dim '{name}' would be specialized by the exporter",
            f"use --dim {name}=2 or larger; polyonnx still verifies size 1 after export",
        )


def from_declared(declared: dict) -> ExportSpec:
    """Build an ExportSpec from a model's ``polyonnx_spec`` dict (see README)."""
    known = {"description", "inputs", "outputs", "dims", "dim_limits", "value_ranges", "class_axes", "quantize",
             "latency_dims"}
    unknown = set(declared) - known
    if unknown:
        raise PolyonnxError("export (spec)", f"polyonnx_spec has unknown keys {sorted(unknown)}",
                            f"use only {sorted(known)}")
    if not declared.get("inputs"):
        raise PolyonnxError("export (spec)", "polyonnx_spec declares no inputs",
                            "add \"inputs\": [\"x:float32[batch,3]\"] to the model's polyonnx_spec")
    inputs = [parse_input(s) for s in declared["inputs"]]
    ranges = declared.get("value_ranges", {})
    for spec in inputs:
        if spec.name in ranges:
            apply_range(spec, ranges[spec.name])
    dims, given = {}, {}
    for name, value in declared.get("dims", {}).items():
        given[name] = check_user_dim(name, value)
    for name, lim in declared.get("dim_limits", {}).items():
        given[name] = check_user_dim(name, {**given.get(name, {}), "min": int(lim[0]), "max": int(lim[1])})
    for name, g in given.items():
        if "example" in g:
            check_example_size(name, g["example"])
            dims[name] = g["example"]
    return ExportSpec(
        inputs=inputs,
        output_names=list(declared["outputs"]) if declared.get("outputs") else None,
        dims=dims,
        dim_given=given,
        class_axes=dict(declared.get("class_axes", {})),
        description=declared.get("description"),
    )
