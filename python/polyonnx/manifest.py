"""The manifest (polyonnx.json): schema validation and the checks a schema cannot express.

The schema in shared-schemas/manifest.schema.json is the contract with the JavaScript side
(js/manifest.js runs the same checks with ajv). Change the schema first, then both readers.
"""

from __future__ import annotations

import json
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
    for err in sorted(_validator().iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path))):
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


def from_json(text: str, *, where: str = MANIFEST_NAME) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError("load", f"{where} is not valid JSON ({e})", "re-export the bundle") from None
    return validate(data, where=where)


def variant_kind(variant: dict) -> str:
    """'fp32', 'int8' or 'fp16': the key into tolerances.json for a variant."""
    method = variant["quantization"]["method"]
    return {"none": "fp32", "dynamic": "int8", "static": "int8", "fp16": "fp16"}[method]
