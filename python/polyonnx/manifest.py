"""The manifest (polyonnx.json): schema validation and the checks a schema cannot express.

The schema in shared-schemas/manifest.schema.json is the contract with the JavaScript side
(js/manifest.mjs runs the same checks with the ajv-generated validator). Change the schema first, then both readers.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ManifestError

MANIFEST_NAME = "polyonnx.json"
SCHEMA_VERSION = 2
_SCHEMA_DIR = Path(__file__).resolve().parent / "shared-schemas"


def schema_path(name: str = "manifest.schema.json") -> Path:
    return _SCHEMA_DIR / name


@lru_cache(maxsize=None)
def load_shared(name: str) -> dict:
    """Read one of the JSON files in shared-schemas/ (schemas, runtimes.json, tolerances.json)."""
    with open(schema_path(name), encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = load_shared("manifest.schema.json")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def problems(manifest: Any) -> list[str]:
    """Every reason ``manifest`` is invalid, as 'path: message' strings; empty when it is valid."""
    found = []
    try:
        errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
        found += _non_finite(manifest)
    except RecursionError:
        return ["(top): nested too deeply to be a manifest"]
    for err in errors:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        found.append(f"{where}: {err.message}")
    if found or not isinstance(manifest, dict):
        return found
    # What JSON Schema cannot say: cross-references between fields.
    variants = manifest["variants"]
    if manifest["default_variant"] not in variants:
        found.append(
            f"default_variant: '{manifest['default_variant']}' is not one of the variants {sorted(variants)}"
        )
    dims = manifest["dims"]
    for side in ("inputs", "outputs"):
        seen = set()
        for i, spec in enumerate(manifest[side]):
            if spec["name"] in seen:
                found.append(f"{side}/{i}/name: '{spec['name']}' appears twice")
            seen.add(spec["name"])
            for axis, d in enumerate(spec["shape"]):
                if isinstance(d, str) and d not in dims:
                    found.append(f"{side}/{i}/shape/{axis}: dim '{d}' is not declared in dims")
    files = {}
    for name, v in variants.items():
        for f in [v["file"]] + [e["file"] for e in v.get("external_data", [])]:
            if f in files and files[f] != name:
                found.append(f"variants/{name}: file '{f}' is also used by variant '{files[f]}'")
            files[f] = name
    return found


def _non_finite(value, where: str = "") -> list[str]:
    """NaN and infinities, which JSON cannot hold and JS's validator refuses: refused here too."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or '(top)'}: {value} is not a finite number"]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [p for k, v in items for p in _non_finite(v, f"{where}/{k}" if where else str(k))]


def validate(manifest: Any, *, where: str = MANIFEST_NAME, stage: str = "load") -> dict:
    """Raise ManifestError listing every problem, or return ``manifest`` unchanged."""
    found = problems(manifest)
    if found:
        shown = "; ".join(found[:8]) + (f"; and {len(found) - 8} more" if len(found) > 8 else "")
        raise ManifestError(
            stage,
            f"{where} does not match shared-schemas/manifest.schema.json: {shown}",
            "re-export the bundle with this polyonnx version, or fix the listed fields",
            details={"problems": found},
        )
    return manifest


def to_json(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"


# polyonnx.json is a few KB; a cap keeps a hostile or mistaken file from being read whole.
MAX_MANIFEST_BYTES = 16 << 20


def _finite_number(text: str):
    """JSON numbers as JS reads them: finite doubles, so an integral one (``1.0``) is the integer 1."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is outside what a double holds (JS reads it as Infinity)")
    return int(value) if value.is_integer() else value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (JSON.parse refuses it)")


def from_json(text: str | bytes, *, where: str = MANIFEST_NAME) -> dict:
    """Parse polyonnx.json (text, or the file's bytes) and validate it; raises only ManifestError.

    Numbers are read as JavaScript reads them, so both languages accept the same manifests:
    NaN/Infinity and numbers that overflow a double are refused, and ``1.0`` is the integer 1.
    """
    fix = "re-export the bundle (polyonnx.json is UTF-8 JSON written by `polyonnx export`)"
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError("load", f"{where} is {len(text)} bytes, more than a manifest can be "
                                f"({MAX_MANIFEST_BYTES} bytes)", fix)
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError("load", f"{where} is not UTF-8 text (byte {e.start}: {e.reason})", fix) from None
    try:
        data = json.loads(text, parse_float=_finite_number, parse_int=_json_int, parse_constant=_refuse_constant)
    except RecursionError:
        raise ManifestError("load", f"{where} is not valid JSON (nested too deeply to be a manifest)", fix) from None
    except ValueError as e:  # JSONDecodeError, and the number/constant refusals above
        raise ManifestError("load", f"{where} is not valid JSON ({e})", fix) from None
    return validate(data, where=where)


def _json_int(text: str) -> int:
    value = int(text)  # more than 4300 digits: ValueError, refused by from_json
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"the number {text[:40]}... is outside what a double holds (JS reads it as Infinity)") from None
    return value


def variant_kind(variant: dict) -> str:
    """'fp32', 'int8', 'int4' or 'fp16': the key into tolerances.json for a variant."""
    method = variant["quantization"]["method"]
    return {"none": "fp32", "dynamic": "int8", "static": "int8", "int4": "int4", "fp16": "fp16"}[method]
