"""ONNX external data: a variant's weights in a file beside its model (``--external-data``).

A protobuf message cannot exceed 2 GB, so a larger ONNX model keeps its tensors in separate files
that the model names (``location``). polyonnx writes one data file per variant,
``<model file>.data`` (model.onnx -> model.onnx.data), lists it in the variant's
``external_data`` with its size and sha256, and every reader checks it like the model file:
Python hashes the files before ONNX Runtime opens them, Node and the browser hand ONNX Runtime
the bytes they hashed (``externalData``).

Forced (``external_data=True``) on any model, the shipped variants are rewritten after they are
verified, and the rewritten files must give the same answers; above the limit it happens by
itself. The ORT-format edge variant never has external data (a flatbuffer cannot point outside
itself): it is converted from the variant before it is rewritten, and refused above 2 GB (_edge).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bundle import _as_umask_allows, sha256_file
from .errors import PolyonnxError, VerificationError

# protobuf's hard limit on one serialized message (a signed 32-bit size).
PROTOBUF_LIMIT = 2**31 - 1
STAGE = "export (external data)"
# onnx's own default threshold: a shape or index tensor of up to 128 int64 values stays in the model.
SIZE_THRESHOLD = 1024


def data_file_name(model_name: str) -> str:
    return f"{model_name}.data"


def listed(path: Path) -> list[dict]:
    """The manifest's ``external_data`` for the model at ``path``: every file its tensors name,
    with its size and sha256, in name order."""
    from . import _graph

    out = []
    for name in sorted(_graph.external_data_files(path)):
        f = path.parent / name
        if f.parent.resolve() != path.parent.resolve() or not f.is_file():
            raise PolyonnxError(STAGE, f"'{path.name}' names external data '{name}', which is not a file beside it",
                                "export again; an imported model's data files must sit beside its .onnx")
        out.append({"file": name, "sha256": sha256_file(f), "bytes": f.stat().st_size})
    return out


def externalize(path: Path) -> None:
    """Rewrite the model at ``path`` so that its initializers of ``SIZE_THRESHOLD`` bytes or more
    live in ``<name>.data`` beside it. Smaller ones stay inline: ONNX Runtime's shape inference
    cannot read a Reshape's shape from external data (ORT 1.32: "Cannot parse data from external
    tensors"), and weights are what make a model large."""
    import onnx

    from . import _graph

    model = onnx.load(str(path))  # with any external data it already has, read into memory
    before = _graph.external_data_files(path)
    target = path.parent / data_file_name(path.name)
    for name in before | {target.name}:
        (path.parent / name).unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=target.name, size_threshold=SIZE_THRESHOLD, convert_attribute=False)
    if target.exists():
        _as_umask_allows(target, 0o666)  # onnx creates it 0600; a bundle is read by servers running as others


def copy_model(src: Path, dst: Path) -> None:
    """Copy a model file and the external data files it names (under the same names) beside ``dst``."""
    import shutil

    from . import _graph

    shutil.copyfile(src, dst)
    for name in _graph.external_data_files(src):
        shutil.copyfile(src.parent / name, dst.parent / name)


def optimized_model_config(src: Path, dst: Path) -> dict[str, str]:
    """Session config entries that make ONNX Runtime write an offline-optimized copy of ``src``
    (``optimized_model_filepath`` = ``dst``) with its weights in ``<dst name>.data`` when ``src`` has
    external data: without them it serializes the whole model as one message, which fails above
    2 GB. Empty for a self-contained ``src``."""
    from . import _graph

    if not _graph.external_data_files(src):
        return {}
    return {"session.optimized_model_external_initializers_file_name": data_file_name(dst.name),
            "session.optimized_model_external_initializers_min_size_in_bytes": str(SIZE_THRESHOLD)}


def quantize_method(method: str, fp32, ctx) -> str:
    """The quantization to build for ``fp32``: unchanged for a self-contained model (forced external
    data is written after quantization); for one whose weights are external (over 2 GB), 'auto'
    becomes 'none' with a note, and an explicit method is refused: every candidate would be built
    and measured on the full model (hours here), and the result could need external data itself."""
    if method == "none" or not _external_files(fp32.path):
        return method
    size = (fp32.path.stat().st_size + sum((fp32.path.parent / n).stat().st_size for n in _external_files(fp32.path)))
    why = f"the fp32 variant is {size / 1e9:.2f} GB with its external data"
    if method == "auto":
        ctx.notes.append(f"no quantized variant: {why}, and quantization candidates are not built for models "
                         "over protobuf's 2 GB; quantize offline and import the result")
        return "none"
    raise PolyonnxError("quantize", f"--quantize {method} is not supported here: {why}",
                        "export with --quantize none, and quantize the model offline "
                        "(onnxruntime.quantization with use_external_data_format=True), then import it")


def _external_files(path: Path) -> set[str]:
    from . import _graph

    return _graph.external_data_files(path)


def _same_answers(variant, graph) -> str | None:
    """None when the rewritten file gives the answers the variant gave when it was verified (same
    graph, same weights: only where the bytes live changed), else what differs."""
    from . import _ort
    from .compare import metrics, passes, tolerance
    from .manifest import variant_kind

    sess = _ort.session(variant.path, stage=STAGE)
    tol = tolerance(variant_kind(variant.entry), "python")
    names = [o["name"] for o in graph.output_specs]
    for at, feeds, before in zip(graph.plan.sizes, graph.plan.feeds, variant.outputs):
        if before is None:
            continue
        got = _ort.run(sess, feeds, names, stage=STAGE)
        for n in names:
            m = metrics(got[n], before[n])
            if "shape_mismatch" in m or not passes(m, tol, np.asarray(before[n])):
                return f"output '{n}' at {at}: max_abs {m.get('max_abs')}, cosine {m.get('cosine')}"
    return None


def ship_external(graph, variant, ctx, *, forced: bool) -> None:
    """Give ``variant``'s manifest entry its external data: rewritten first when ``forced``."""
    if forced:
        externalize(variant.path)
        if ctx.verify:
            why = _same_answers(variant, graph)
            if why:
                raise VerificationError(STAGE, f"variant '{variant.name}' with external data gives other answers "
                                        f"than before it was rewritten: {why}", "export again without --external-data")
    files = listed(variant.path)
    if forced and not files:
        ctx.notes.append(f"--external-data: variant '{variant.name}' has no initializer of {SIZE_THRESHOLD} bytes "
                         "or more, so it ships without an external data file")
    variant.entry["sha256"] = sha256_file(variant.path)
    variant.entry["bytes"] = variant.path.stat().st_size
    if files:
        variant.entry["external_data"] = files
    else:
        variant.entry.pop("external_data", None)


# onnxruntime-node 1.30, given the model and its external data as bytes (how polyonnx loads them,
# from the hashed copies), refuses any one initializer over 2 GiB: "declares a size of 2191441920
# bytes which exceeds the 2147483648 byte limit for embedded initializer data" (measured with
# bench/large_model.py, 2026-11-30); ONNX Runtime Python, from the path, loads it. onnxruntime-web
# runs the same ONNX Runtime core (and its wasm32 heap could not hold such a tensor anyway).
BYTES_TENSOR_LIMIT = 2**31


def largest_initializer(path: Path) -> tuple[str, int]:
    """(name, bytes) of the model's largest initializer, read without loading external data."""
    import onnx

    best = ("", 0)
    for t in onnx.load(str(path), load_external_data=False).graph.initializer:
        size = len(t.raw_data)
        if t.data_location == onnx.TensorProto.EXTERNAL:
            size = int(next((e.value for e in t.external_data if e.key == "length"), 0) or 0)
        if size > best[1]:
            best = (t.name, size)
    return best


def limit_runtimes(variant, ctx) -> None:
    """Leave node and web out of a variant's runtimes when one initializer is over what they load."""
    if not variant.entry.get("external_data") and variant.path.stat().st_size < BYTES_TENSOR_LIMIT:
        return  # a self-contained file under 2 GiB holds no tensor that size: nothing to parse
    name, size = largest_initializer(variant.path)
    if size < BYTES_TENSOR_LIMIT or variant.entry["runtimes"] == ["python"]:
        return
    variant.entry["runtimes"] = [r for r in variant.entry["runtimes"] if r not in ("node", "web")]
    ctx.notes.append(f"variant '{variant.name}' has an initializer '{name}' of {size / 1e9:.2f} GB: onnxruntime-node "
                     "and -web load initializers of at most 2 GiB from bytes, so it is listed for python only; "
                     "split the tensor (e.g. a MatMul into column blocks) to run it in Node")


def finish_variants(graph, variants: dict, stage: Path, ctx, *, edge: bool, external_data: bool) -> None:
    """The last step before the manifest: the edge variant (from the default variant, before
    its weights move out), then every ONNX variant's external data, forced or already there."""
    from . import _graph

    if edge:
        from ._edge import ORT_VARIANT, edge_variant

        variants[ORT_VARIANT] = edge_variant(graph, variants["fp32"], stage, ctx)
    onnx_variants = [v for v in variants.values() if v.entry.get("format", "onnx") == "onnx"]
    already = [v for v in onnx_variants if _graph.external_data_files(v.path)]
    if not external_data and not already:
        return
    with ctx.steps.step("write external data" if external_data else "list external data") as st:
        for v in onnx_variants:
            ship_external(graph, v, ctx, forced=external_data)
            limit_runtimes(v, ctx)
        st["result"] = "; ".join(
            f"{v.name}: {v.path.name} {v.entry['bytes'] / 1e6:.3f} MB + "
            + ", ".join(f"{e['file']} {e['bytes'] / 1e6:.2f} MB" for e in v.entry.get("external_data", []))
            for v in onnx_variants)
