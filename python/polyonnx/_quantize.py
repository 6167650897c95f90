"""INT8, INT4 and FP16 variants with ONNX Runtime's quantization tools.

The one module of polyonnx that imports onnxruntime.quantization.

Choices, measured on this project's reference machine (see README, "INT8"):
- dynamic: signed int8 weights for MatMul/Gemm and embedding Gather, after quant_pre_process. Dynamic quantization
  of convolutions (ConvInteger) was 4x slower than fp32 and onnxruntime-web has no int8
  ConvInteger kernel, so convolutions stay fp32.
- static: QDQ format, MinMax calibration, uint8 activations with int8 weights (U8S8 was faster
  than S8S8 here), convolutions included; QDQ runs in onnxruntime-web as well.
- int4: weight-only, block-wise 4-bit weights (MatMulNBits for MatMul, GatherBlockQuantized for
  embedding tables), activations stay float32; both contrib ops run in onnxruntime-node and
  onnxruntime-web 1.30 (measured 2026-11-30).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .errors import PolyonnxError
from .feeds import NUMPY_DTYPES

# Gather too: embedding tables are most of a small transformer's bytes (8000x256 here), and an
# int8 table + DequantizeLinear runs in every runtime. Measured on text_transformer: 0.48x of fp32
# with MatMul/Gemm only, 0.26x with Gather, cosine 0.9999 either way.
DYNAMIC_OP_TYPES = ["MatMul", "Gemm", "Gather"]
# Below this share of weights in those ops, dynamic int8 would quantize almost nothing.
MIN_QUANTIZABLE_SHARE = 0.5


def weight_shares(model_path: Path) -> dict[str, float]:
    """Per op type, the share of the graph's float weight elements (2-D or larger) its nodes read,
    largest first (one load serves every candidate's check and its "not built" reason)."""
    model = onnx.load(str(model_path))
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer
             if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and len(i.dims) >= 2}
    total = sum(sizes.values())
    if not total:
        return {}
    by_op: dict[str, set] = {}
    for node in model.graph.node:
        by_op.setdefault(node.op_type, set()).update(n for n in node.input if n in sizes)
    shares = {op: sum(sizes[n] for n in names) / total for op, names in by_op.items() if names}
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def quantizable_share(shares: dict[str, float], op_types=DYNAMIC_OP_TYPES) -> float:
    """The share of the weights ``op_types`` nodes read (a weight read by two op types counts for each)."""
    return min(1.0, sum(v for op, v in shares.items() if op in op_types))


def holders_text(shares: dict[str, float]) -> str:
    """Where the weights are, for a "not built" reason: e.g. 'Gemm 98%, Conv 2%'."""
    return ", ".join(f"{op} {v:.0%}" for op, v in list(shares.items())[:3]) or "no float weights"


def _pre_process(src: Path, dst: Path) -> Path:
    """quant_pre_process (symbolic shape inference + ORT basic optimization) when it works.

    It fails on some graphs with dynamic shapes; quantization then runs on the model as it is.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(dst), skip_optimization=False, skip_onnx_shape=False,
                              skip_symbolic_shape=False)
        return dst
    except Exception as e:  # noqa: BLE001 - any failure here only means "quantize the original"
        logging.getLogger("polyonnx").info("quant_pre_process failed (%s); quantizing without it", e)
        return src


def count_quantized(path: Path) -> int:
    model = onnx.load(str(path))
    return sum(1 for n in model.graph.node
               if n.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "QLinearConv",
                                "DequantizeLinear", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
                                "MatMulNBits", "GatherBlockQuantized"))


def dynamic_int8(src: Path, dst: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="polyonnx-q-") as tmp:
        pre = _pre_process(src, Path(tmp) / "pre.onnx")
        quantize_dynamic(
            str(pre), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=DYNAMIC_OP_TYPES,
            per_channel=False, extra_options={"MatMulConstBOnly": True},
        )
    return {"method": "dynamic", "weight_type": "int8", "op_types": list(DYNAMIC_OP_TYPES), "per_channel": False,
            "quantized_nodes": count_quantized(dst)}


class _Reader(CalibrationDataReader):
    """Feeds calibration batches to ONNX Runtime one at a time (never all in memory)."""

    def __init__(self, batches: Iterator[dict], progress=None):
        self._batches = batches
        self._progress = progress
        self.count = 0
        self.batches = 0

    def get_next(self):
        batch = next(self._batches, None)
        if batch is not None:
            self.count += int(next(iter(batch.values())).shape[0]) if batch else 0
            self.batches += 1
            if self._progress:
                self._progress(self.batches, self.count)
        return batch

    def __iter__(self):
        return iter(self.get_next, None)


CALIBRATION_METHODS = {
    "MinMax": CalibrationMethod.MinMax,
    "Entropy": CalibrationMethod.Entropy,
    "Percentile": CalibrationMethod.Percentile,
}


def static_int8(src: Path, dst: Path, batches: Iterable[dict], *, method: str = "MinMax", per_channel: bool = False,
                op_types: list[str] | None = None, nodes_to_exclude: list[str] | None = None,
                progress=None) -> dict:
    """QDQ int8 calibrated on ``batches`` (feed dicts, consumed one at a time).

    uint8 activations with int8 weights: the QDQ pattern runs in onnxruntime-web too (there is
    no int8 ConvInteger there, but QDQ needs none: DequantizeLinear + Conv is always available).
    """
    reader = _Reader(iter(batches), progress)
    extra = {
        # Compute ranges every 16 batches instead of keeping every activation until the end
        # (calibration in the neighbouring tools has needed >100 GB: onnxruntime#10503).
        "CalibMaxIntermediateOutputs": 16,
    }
    with tempfile.TemporaryDirectory(prefix="polyonnx-q-") as tmp:
        pre = _pre_process(src, Path(tmp) / "pre.onnx")
        # quantize_static print()s calibration statistics: keep them off the user's stdout.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(
                str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[method], per_channel=per_channel,
                op_types_to_quantize=op_types or None, nodes_to_exclude=nodes_to_exclude or None,
                extra_options=extra,
            )
    if reader.count == 0:
        raise PolyonnxError("quantize", "the calibration data held no samples",
                            "give an .npz (or a folder of them) with at least one sample per input")
    info = {"method": "static", "format": "QDQ", "calibrate_method": method, "weight_type": "int8",
            "activation_type": "uint8", "per_channel": bool(per_channel), "calibration_samples": reader.count,
            "quantized_nodes": count_quantized(dst)}
    if op_types:
        info["op_types"] = list(op_types)
    if nodes_to_exclude:
        info["nodes_excluded"] = list(nodes_to_exclude)
    return info


# Weight-only int4: MatMul weights -> MatMulNBits, embedding tables -> GatherBlockQuantized.
# Measured on text_transformer (fp32 30.1 MB, [4,128] token ids, ONNX Runtime 1.32):
#   block 32 symmetric, MatMul only       0.44x  cosine 0.9952 (the embedding table stays fp32)
#   block 32 symmetric, + Gather          0.196x cosine 0.9946
#   block 64 asymmetric, + Gather         0.183x cosine 0.9975
#   block 128 symmetric, + Gather         0.173x cosine 0.9897
#   block 128 asymmetric, + Gather        0.174x cosine 0.9990  <- chosen
# Asymmetric (uint4 with a zero point per block) keeps the cosine above 0.99 at the largest
# block; larger blocks mean fewer float32 scales.
INT4_OP_TYPES = ["MatMul", "Gather"]
INT4_BLOCK_SIZE = 128


def weight_only_int4(src: Path, dst: Path, *, block_size: int = INT4_BLOCK_SIZE) -> dict:
    """Block-wise 4-bit weights for MatMul and Gather (ONNX Runtime's MatMulNBitsQuantizer, RTN).

    Weights only: activations stay float32, so no calibration data is needed. Quantizing a Gather
    makes the quantizer raise the default-domain opset to 21 (int4 tensors); the IR version is
    pinned back by the caller."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model = onnx.load(str(src))
    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=False, quant_format=QuantFormat.QOperator,
        op_types_to_quantize=tuple(INT4_OP_TYPES), quant_axes=(("MatMul", 0), ("Gather", 1)), bits=4)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    # The quantizer logs every weight at INFO and warns about the opset bump on the root logger.
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantizer.process()
    finally:
        quiet.setLevel(level)
    onnx.save_model(quantizer.model.model, str(dst))
    quantized = count_quantized(dst)
    if quantized == 0:
        raise PolyonnxError("quantize (int4)", "no MatMul or Gather with a constant 2-D weight was found",
                            "int4 is for transformer-style models; use --quantize dynamic or static")
    return {"method": "int4", "weight_type": "int4", "op_types": list(INT4_OP_TYPES), "per_channel": False,
            "quantized_nodes": quantized}


def fp16(src: Path, dst: Path) -> dict:
    """Half-precision weights and compute, float32 inputs and outputs (the interface is unchanged)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True)
    half.ir_version = model.ir_version
    onnx.save_model(half, str(dst))
    return {"method": "fp16", "weight_type": "float16", "activation_type": "float16"}


def worst_tensors(float_model: Path, qdq_model: Path, batches: Iterable[dict], limit: int = 8) -> list[dict]:
    """Activations of a QDQ model furthest from the float model's (lowest SQNR first).

    Uses ONNX Runtime's qdq_loss_debug: both models are augmented to output every activation,
    run on the same feeds, and matched by name.
    """
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    batches = list(batches)
    if not batches:
        return []
    with tempfile.TemporaryDirectory(prefix="polyonnx-qdq-") as tmp:
        fa, qa = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            modify_model_output_intermediate_tensors(str(float_model), str(fa))
            modify_model_output_intermediate_tensors(str(qdq_model), str(qa))
            float_acts = collect_activations(str(fa), _Reader(iter(batches)))
            qdq_acts = collect_activations(str(qa), _Reader(iter(batches)))
        matched = create_activation_matching(qdq_acts, float_acts)
        errors = compute_activation_error(matched)
    producers = {o: n.name for n in onnx.load(str(float_model)).graph.node for o in n.output}
    rows = []
    for tensor, err in errors.items():
        if "xmodel_err" not in err or not np.isfinite(err["xmodel_err"]):
            continue
        rows.append({"tensor": tensor, "sqnr_db": round(float(err["xmodel_err"]), 2),
                     "qdq_sqnr_db": round(float(err["qdq_err"]), 2) if np.isfinite(err.get("qdq_err", np.nan)) else None,
                     "node": producers.get(tensor)})
    rows.sort(key=lambda r: r["sqnr_db"])
    return rows[:limit]


# -- calibration data --------------------------------------------------------------------------
CALIBRATION_BATCH = 64


def calibration_batches(source, input_specs: list[dict], dims: dict, *, batch: int = CALIBRATION_BATCH) -> Iterator[dict]:
    """Yield checked feed dicts of at most ``batch`` samples from an .npz, a folder of .npz/.npy
    files, or an iterable of feed dicts. Only one file is open at a time (.npy files are
    memory-mapped), so memory stays bounded however large the set is."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".npz", ".npy"))
            if not files:
                raise PolyonnxError("quantize (calibration)", f"folder '{path}' holds no .npz or .npy files",
                                    "put one .npz per batch in it, arrays named after the model inputs")
            for f in files:
                yield from _split(_check_batch(_read_file(f, input_specs), input_specs, f.name), input_specs, batch)
        elif path.is_file():
            yield from _split(_check_batch(_read_file(path, input_specs), input_specs, path.name), input_specs, batch)
        else:
            raise PolyonnxError("quantize (calibration)", f"no such file or folder '{path}'",
                                "pass --calibration FILE.npz or a folder of .npz files")
        return
    if callable(source):
        source = source()
    for i, item in enumerate(source):
        yield from _split(_check_batch(item, input_specs, f"batch {i}"), input_specs, batch)


def _split(feeds: dict, input_specs: list[dict], batch: int) -> Iterator[dict]:
    """Cut a feed dict into chunks along a batch dim shared by every input (axis 0, dynamic)."""
    firsts = [s["shape"][0] if s["shape"] else None for s in input_specs]
    if not firsts or not all(isinstance(d, str) and d == firsts[0] for d in firsts):
        yield {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        return
    n = next(iter(feeds.values())).shape[0]
    for i in range(0, n, batch):
        yield {k: np.ascontiguousarray(v[i:i + batch]) for k, v in feeds.items()}


def _read_file(path: Path, input_specs: list[dict]) -> dict:
    if path.suffix == ".npy":
        if len(input_specs) != 1:
            raise PolyonnxError("quantize (calibration)", f"'{path.name}' is a single .npy array but the model has "
                                f"{len(input_specs)} inputs", "use .npz files with one array per input name")
        try:
            return {input_specs[0]["name"]: np.load(path, mmap_mode="r", allow_pickle=False)}
        except Exception as e:
            raise PolyonnxError("quantize (calibration)", f"'{path}' is not a readable .npy ({e})",
                                "write it with numpy.save") from e
    return _read_npz(path)


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:
        raise PolyonnxError("quantize (calibration)", f"'{path}' is not a readable .npz ({e})",
                            "write it with numpy.savez(path, input_name=array, ...)") from e


def _check_batch(batch: dict, input_specs: list[dict], where: str) -> dict:
    names = [s["name"] for s in input_specs]
    if set(batch) != set(names):
        raise PolyonnxError(
            "quantize (calibration)", f"{where} has arrays {sorted(batch)} but the model's inputs are {names}",
            "name the arrays after the model inputs (numpy.savez(path, **{name: array}))",
        )
    out, sizes = {}, {}
    for spec in input_specs:
        arr = np.asarray(batch[spec["name"]])
        want = np.dtype(NUMPY_DTYPES[spec["dtype"]])
        if arr.dtype != want:
            if arr.dtype.kind != want.kind and not (arr.dtype.kind in "iu" and want.kind in "iu"):
                raise PolyonnxError("quantize (calibration)",
                                    f"{where}: '{spec['name']}' is {arr.dtype} but the input is {spec['dtype']}",
                                    f"save the array as {spec['dtype']}")
            arr = arr.astype(want)
        shape = spec["shape"]
        ok = arr.ndim == len(shape)
        for axis, d in enumerate(shape if ok else []):
            if isinstance(d, int):
                ok &= arr.shape[axis] == d
            else:
                ok &= sizes.setdefault(d, arr.shape[axis]) == arr.shape[axis]
        if not ok:
            raise PolyonnxError("quantize (calibration)",
                                f"{where}: '{spec['name']}' has shape {list(arr.shape)} but the input is {shape}",
                                "give calibration arrays the model's input shape, samples along the batch dim")
        out[spec["name"]] = arr  # not copied: _split copies one chunk at a time
    return out
