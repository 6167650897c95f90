"""Comparing outputs with a reference: the numbers every check reports and the pass rule.

Used by export verification (ORT Python vs torch, int8 vs fp32) and by `polyonnx verify`
(every runtime vs ONNX Runtime Python). Tolerances come only from shared-schemas/tolerances.json.
"""

from __future__ import annotations

import numpy as np

from .manifest import load_shared


def tolerance(kind: str, against: str) -> dict:
    """Tolerance for a variant of ``kind`` ('fp32', 'int8', 'fp16') checked ``against`` ('torch', 'fp32', or a runtime)."""
    table = load_shared("tolerances.json")
    return dict(table["checks"].get(kind, {}).get(against) or table["default"])


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def metrics(actual: np.ndarray, reference: np.ndarray, *, class_axis: int | None = None) -> dict:
    """max_abs, max_rel, cosine (and argmax_agreement when ``class_axis`` is given) of one output."""
    actual = np.asarray(actual)
    reference = np.asarray(reference)
    if actual.shape != reference.shape:
        return {"max_abs": None, "max_rel": None, "cosine": None, "argmax_agreement": None, "exact": False,
                "shape_mismatch": [list(actual.shape), list(reference.shape)]}
    if not _is_float(reference) or not _is_float(actual):
        exact = bool(np.array_equal(actual, reference))
        return {"max_abs": 0.0 if exact else None, "max_rel": 0.0 if exact else None,
                "cosine": 1.0 if exact else None, "argmax_agreement": None, "exact": exact}
    a = actual.astype(np.float64).ravel()
    r = reference.astype(np.float64).ravel()
    if a.size == 0:
        return {"max_abs": 0.0, "max_rel": 0.0, "cosine": 1.0, "argmax_agreement": None}
    finite = np.isfinite(a) & np.isfinite(r)
    same_nonfinite = bool(np.all((np.isnan(a) & np.isnan(r)) | (a == r) | finite))
    diff = np.abs(a - r)
    diff = np.where(finite, diff, 0.0 if same_nonfinite else np.inf)
    max_abs = float(diff.max())
    rel = diff / np.maximum(np.where(finite, np.abs(r), 1.0), 1e-12)
    max_rel = float(rel.max()) if np.any(np.abs(r[finite]) > 0) else max_abs
    # Scaled by the largest magnitude first: values near 1e199 (an ONNX backend case holds them)
    # overflow the squared norms to inf, and the cosine would come out NaN.
    af, rf = a[finite], r[finite]
    scale = max(float(np.max(np.abs(af))) if af.size else 0.0, float(np.max(np.abs(rf))) if rf.size else 0.0)
    if scale > 0:
        af, rf = af / scale, rf / scale
    na, nr = np.linalg.norm(af), np.linalg.norm(rf)
    if na == 0 and nr == 0:
        cosine = 1.0
    elif na == 0 or nr == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(af, rf) / (na * nr))
    out = {"max_abs": max_abs, "max_rel": max_rel, "cosine": cosine, "argmax_agreement": None}
    if class_axis is not None and actual.ndim > 0 and actual.shape[class_axis] > 1:
        agree = np.argmax(actual, axis=class_axis) == np.argmax(reference, axis=class_axis)
        out["argmax_agreement"] = float(agree.mean()) if agree.size else 1.0
    return out


def passes(m: dict, tol: dict, reference: np.ndarray) -> bool:
    """The pass rule of shared-schemas/README.md#tolerances."""
    if "shape_mismatch" in m:
        return False
    if "exact" in m:
        return m["exact"]
    if m["cosine"] is None or m["max_abs"] is None or np.isnan(m["cosine"]) or np.isnan(m["max_abs"]):
        return False
    if tol.get("atol") is not None:
        ref = np.abs(np.asarray(reference, dtype=np.float64)) if np.asarray(reference).dtype.kind == "f" else np.abs(np.asarray(reference))
        ref = ref[np.isfinite(ref)] if ref.dtype.kind == "f" else ref
        # NaN/inf in the reference (sqrt of a negative feed) are compared by position in metrics();
        # the scale comes from the finite values, or a NaN scale would fail every comparison.
        scale = float(np.max(ref)) if ref.size else 0.0
        if not m["max_abs"] <= tol["atol"] + (tol.get("rtol") or 0.0) * scale:
            return False
    # Cosine says whether the output's shape of values is right; for an output that is within atol
    # everywhere (values near zero: a detector's sigmoid map on noise) it only measures round-off.
    within_atol = tol.get("atol") is not None and m["max_abs"] <= tol["atol"]
    if m["cosine"] < tol["min_cosine"] and not within_atol:
        return False
    if m.get("argmax_agreement") is not None and m["argmax_agreement"] < tol["min_argmax_agreement"]:
        return False
    return True


def accumulate(per_run: list[dict]) -> dict:
    """Worst case over several runs of one output (max of differences, min of cosine/agreement)."""
    if not per_run:
        return {"max_abs": None, "max_rel": None, "cosine": None, "argmax_agreement": None}
    out = {}
    for key, worst in (("max_abs", max), ("max_rel", max), ("cosine", min), ("argmax_agreement", min)):
        vals = [m.get(key) for m in per_run]
        out[key] = None if any(v is None for v in vals) and key != "argmax_agreement" else (
            worst(v for v in vals if v is not None) if any(v is not None for v in vals) else None)
    if any("exact" in m for m in per_run):
        out["exact"] = all(m.get("exact", False) for m in per_run)
    return out


def compare_outputs(actual: dict, reference: dict, output_specs: list[dict], tol: dict) -> tuple[dict, bool]:
    """Per-output metrics (with ``passed``) and overall pass for one feed set."""
    result, ok = {}, True
    for spec in output_specs:
        name = spec["name"]
        m = metrics(actual[name], reference[name], class_axis=spec.get("class_axis"))
        m["passed"] = passes(m, tol, reference[name])
        ok &= m["passed"]
        result[name] = m
    return result, ok
