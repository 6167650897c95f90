"""Reading and tidying ONNX graphs (the onnx package only, no runtime)."""

from __future__ import annotations

import re
from pathlib import Path

import onnx

from .errors import PolyonnxError
from .manifest import load_shared

# onnx.TensorProto element types -> the manifest's (ONNX Runtime JS) dtype words.
ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.UINT16: "uint16", onnx.TensorProto.INT32: "int32", onnx.TensorProto.UINT32: "uint32",
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.UINT64: "uint64", onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.STRING: "string",
}


def load(path: Path, *, stage: str = "export") -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as e:
        raise PolyonnxError(stage, f"'{path}' is not a readable ONNX model ({type(e).__name__}: {e})",
                            "pass an .onnx file written by torch.onnx.export or another ONNX exporter") from e


def io_shapes(model: onnx.ModelProto, which: str) -> list[tuple[str, str, list]]:
    """[(name, dtype, dims)] of graph inputs or outputs; dims are ints, names, or None (unknown)."""
    values = model.graph.input if which == "inputs" else model.graph.output
    initializers = {i.name for i in model.graph.initializer}
    out = []
    for v in values:
        if v.name in initializers:
            continue
        t = v.type.tensor_type
        if not v.type.HasField("tensor_type"):
            raise PolyonnxError("export", f"graph {which[:-1]} '{v.name}' is not a tensor (sequence or map)",
                                "polyonnx bundles support tensor inputs and outputs only")
        if t.elem_type not in ONNX_DTYPES:
            raise PolyonnxError("export", f"graph {which[:-1]} '{v.name}' has element type {t.elem_type}, "
                                "which ONNX Runtime JS cannot hold", "cast it to float32/float16/int64/bool")
        dims = []
        if t.HasField("shape"):
            for d in t.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
        out.append((v.name, ONNX_DTYPES[t.elem_type], dims))
    return out


def set_io_shapes(model: onnx.ModelProto, shapes: dict[str, list]) -> None:
    """Rewrite the declared shapes of graph inputs/outputs (metadata only) to the manifest's."""
    for v in list(model.graph.input) + list(model.graph.output):
        if v.name not in shapes:
            continue
        dims = v.type.tensor_type.shape.dim
        wanted = shapes[v.name]
        if len(dims) != len(wanted):
            continue
        for d, w in zip(dims, wanted):
            if isinstance(w, str):
                d.Clear()
                d.dim_param = w
            else:
                d.Clear()
                d.dim_value = int(w)


def external_data_files(path: Path) -> set[str]:
    """Every file a model's tensors say they live in (ONNX external data), read without loading
    them: initializers, sparse initializers, Constant attributes, in subgraphs too. An ORT-format
    model (the edge variant) has none: a flatbuffer cannot point outside itself."""
    from ._edge import is_ort_file

    if is_ort_file(path):
        return set()
    model = onnx.load(str(path), load_external_data=False)
    found: set[str] = set()

    def tensor(t):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            found.update(e.value for e in t.external_data if e.key == "location")

    def graph(g):
        for t in g.initializer:
            tensor(t)
        for sp in g.sparse_initializer:
            tensor(sp.values)
            tensor(sp.indices)
        for n in g.node:
            for a in n.attribute:
                if a.HasField("t"):
                    tensor(a.t)
                for t in a.tensors:
                    tensor(t)
                if a.HasField("g"):
                    graph(a.g)
                for sub in a.graphs:
                    graph(sub)

    graph(model.graph)
    return found


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def opset_of(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    raise PolyonnxError("export", "the model imports no default-domain opset", "re-export it with an opset")


def domains_of(model: onnx.ModelProto) -> list[str]:
    used = {n.domain for n in model.graph.node} - {"", "ai.onnx"}
    return sorted(used)


def op_types(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


# Ops that make a graph integer-quantized already (a pretrained model shipped quantized).
_DYNAMIC_QUANT_OPS = {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
_STATIC_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd"}
_INTEGER_KERNELS = {"ConvInteger", "MatMulInteger"}


def quantized_method(model: onnx.ModelProto) -> str | None:
    """'dynamic' or 'static' when the graph is already int8-quantized, else None. Its runtimes then
    differ by int8 kernels, not fp32 round-off, and are judged by the int8 tolerances."""
    ops = op_types(model)
    if ops & _DYNAMIC_QUANT_OPS:
        return "dynamic"
    if ops & _STATIC_QUANT_OPS:
        return "static"
    if ops & _INTEGER_KERNELS:
        return "dynamic"
    return None


def int8_weight_ops(model: onnx.ModelProto) -> set[str]:
    """Op types with a node whose weight (input 1) is an int8 initializer (js/onnx-header.mjs reads
    the same): onnxruntime-web runs ConvInteger with uint8 weights but has no int8 kernel."""
    int8 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    return {n.op_type for n in model.graph.node if len(n.input) > 1 and n.input[1] in int8}


def runtimes_for(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """Which of python/node/web can load this graph (from shared-schemas/runtimes.json), and why not."""
    table = load_shared("runtimes.json")
    ok, why = ["python"], []
    opset, ir, domains, ops = opset_of(model), model.ir_version, domains_of(model), op_types(model)
    for rt in ("node", "web"):
        lim = table[rt]
        reasons = []
        if opset > lim["max_opset"]:
            reasons.append(f"opset {opset} > {lim['max_opset']}")
        if ir > lim["max_ir_version"]:
            reasons.append(f"IR version {ir} > {lim['max_ir_version']}")
        bad_domains = [d for d in domains if d not in lim["domains"]]
        if bad_domains:
            reasons.append(f"operator domains {bad_domains}")
        bad_ops = sorted((ops & set(lim["unsupported_ops"]))
                         | (int8_weight_ops(model) & set(lim.get("int8_weight_ops_unsupported", []))))
        if bad_ops:
            reasons.append(f"ops without a kernel {bad_ops}")
        if reasons:
            why.append(f"{lim['package']} {lim['version']}: " + ", ".join(reasons))
        else:
            ok.append(rt)
    return ok, why


def sanitize_dim(name: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name or "")
    if not cleaned or not re.match(r"[A-Za-z_]", cleaned[0]):
        return fallback
    return cleaned[:64]


def too_large(model: onnx.ModelProto) -> bool:
    """Whether ``model`` cannot be one protobuf message (its weights must go to external data)."""
    from ._external import PROTOBUF_LIMIT

    return model.ByteSize() > PROTOBUF_LIMIT


def save(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` at ``path``: self-contained while it fits in one protobuf message, else with
    its weights in ``<name>.data`` beside it (and ``model`` keeps them in memory either way)."""
    data = path.parent / f"{path.name}.data"
    data.unlink(missing_ok=True)  # onnx appends to an existing data file; a stale one is never ours
    if not too_large(model):
        onnx.save_model(model, str(path))
        return
    from ._external import SIZE_THRESHOLD

    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=SIZE_THRESHOLD, convert_attribute=False)
    # Saving moved the bytes out of the in-memory tensors: read them back, so the caller's model
    # is the same object with the same contents it had (capture saves one model several times).
    onnx.load_external_data_for_model(model, str(path.parent))


# Dim names that say "unknown" rather than name a dim: ONNX's '?' and '', onnx/ORT shape
# inference's unk__N, and torch's legacy exporter's "<op>_dim_<n>"-style names are real names and
# are kept. Two axes with a placeholder are two dims unless the user ties them (--input).
_PLACEHOLDER = re.compile(r"^(\?|unk__\d+|-1|None|none|)$")


def is_placeholder(dim_param) -> bool:
    return dim_param is None or bool(_PLACEHOLDER.match(str(dim_param).strip()))


def normalize_inputs(model: onnx.ModelProto) -> list[str]:
    """Old-IR graphs (IR 3: the classic model-zoo CNNs) list every initializer among the graph
    inputs; they are weights, not inputs. Drop them from graph.input (IR 4 made that legal, so
    IR 3 graphs are marked 4) and return their names."""
    inits = {i.name for i in model.graph.initializer}
    dropped = [v.name for v in model.graph.input if v.name in inits]
    if dropped:
        keep = [v for v in model.graph.input if v.name not in inits]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        if model.ir_version < 4:
            model.ir_version = 4
    return dropped


# Ops that pass index values through unchanged (shape changes only), so a Gather behind them
# still bounds the graph input.
_VALUE_PRESERVING = {"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Expand", "Transpose"}


def index_bounds(model: onnx.ModelProto) -> dict[str, tuple[int, str]]:
    """Integer graph inputs whose values index a constant table: input name -> (rows, why), where
    rows is the smallest table reached (Gather's data, an initializer or Constant, along its axis).
    Any value outside [-rows, rows - 1] makes that Gather fail, so the bound is proven by the graph."""
    tables = {i.name: list(i.dims) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    tables[n.output[0]] = list(a.t.dims)
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, i))
    int_types = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT16, onnx.TensorProto.INT8,
                 onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}
    out = {}
    for v in model.graph.input:
        if v.type.tensor_type.elem_type not in int_types:
            continue
        best = None
        frontier, seen = [v.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node, slot in consumers.get(name, []):
                if node.op_type == "Gather" and slot == 1 and node.input[0] in tables:
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    shape = tables[node.input[0]]
                    if shape and -len(shape) <= axis < len(shape):
                        rows = int(shape[axis])
                        if rows > 0 and (best is None or rows < best[0]):
                            best = (rows, f"graph: Gather '{node.name or node.output[0]}' indexes "
                                          f"'{node.input[0]}', which has {rows} rows")
                elif node.op_type in _VALUE_PRESERVING and slot == 0:
                    frontier.extend(node.output)
        if best:
            out[v.name] = best
    return out
