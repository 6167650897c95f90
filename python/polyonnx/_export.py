"""Everything that touches torch: finding the model, tracing it to ONNX, reference outputs.

The only module of polyonnx that imports torch (and torch.onnx).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import inspect
import io
import itertools
import logging
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from .errors import PolyonnxError

try:
    import torch
except ModuleNotFoundError as _missing:  # torch is the `torch` extra (issue #12): plain `pip install polyonnx` lacks it
    if _missing.name != "torch":
        raise
    raise PolyonnxError(
        "export (model)", "tracing a PyTorch model needs torch, which is not installed",
        "pip install 'polyonnx[torch]' (for the CPU build, first: pip install torch==2.13.0); "
        "an .onnx file exports without it",
    ) from None

from ._spec import DEFAULT_EXAMPLE_SIZE, ExportSpec, InputSpec, check_example_size
from .feeds import dtype_name, make_feed

STRATEGIES = ("dynamo", "legacy")


# -- finding the model ---------------------------------------------------------------------
def resolve_model(ref: str, *, allow_pickle: bool = False):
    """`package.module:attr` or `path/to/file.py:attr` -> an nn.Module in eval mode.

    attr may be an nn.Module instance, an nn.Module subclass with a no-argument constructor,
    or a zero-argument factory. `.pt`/`.pth` files are unpickled only with ``allow_pickle``:
    unpickling runs arbitrary code from the file.
    """
    if ref.endswith((".pt", ".pth")) and ":" not in ref:
        if not allow_pickle:
            raise PolyonnxError(
                "export (model)", f"'{ref}' is a pickled torch file; loading it runs any code it contains",
                "pass --allow-pickle if you trust the file, or export from the code that defines the model (module:attr)",
            )
        if not Path(ref).is_file():
            raise PolyonnxError("export (model)", f"no such file '{ref}'", "check the path")
        obj = torch.load(ref, map_location="cpu", weights_only=False)
        return _as_module(obj, ref)
    where, sep, attr = ref.rpartition(":")
    if not sep or not where or not attr:
        raise PolyonnxError(
            "export (model)", f"cannot tell where model '{ref}' lives",
            "write MODEL as package.module:attr, path/to/file.py:attr, or path/to/model.onnx",
        )
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise PolyonnxError("export (model)", f"no such file '{where}'", "check the path before ':'")
        name = f"_polyonnx_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise PolyonnxError("export (model)", f"importing '{where}' failed: {type(e).__name__}: {e}",
                                "fix the error in that file (run it with python to see the traceback)") from e
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise PolyonnxError("export (model)", f"module '{where}' not found ({e})",
                                "check the spelling, install the package, or give a path/to/file.py:attr") from e
        except Exception as e:
            raise PolyonnxError("export (model)", f"importing '{where}' failed: {type(e).__name__}: {e}",
                                "fix the error in that module") from e
    if not hasattr(module, attr):
        public = [n for n in dir(module) if not n.startswith("_")][:12]
        raise PolyonnxError("export (model)", f"'{where}' has no attribute '{attr}'",
                            f"pick one of: {', '.join(public)}")
    return _as_module(getattr(module, attr), ref)


def _as_module(obj, ref):
    if isinstance(obj, torch.nn.Module):
        return obj.eval()
    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) or callable(obj) and not inspect.isclass(obj):
        try:
            made = obj()
        except TypeError as e:
            raise PolyonnxError("export (model)", f"'{ref}' could not be called without arguments ({e})",
                                "point at an nn.Module instance or a zero-argument factory") from e
        if isinstance(made, torch.nn.Module):
            return made.eval()
        raise PolyonnxError("export (model)", f"'{ref}' returned {type(made).__name__}, not an nn.Module",
                            "point at an nn.Module instance, subclass or factory")
    raise PolyonnxError("export (model)", f"'{ref}' is a {type(obj).__name__}, not an nn.Module",
                        "point at an nn.Module instance, subclass or factory")


def declared_spec(model) -> dict | None:
    spec = getattr(model, "polyonnx_spec", None)
    return dict(spec) if isinstance(spec, dict) else None


def embedding_vocab(model) -> int | None:
    """Smallest nn.Embedding size in the model: a safe upper bound for generated token ids."""
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    return min(sizes) if sizes else None


# -- example inputs --------------------------------------------------------------------------
def spec_from_examples(model, example_inputs, input_names, dynamic_axes) -> tuple[ExportSpec, dict]:
    """Python API: tensors (tuple or name->tensor dict) + torch's dynamic_axes -> spec and feeds."""
    if isinstance(example_inputs, dict):
        names = list(example_inputs)
        values = list(example_inputs.values())
    else:
        values = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = list(input_names) if input_names else [p.name for p in params[:len(values)]]
    if len(names) != len(values):
        raise PolyonnxError("export (spec)", f"{len(values)} example inputs but {len(names)} input names",
                            "give one name per example input")
    dynamic_axes = dynamic_axes or {}
    unknown = set(dynamic_axes) - set(names)
    if unknown:
        raise PolyonnxError("export (spec)", f"dynamic_axes names unknown inputs {sorted(unknown)}",
                            f"the inputs are {names}; dynamic axes of outputs are found by verification")
    specs, dims, feeds = [], {}, {}
    for name, value in zip(names, values):
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        axes = dynamic_axes.get(name, {})
        if isinstance(axes, (list, tuple)):
            axes = {a: f"{name}_dim{a}" for a in axes}
        shape = list(arr.shape)
        for axis, dim in axes.items():
            if axis >= arr.ndim:
                raise PolyonnxError("export (spec)", f"dynamic axis {axis} of '{name}' is beyond its rank {arr.ndim}",
                                    "check dynamic_axes")
            if dims.get(dim, arr.shape[axis]) != arr.shape[axis]:
                raise PolyonnxError("export (spec)", f"dim '{dim}' is {dims[dim]} in one example input but "
                                    f"{arr.shape[axis]} in '{name}'", "make example sizes of a shared dim agree")
            check_example_size(dim, int(arr.shape[axis]))
            dims[dim] = int(arr.shape[axis])
            shape[axis] = dim
        spec = InputSpec(name, dtype_name(arr.dtype), shape)
        if arr.dtype.kind in "iu" and arr.size:
            # The example's values are what verification feeds are drawn from, never a limit: the
            # enforced domain comes from the user or from the graph (a Gather's table size).
            spec.verified_range = [int(arr.min()), int(arr.max())]
        specs.append(spec)
        feeds[name] = np.ascontiguousarray(arr)
    return ExportSpec(inputs=specs, dims=dims), feeds


def example_feeds(spec: ExportSpec, model, seed: int = 0) -> dict:
    """Generated example inputs for a flag-described or model-declared spec."""
    vocab = embedding_vocab(model)
    for s in spec.inputs:
        if s.value_range is None and s.verified_range is None and s.dtype in ("int64", "int32"):
            # Token-like inputs: feeds stay inside the smallest embedding, else a small non-negative
            # range (documented in the README); neither becomes a limit at run time.
            s.verified_range = [0, (vocab - 1) if vocab else 9]
    for d in spec.dim_names():
        spec.dims.setdefault(d, DEFAULT_EXAMPLE_SIZE)
    rng = np.random.default_rng(seed)
    return {s.name: make_feed(s.to_manifest(), spec.dims, rng) for s in spec.inputs}


# -- running torch ---------------------------------------------------------------------------
def _to_torch(feeds: dict, names: list[str]):
    return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names)


def _flatten(out) -> list:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        flat = []
        for o in out:
            flat += _flatten(o)
        return flat
    if isinstance(out, dict):
        return _flatten(list(out.values()))
    raise PolyonnxError("export", f"the model returned {type(out).__name__}",
                        "return a tensor, or a tuple/list/dict of tensors, from forward()")


def _isolated(model):
    """A copy of ``model`` that shares its parameters and buffers but not its Python state.

    Some models change themselves when they run at a size: Hugging Face's Swin shrinks its
    window_size attribute for an input smaller than the window, and every later call fails. A probe
    at a small size must not break the model for the runs after it, so each run gets its own copy
    of the module tree (the tensors are shared, so this is cheap)."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # a module that cannot be copied runs as it is
        return model


def torch_outputs(model, feeds: dict, input_names: list[str]) -> list[np.ndarray]:
    with torch.inference_mode():
        out = _isolated(model)(*_to_torch(feeds, input_names))
    return [t.detach().cpu().numpy() for t in _flatten(out)]


# -- tracing to ONNX -------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet():
    """Keep the exporters' chatter (stdout progress, deprecation warnings) off the user's terminal.

    The dynamo exporter prints to stdout unless verbose=False and logs registration warnings;
    what it said is kept and condensed into the error if the export fails.
    """
    buf = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def condense(err: BaseException, limit: int = 400) -> str:
    """The informative part of an exporter's exception, on one line.

    torch.onnx wraps the real failure (a constraint violation, an unsupported op) in a
    generic "step 1/3 ... Next steps" message: report the innermost cause instead.
    """
    root = err
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    text = f"{type(root).__name__}: {root}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _dynamic_shapes(model, names, axes) -> tuple:
    """Positional dynamic_shapes in forward()'s structure: one entry per named parameter, and the
    inputs that land in ``*args`` packed into one tuple (torch.export matches the signature, so a
    ``forward(self, *inputs)`` needs ``((dims, dims, ...),)``)."""
    shapes = [axes[n] for n in names]
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return tuple(shapes)
    fixed = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) and len(shapes) > len(fixed):
        return tuple(shapes[:len(fixed)]) + (tuple(shapes[len(fixed):]),)
    return tuple(shapes)


# One protobuf message cannot exceed 2 GiB: a model whose weights come near it is written with its
# weights in a data file beside it (ONNX external data; the pipeline lists and hashes it). Below,
# one self-contained file (the dynamo exporter would otherwise write model.onnx.data for any size).
EXTERNAL_ABOVE = int(0.9 * 2**31)


def weights_bytes(model) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:  # tied weights are stored once
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def _export_dynamo(model, args, path: Path, names, output_names, opset, axes) -> None:
    # Positional dynamic_shapes follow forward()'s argument order, which is the inputs' order.
    torch.onnx.export(
        model, args, str(path), dynamo=True, external_data=weights_bytes(model) > EXTERNAL_ABOVE, verbose=False,
        input_names=names, output_names=output_names, opset_version=opset,
        dynamic_shapes=_dynamic_shapes(model, names, axes), optimize=True,
    )


def _export_legacy(model, args, path: Path, names, output_names, opset, axes) -> None:
    torch.onnx.export(
        model, args, str(path), dynamo=False, verbose=False, do_constant_folding=True,
        input_names=names, output_names=output_names, opset_version=opset,
        dynamic_axes={n: a for n, a in axes.items() if a},
    )


# Exporter name -> function; the order is the default fallback order (dynamo first: it keeps
# nn.TransformerEncoder's seq dynamic; legacy second: it keeps RNN time axes dynamic).
EXPORTERS = {"dynamo": _export_dynamo, "legacy": _export_legacy}
STRATEGIES = tuple(EXPORTERS)


def check_strategies(strategies) -> tuple[str, ...]:
    unknown = [s for s in strategies if s not in EXPORTERS]
    if unknown or not strategies:
        raise PolyonnxError("export", f"unknown exporter(s) {unknown or '(none given)'}",
                            f"use one or more of {', '.join(EXPORTERS)}")
    return tuple(strategies)


def export_with(strategy: str, model, spec: ExportSpec, feeds: dict, output_names: list[str], opset: int, path: Path):
    """Trace ``model`` with one exporter and write a self-contained ONNX file at ``path``."""
    names = [s.name for s in spec.inputs]
    axes = {s.name: {i: d for i, d in enumerate(s.shape) if isinstance(d, str)} for s in spec.inputs}
    with _quiet():
        EXPORTERS[check_strategies((strategy,))[0]](model, _to_torch(feeds, names), path, names, output_names,
                                                    opset, axes)


def versions() -> dict:
    import onnx

    out = {"torch": torch.__version__, "onnx": onnx.__version__}
    try:
        import onnxscript

        out["onnxscript"] = onnxscript.__version__
    except Exception:
        out["onnxscript"] = None
    return out
