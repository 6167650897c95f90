"""Triton model repositories from bundles: `REPO/NAME/config.pbtxt` + `REPO/NAME/1/model.onnx`.

Everything in the config comes from polyonnx.json. The config is written as protobuf text by
hand (no protobuf import at run time); tests parse every generated file with the ModelConfig
message that `tritonclient` ships and compare it with the manifest field by field.

Variants become separate models (`NAME` for the default variant, `NAME_<variant>` for the others),
not versions of one model: Triton's versions share one config.pbtxt and, by default, only the
newest is served, while a variant needs its own TensorRT precision and is chosen by the client
per request. docs/triton.md says more.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .bundle import Bundle, sha256_file, staging_folder
from .errors import PolyonnxError
from .manifest import load_shared

STAGE = "triton"

# polyonnx dtype (ONNX Runtime JS names) -> Triton model-config data type. Triton's ONNX Runtime
# backend maps each of these to the ONNX element type of the same width (strings travel as BYTES
# on the wire and are TYPE_STRING in the config). It has no bfloat16 and no complex types.
DATA_TYPES = {
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "float16": "TYPE_FP16",
    "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8",
    "int16": "TYPE_INT16",
    "uint16": "TYPE_UINT16",
    "int32": "TYPE_INT32",
    "uint32": "TYPE_UINT32",
    "int64": "TYPE_INT64",
    "uint64": "TYPE_UINT64",
    "bool": "TYPE_BOOL",
    "string": "TYPE_STRING",
}

KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}

# TensorRT precision per variant kind. Static int8 is QDQ, which TensorRT reads as explicit
# quantization once INT8 is enabled. Dynamic int8 uses DynamicQuantizeLinear/MatMulInteger, which
# TensorRT has no layers for: ONNX Runtime runs those nodes on CUDA, the rest stays FP32.
# int4 (MatMulNBits) runs in ONNX Runtime around TensorRT's FP32 engine, like dynamic int8.
TRT_PRECISION = {"none": "FP32", "static": "INT8", "dynamic": "FP32", "fp16": "FP16", "int4": "FP32"}
TRT_WORKSPACE_BYTES = 1 << 30

DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class TritonOptions:
    """How to serve: which variants, how many instances of what kind, batching, TensorRT."""

    variants: tuple[str, ...] | None = None  # None: every variant of each bundle
    instances: int = 1
    kind: str = "cpu"
    max_batch: int = DEFAULT_MAX_BATCH  # 0: never batch (max_batch_size 0, full shapes)
    tensorrt: bool = False

    def check(self) -> None:
        if self.kind not in KINDS:
            raise PolyonnxError(STAGE, f"unknown instance kind '{self.kind}'", "use --kind cpu or --kind gpu")
        if self.instances < 1:
            raise PolyonnxError(STAGE, f"--instances must be 1 or more, got {self.instances}", "pass --instances 1")
        if self.max_batch < 0:
            raise PolyonnxError(STAGE, f"--max-batch must be 0 or more, got {self.max_batch}",
                                "pass --max-batch 0 to turn batching off")
        if self.tensorrt and self.kind != "gpu":
            raise PolyonnxError(STAGE, "--tensorrt needs GPU instances (TensorRT runs on NVIDIA GPUs only)",
                                "add --kind gpu, or drop --tensorrt")


def triton_limits() -> dict:
    """The Triton release polyonnx targets and what its ONNX Runtime loads (shared-schemas/runtimes.json)."""
    return load_shared("runtimes.json")["triton"]


def model_name(bundle_name: str, variant: str, default_variant: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", bundle_name)
    return base if variant == default_variant else f"{base}_{variant}"


# -- what the manifest says, in Triton's terms --------------------------------------------------

def batch_dim(manifest: dict) -> str | None:
    """The dim every input and output starts with, when there is one (Triton batches along it)."""
    specs = manifest["inputs"] + manifest["outputs"]
    firsts = {s["shape"][0] if s["shape"] else None for s in specs}
    if len(firsts) != 1:
        return None
    first = firsts.pop()
    return first if isinstance(first, str) else None


def max_batch_size(manifest: dict, requested: int) -> tuple[int, str]:
    """Triton's max_batch_size for this bundle, and why (a comment for the config)."""
    if requested == 0:
        return 0, "batching off (--max-batch 0): every dim is listed, the client sends whole tensors"
    dim = batch_dim(manifest)
    if dim is None:
        return 0, ("not every input and output starts with the same dynamic dim, so Triton cannot batch "
                   "requests: max_batch_size 0 and full shapes")
    d = manifest["dims"][dim]
    lo, step = d.get("min", 1), d.get("multiple_of", 1)
    if lo > 1 or step > 1:
        return 0, (f"dim '{dim}' leads every tensor but must be >= {lo} and a multiple of {step}, while "
                   "Triton's batcher makes batches of any size from 1: max_batch_size 0 and full shapes")
    size = min(requested, d["max"]) if "max" in d else requested
    note = f"dim '{dim}' leads every input and output: Triton batches along it, up to {size}"
    if "max" in d and d["max"] < requested:
        note += f" (the bundle's max for '{dim}', below --max-batch {requested})"
    return size, note


def _data_type(spec: dict, where: str) -> str:
    dtype = spec["dtype"]
    if dtype not in DATA_TYPES:
        raise PolyonnxError(
            STAGE, f"{where} '{spec['name']}' has dtype '{dtype}', which Triton's ONNX Runtime backend cannot carry",
            f"re-export with one of {', '.join(DATA_TYPES)} for this tensor (cast inside the model)")
    return DATA_TYPES[dtype]


def _dims(spec: dict, batched: bool) -> tuple[list[int], bool]:
    """Config dims (-1 for a dynamic dim; the batch dim left out when batching) and whether it is a scalar."""
    shape = spec["shape"][1:] if batched else spec["shape"]
    dims = [d if isinstance(d, int) else -1 for d in shape]
    # Triton needs at least one dim: a scalar (or [batch] when batching) is dims [1] reshaped to [].
    return (dims, False) if dims else ([1], True)


def _constraint_notes(manifest: dict) -> list[str]:
    """What polyonnx's runtimes enforce and Triton does not: dim bounds and value ranges."""
    notes = []
    for name, d in manifest["dims"].items():
        parts = []
        if d.get("min", 1) != 1:
            parts.append(f"min {d['min']}")
        if "max" in d:
            parts.append(f"max {d['max']}")
        if d.get("multiple_of", 1) != 1:
            parts.append(f"multiple of {d['multiple_of']}")
        if parts:
            notes.append(f"dim '{name}': {', '.join(parts)}")
    for spec in manifest["inputs"]:
        if "value_range" in spec:
            lo, hi = spec["value_range"]
            notes.append(f"input '{spec['name']}': values in [{lo}, {hi}]")
    return notes


def check_servable(manifest: dict, variant: str) -> None:
    """Refuse what the targeted Triton release cannot load: opset, IR version, dtypes."""
    lim = triton_limits()
    v = manifest["variants"][variant]
    what = f"bundle '{manifest['name']}' variant '{variant}'"
    release = f"Triton {lim['release']} (ONNX Runtime {lim['onnxruntime']})"
    if v["opset"] > lim["max_opset"]:
        raise PolyonnxError(
            STAGE, f"{what} needs opset {v['opset']}, but {release} loads opsets up to {lim['max_opset']}",
            f"re-export with --opset {lim['max_opset']} or lower, or serve it with a newer Triton release")
    if v["ir_version"] > lim["max_ir_version"]:
        raise PolyonnxError(
            STAGE, f"{what} has IR version {v['ir_version']}, but {release} loads IR versions up to "
                   f"{lim['max_ir_version']}",
            "re-export it with this polyonnx (it pins the IR version), or serve it with a newer Triton release")
    for side, specs in (("input", manifest["inputs"]), ("output", manifest["outputs"])):
        for spec in specs:
            _data_type(spec, side)


def trt_profile(manifest: dict, batch_size: int) -> dict[str, str] | None:
    """TensorRT optimization-profile shapes (min/opt/max per input) when every dynamic dim is bounded.

    Without a profile, ONNX Runtime's TensorRT provider builds an engine for the first shape it
    sees and rebuilds it whenever a request falls outside; with one, it builds once for the whole
    range. The batch dim's max is max_batch_size when Triton batches; the others need a `max` in
    polyonnx.json (schema 2). Returns None when some dim has no upper bound.
    """
    bdim = batch_dim(manifest) if batch_size > 0 else None
    shapes = {"min": [], "opt": [], "max": []}
    for spec in manifest["inputs"]:
        per_axis = []  # (min, opt, max) per axis
        for d in spec["shape"]:
            if isinstance(d, int):
                per_axis.append((d, d, d))
                continue
            info = manifest["dims"][d]
            top = batch_size if d == bdim else info.get("max")
            if top is None:
                return None
            low = info.get("min", 1)
            per_axis.append((low, min(max(info["example"], low), top), top))
        for i, key in enumerate(("min", "opt", "max")):
            shapes[key].append(f"{spec['name']}:{'x'.join(str(axis[i]) for axis in per_axis)}")
    return {f"trt_profile_{k}_shapes": ",".join(v) for k, v in shapes.items()}


# -- the config text ------------------------------------------------------------------------------

def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensor_block(spec: dict, where: str, batched: bool) -> list[str]:
    dims, scalar = _dims(spec, batched)
    lines = ["  {", f"    name: {_q(spec['name'])}", f"    data_type: {_data_type(spec, where)}",
             f"    dims: [ {', '.join(map(str, dims))} ]"]
    if scalar:
        lines.append("    reshape: { shape: [ ] }")
    lines.append("  }")
    return lines


def _tensor_list(key: str, specs: list[dict], where: str, batched: bool) -> list[str]:
    lines = [f"{key} ["]
    for i, spec in enumerate(specs):
        block = _tensor_block(spec, where, batched)
        if i < len(specs) - 1:
            block[-1] += ","
        lines += block
    return lines + ["]"]


def triton_config(manifest: dict, variant: str, options: TritonOptions = TritonOptions()) -> str:
    """config.pbtxt text for one variant of a bundle (protobuf text format, with # comments)."""
    options.check()
    check_servable(manifest, variant)
    v = manifest["variants"][variant]
    name = model_name(manifest["name"], variant, manifest["default_variant"])
    size, batch_note = max_batch_size(manifest, options.max_batch)
    lim = triton_limits()
    method = v["quantization"]["method"]
    head = [
        f"# Triton model '{name}': bundle '{manifest['name']}', variant '{variant}' "
        f"({v['file']}, sha256 {v['sha256']}; quantization {method}).",
        f"# Written by `polyonnx triton` from polyonnx.json for Triton {lim['release']} "
        f"(ONNX Runtime {lim['onnxruntime']}, opset <= {lim['max_opset']}); regenerate rather than edit.",
        f"# Batching: {batch_note}.",
    ]
    notes = _constraint_notes(manifest)
    if notes:
        head.append("# From polyonnx.json, not checked by Triton (a request outside these reaches ONNX Runtime, "
                    "which may fail or answer wrongly; polyonnx's own runtimes refuse it):")
        head += [f"#   {n}" for n in notes]
    lines = head + [
        f"name: {_q(name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {size}",
    ]
    lines += _tensor_list("input", manifest["inputs"], "input", size > 0)
    lines += _tensor_list("output", manifest["outputs"], "output", size > 0)
    if size > 0:
        lines.append("dynamic_batching { }")
    lines += ["instance_group [", f"  {{ count: {options.instances} kind: {KINDS[options.kind]} }}", "]"]
    if options.tensorrt:
        lines += _tensorrt_block(manifest, method, size)
    return "\n".join(lines) + "\n"


def _tensorrt_block(manifest: dict, method: str, batch_size: int) -> list[str]:
    precision = TRT_PRECISION[method]
    params = {"precision_mode": precision, "max_workspace_size_bytes": str(TRT_WORKSPACE_BYTES)}
    profile = trt_profile(manifest, batch_size)
    lines = [f"# TensorRT precision {precision} for a '{method}' variant; nodes TensorRT cannot build run on CUDA."]
    if profile:
        params.update(profile)
        lines.append("# One TensorRT profile from the dims' bounds (min, example, max): one engine for every legal shape.")
    else:
        lines.append("# No TensorRT profile: a dynamic dim has no max in polyonnx.json, so TensorRT builds an engine "
                     "per new shape range on first use.")
    lines += ["optimization { execution_accelerators {", "  gpu_execution_accelerator: [ {", '    name: "tensorrt"']
    lines += [f"    parameters {{ key: {_q(k)} value: {_q(v)} }}" for k, v in params.items()]
    return lines + ["  } ]", "} }"]


# -- the repository -------------------------------------------------------------------------------

def _chosen_variants(bundle: Bundle, wanted: tuple[str, ...] | None) -> list[str]:
    # An ORT-format variant (--edge) is for minimal ONNX Runtime builds: Triton's backend reads
    # 1/model.onnx as ONNX, so it is left out by default and refused when asked for.
    onnx = [v for v, spec in bundle.variants.items() if spec.get("format", "onnx") == "onnx"]
    if wanted is None:
        return onnx
    missing = [v for v in wanted if v not in bundle.variants]
    if missing:
        raise PolyonnxError(
            STAGE, f"bundle '{bundle.name}' has no variant {', '.join(repr(m) for m in missing)} "
                   f"(it has {', '.join(bundle.variants)})",
            "list only variants every bundle has in --variants, or run `polyonnx triton` once per bundle")
    edge = [v for v in wanted if v not in onnx]
    if edge:
        raise PolyonnxError(
            STAGE, f"variant {', '.join(repr(v) for v in edge)} of bundle '{bundle.name}' is in the ORT format, "
                   "which Triton's ONNX Runtime backend does not load as model.onnx",
            f"serve its ONNX variants instead ({', '.join(onnx)})")
    return list(wanted)


def plan_repository(bundles: list[Bundle], options: TritonOptions) -> list[tuple[str, Bundle, str]]:
    """(model name, bundle, variant) for every model the repository will hold; refuses clashes first."""
    options.check()
    plan, seen = [], {}
    for bundle in bundles:
        for variant in _chosen_variants(bundle, options.variants):
            check_servable(bundle.manifest, variant)
            name = model_name(bundle.name, variant, bundle.default_variant)
            if name in seen:
                raise PolyonnxError(
                    STAGE, f"two models would be called '{name}' ({seen[name]} and {bundle.path})",
                    "give the bundles different names (export --name) or write them to separate repositories")
            seen[name] = str(bundle.path)
            plan.append((name, bundle, variant))
    return plan


def write_repository(bundle_paths, out, options: TritonOptions = TritonOptions(), *, force: bool = False) -> list[Path]:
    """Write a Triton model repository at ``out``; returns the config.pbtxt paths, one per model.

    Every model file is checked against its sha256 in polyonnx.json before it is copied, and its
    copy after. The repository is written to a temporary folder and renamed into place, like a
    bundle, so an existing ``out`` is replaced only with ``force``.
    """
    bundles = [Bundle.load(p) for p in bundle_paths]
    if not bundles:
        raise PolyonnxError(STAGE, "no bundle given", "pass one or more bundle folders")
    plan = plan_repository(bundles, options)
    written = []
    with staging_folder(Path(out), force=force, stage=STAGE) as tmp:
        for name, bundle, variant in plan:
            version_dir = tmp / name / "1"
            version_dir.mkdir(parents=True)
            _copy_model(bundle, variant, version_dir)
            (tmp / name / "config.pbtxt").write_text(triton_config(bundle.manifest, variant, options), encoding="utf-8")
            written.append(Path(out) / name / "config.pbtxt")
    return written


def _copy_model(bundle: Bundle, variant: str, version_dir: Path) -> None:
    source = bundle.model_path(variant, check=True)
    v = bundle.variant(variant)
    target = version_dir / "model.onnx"
    shutil.copyfile(source, target)
    # External data keeps its file names: the graph refers to them relative to the model file.
    for extra in v.get("external_data", []):
        shutil.copyfile(bundle.path / extra["file"], version_dir / extra["file"])
    if sha256_file(target) != v["sha256"]:
        raise PolyonnxError(STAGE, f"the copy of '{source}' at '{target}' does not match its sha256",
                            "check the disk the repository is written to, then run again")
