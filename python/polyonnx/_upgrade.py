"""Imported graphs ONNX Runtime cannot load because their operator versions were removed.

Exporters from 2018 (PyTorch 0.3/0.4 wrote opset 6, IR 3) used operator versions ONNX Runtime
no longer implements: 34 of the 140 cases in onnx 1.23's backend test data (pytorch-converted,
pytorch-operator, simple) fail to load in ORT 1.32 with `Could not find an implementation for
Add(6)` (AveragePool(1), BatchNormalization(6), Gemm(6), Mul(6), PRelu(6), Pow(1)). Such a graph
is converted with onnx.version_converter to the lowest opset ORT loads, and the converted graph
is accepted only when ORT's outputs equal the ORIGINAL graph's outputs from onnx's reference
evaluator on every feed set (the reference evaluator still implements the removed versions).

The one module that imports onnx.reference. ONNX Runtime is reached through _ort.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, version_converter

from . import _graph, _ort
from .errors import PolyonnxError, VerificationError

# Opsets tried in order; the lowest that loads and verifies wins (the smallest change to the graph).
# All 34 removed-version backend cases load and verify at 7 (measured 2026-11-30, ORT 1.32); the
# higher targets are for graphs whose operators ORT dropped later. 26 would be onnxruntime-node 1.30's ceiling.
TARGETS = (7, 9, 11, 13, 15, 17, 19, 21)
# onnxruntime-node 1.30 refuses IR 14, which onnx 1.23's helpers write by default (MEASURED.md).
MAX_IR = 13
# ONNX backend-test style: floats within atol + rtol*|reference|, NaN equal to NaN; other types exact.
# TODO(issue 10): move to shared-schemas/tolerances.json ("upgrade" entry) when the schema owner adds it.
RTOL, ATOL = 1e-3, 1e-5
REASON_LIMIT = 300


def load_for_ort(model: onnx.ModelProto, feed_sets: list[dict[str, np.ndarray]], *,
                 stage: str = "export (import)") -> tuple[onnx.ModelProto, dict | None]:
    """``(model, None)`` when ONNX Runtime loads ``model``; else ``(upgraded, record)``.

    ``record`` is the manifest's ``export.upgrade``. Raises VerificationError when no target opset
    loads or the upgraded graph gives other answers than the original in onnx's reference evaluator.
    """
    reason = load_error(model)
    if reason is None:
        return model, None
    from_opset = _graph.opset_of(model)
    feeds = [_graph_feeds(model, f) for f in feed_sets] or [generated_feeds(model)]
    expected, tried = None, []
    for target in (t for t in TARGETS if t > from_opset):
        upgraded, why = _convert(model, target)
        why = why or load_error(upgraded)
        if why is None:
            # The reference runs only once a converted graph loads: a graph no opset makes loadable
            # (an operator no runtime has) is refused for that, not for the reference evaluator.
            if expected is None:
                expected = _reference_outputs(model, feeds, from_opset, reason, stage)
            max_abs, why = _disagreement(upgraded, feeds, expected, stage)
            if why is None:
                return upgraded, {"from_opset": from_opset, "to_opset": target, "reason": reason,
                                  "verified_against": "onnx.reference", "max_abs": max_abs, "passed": True}
        tried.append((target, why))
    if tried and all(why == reason for _, why in tried):
        raise VerificationError(
            stage,
            f"ONNX Runtime {_ort.version()} cannot load the graph (opset {from_opset}): {reason}; converted to "
            f"opsets {tried[0][0]}-{tried[-1][0]} it fails the same way, so no operator version is the cause",
            "the graph needs an operator or a setting this ONNX Runtime lacks (see its message); replace that "
            "operator, or run where ONNX Runtime has it")
    raise VerificationError(
        stage,
        f"ONNX Runtime {_ort.version()} cannot load the graph (opset {from_opset}): {reason}; "
        f"converted with onnx.version_converter: {_summary(tried)}",
        "re-export the model from its source at opset 18 or later, or convert it yourself and import "
        "the converted .onnx (polyonnx verifies it against your feeds)")


def check_plan(original: onnx.ModelProto, upgraded_outputs: list[dict], feed_sets: list[dict], sizes: list[dict],
               upgrade: dict, stage: str = "export (import)") -> dict:
    """The upgraded graph's outputs at every planned size (``upgraded_outputs``, from ONNX Runtime)
    against the original graph in onnx's reference evaluator on the same feeds: ``load_for_ort``
    could only check the feeds it had before the plan existed, and a conversion can be right at one
    size and wrong at another (PRelu-6's slope broadcasts by axis). Returns ``upgrade`` with the
    sizes checked and the worst difference; raises VerificationError at the first disagreement.
    Sizes the reference evaluator itself cannot run are listed, not held against the graph."""
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(original)
    names = [o.name for o in original.graph.output]
    checked, unchecked, worst = [], [], upgrade.get("max_abs")
    for f, got, at in zip(feed_sets, upgraded_outputs, sizes):
        try:
            want = dict(zip(names, evaluator.run(None, _graph_feeds(original, f))))
        except Exception as e:  # noqa: BLE001 - the reference's own limits are not the graph's fault
            unchecked.append(f"{at} ({condense(e)})")
            continue
        for name, ref in want.items():
            if name not in got:
                continue
            diff, why = compare(got[name], ref)
            if why:
                raise VerificationError(
                    stage, f"the graph upgraded from opset {upgrade['from_opset']} to {upgrade['to_opset']} differs "
                    f"from the original in onnx's reference evaluator at sizes {at}: output '{name}' {why}",
                    "re-export the model from its source at opset 18 or later, or give the dims constraints that "
                    "exclude these sizes (--dim NAME=SIZE,min=N,max=N,multiple_of=N)")
            if diff is not None:
                worst = diff if worst is None else max(worst, diff)
        checked.append(at)
    out = dict(upgrade, max_abs=worst, checked_sizes=len(checked))
    if unchecked:
        out["unchecked"] = "; ".join(unchecked)[:REASON_LIMIT]
    return out


def load_error(model: onnx.ModelProto) -> str | None:
    """ONNX Runtime's reason for refusing ``model`` (optimizations off), one line; None when it loads."""
    if _graph.too_large(model):
        return None  # cannot be serialized as one message: the session on its saved files (capture) checks it
    try:
        _ort.session(model.SerializeToString(), level="none", stage="upgrade")
    except PolyonnxError as e:
        return condense(e.__cause__ if e.__cause__ is not None else e.message)
    return None


def condense(error) -> str:
    """One line of at most REASON_LIMIT characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 4] + " ..."


def generated_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """One feed set from the graph's input types: static dims as declared, dynamic dims at 2.

    Integers are drawn from [0, 2) so that index inputs stay inside small tables; floats are normal.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in _real_inputs(model):
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 2 for d in tt.shape.dim)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        if dtype.kind == "f":
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[vi.name] = rng.integers(0, 2, shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[vi.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feeds[vi.name] = np.full(shape, "a", dtype=object)
    return feeds


def _real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (IR < 4 graphs list every weight among their inputs)."""
    weights = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in weights]


def _graph_feeds(model: onnx.ModelProto, feeds: dict) -> dict:
    names = {vi.name for vi in model.graph.input}
    return {k: np.asarray(v) for k, v in feeds.items() if k in names}


def _reference_outputs(model, feeds, from_opset, reason, stage) -> list[dict]:
    # Imported here: onnx.reference loads ~200 op modules and only old graphs need it.
    from onnx.reference import ReferenceEvaluator

    names = [o.name for o in model.graph.output]
    try:
        evaluator = ReferenceEvaluator(model)
        return [dict(zip(names, evaluator.run(None, f))) for f in feeds]
    except Exception as e:
        raise VerificationError(
            stage,
            f"ONNX Runtime {_ort.version()} cannot load the graph (opset {from_opset}): {reason}; an upgraded "
            f"graph cannot be verified because onnx's reference evaluator fails on the original: {condense(e)}",
            "pass verification feeds the graph accepts (feeds= / --feeds), or re-export the model at opset 18 "
            "or later") from e


def _convert(model: onnx.ModelProto, target: int) -> tuple[onnx.ModelProto | None, str | None]:
    """``model`` at opset ``target`` with an IR version both runtimes load, or (None, why)."""
    try:
        upgraded = version_converter.convert_version(model, target)
    except Exception as e:
        return None, f"onnx.version_converter failed: {condense(e)}"
    if _graph.opset_of(model) < 7:
        _channel_slopes(upgraded)
    opsets = [o for o in upgraded.opset_import if o.domain in ("", "ai.onnx")]
    needed = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    upgraded.ir_version = min(max(model.ir_version, needed), MAX_IR)
    return upgraded, None


def _channel_slopes(model: onnx.ModelProto) -> None:
    """PRelu-6 applied a 1-D slope of C values along axis 1; from PRelu-7 the slope broadcasts from the
    last axis, and onnx 1.23's version_converter does not adapt it (the converted
    pytorch-converted/test_PReLU_2d_multiparam fails in ORT: slope [3] against [2, 3, 4, 5]).
    Give such slopes shape [C, 1, ...] as a new initializer; verification judges the result."""
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim)
             for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
             if vi.type.tensor_type.HasField("shape")}
    weights = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "PRelu" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        slope = onnx.numpy_helper.to_array(weights[node.input[1]])
        rank = ranks.get(node.input[0], 0)
        if slope.ndim != 1 or slope.size == 1 or rank < 3:
            continue
        name = f"{node.input[1]}_per_channel"
        if name not in weights:
            shaped = slope.reshape((slope.size,) + (1,) * (rank - 2))
            model.graph.initializer.append(onnx.numpy_helper.from_array(shaped, name))
            weights[name] = model.graph.initializer[-1]
        node.input[1] = name


def _disagreement(upgraded, feeds, expected, stage) -> tuple[float | None, str | None]:
    """(max_abs over float outputs, None) when ORT's outputs of ``upgraded`` equal ``expected``;
    else (None, the first disagreement)."""
    try:
        session = _ort.session(upgraded.SerializeToString(), level="none", stage=stage)
    except PolyonnxError as e:
        return None, condense(e.__cause__ if e.__cause__ is not None else e.message)
    worst = None
    for i, (f, want) in enumerate(zip(feeds, expected)):
        try:
            got = _ort.run(session, f, list(want), stage=stage)
        except PolyonnxError as e:
            return None, f"ONNX Runtime fails on feed set {i}: {condense(e.__cause__ or e.message)}"
        for name, ref in want.items():
            diff, why = compare(got[name], ref)
            if why:
                return None, f"output '{name}' on feed set {i} differs from onnx.reference: {why}"
            if diff is not None:
                worst = diff if worst is None else max(worst, diff)
    return worst, None


def compare(actual, reference, rtol: float = RTOL, atol: float = ATOL) -> tuple[float | None, str | None]:
    """(max_abs or None for non-float outputs, None) when ``actual`` matches ``reference``, else (None, why)."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    if actual.shape != reference.shape:
        return None, f"shape {list(actual.shape)} instead of {list(reference.shape)}"
    if reference.dtype.kind != "f":
        if actual.dtype.kind == "f" or not np.array_equal(actual, reference):
            return None, f"{actual.dtype} values differ from the reference's {reference.dtype} values"
        return None, None
    a, r = actual.astype(np.float64), reference.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(r)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan | (a == r), 0.0, np.abs(a - r))
    bad = ~(diff <= atol + rtol * np.abs(np.where(both_nan, 0.0, r)))
    max_abs = float(np.nanmax(diff)) if diff.size else 0.0
    if bad.any():
        return None, (f"max_abs {max_abs:.3g} exceeds atol {atol:g} + rtol {rtol:g} * |reference| "
                      f"at {int(bad.sum())} values")
    return max_abs, None


def _summary(tried: list[tuple[int, str]]) -> str:
    """The tries, with runs of the same reason merged: 'opset 7, 9, 11: <why>'."""
    merged: list[tuple[list[str], str]] = []
    for target, why in tried:
        if merged and merged[-1][1] == why:
            merged[-1][0].append(str(target))
        else:
            merged.append(([str(target)], why))
    if not merged:
        return f"no opset above the graph's own among polyonnx's targets ({TARGETS[0]}-{TARGETS[-1]})"
    return "; ".join(f"opset {', '.join(ops)}: {why}" for ops, why in merged)
