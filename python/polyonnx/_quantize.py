"""INT8 variants with ONNX Runtime's quantization tools.

The one module of polyonnx that imports onnxruntime.quantization.

Choices, measured on this project's reference machine (see README, "INT8"):
- dynamic: signed int8 weights, MatMul/Gemm only, after quant_pre_process. Dynamic quantization
  of convolutions (ConvInteger) was 4x slower than fp32 and onnxruntime-web has no int8
  ConvInteger kernel, so convolutions stay fp32.
- static: QDQ format, MinMax calibration, uint8 activations with int8 weights (U8S8 was faster
  than S8S8 here), convolutions included; QDQ runs in onnxruntime-web as well.
"""

from __future__ import annotations

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

DYNAMIC_OP_TYPES = ["MatMul", "Gemm"]
# Below this share of weights in MatMul/Gemm, dynamic int8 would quantize almost nothing.
MIN_QUANTIZABLE_SHARE = 0.5


def quantizable_share(model_path: Path, op_types=DYNAMIC_OP_TYPES) -> float:
    """Share of the graph's float weight elements that feed ``op_types`` nodes."""
    model = onnx.load(str(model_path))
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer
             if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and len(i.dims) >= 2}
    total = sum(sizes.values())
    if not total:
        return 0.0
    used = {n for node in model.graph.node if node.op_type in op_types for n in node.input if n in sizes}
    return sum(sizes[n] for n in used) / total


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
                                "DequantizeLinear", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"))


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

    def __init__(self, batches: Iterator[dict]):
        self._batches = batches
        self.count = 0

    def get_next(self):
        batch = next(self._batches, None)
        if batch is not None:
            self.count += int(next(iter(batch.values())).shape[0]) if batch else 0
        return batch


def static_int8(src: Path, dst: Path, batches: Iterable[dict]) -> dict:
    reader = _Reader(iter(batches))
    with tempfile.TemporaryDirectory(prefix="polyonnx-q-") as tmp:
        pre = _pre_process(src, Path(tmp) / "pre.onnx")
        quantize_static(
            str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, per_channel=False,
            # Compute ranges every 16 batches instead of keeping every activation until the end.
            extra_options={"CalibMaxIntermediateOutputs": 16},
        )
    if reader.count == 0:
        raise PolyonnxError("quantize", "the calibration data held no samples",
                            "give an .npz (or a folder of them) with at least one sample per input")
    return {"method": "static", "format": "QDQ", "calibrate_method": "MinMax", "weight_type": "int8",
            "activation_type": "uint8", "per_channel": False, "calibration_samples": reader.count,
            "quantized_nodes": count_quantized(dst)}


# -- calibration data --------------------------------------------------------------------------
def calibration_batches(source, input_specs: list[dict], dims: dict) -> Iterator[dict]:
    """Yield checked feed dicts from an .npz, a folder of .npz files, or an iterable of dicts."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".npz")
            if not files:
                raise PolyonnxError("quantize (calibration)", f"folder '{path}' holds no .npz files",
                                    "put one .npz per batch in it, arrays named after the model inputs")
            for f in files:
                yield _check_batch(_read_npz(f), input_specs, f.name)
        elif path.is_file():
            yield _check_batch(_read_npz(path), input_specs, path.name)
        else:
            raise PolyonnxError("quantize (calibration)", f"no such file or folder '{path}'",
                                "pass --calibration FILE.npz or a folder of .npz files")
        return
    for i, batch in enumerate(source):
        yield _check_batch(batch, input_specs, f"batch {i}")


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
        out[spec["name"]] = np.ascontiguousarray(arr)
    return out
