"""The edge variant: the shipped default variant in ONNX Runtime's own format (``polyonnx export --edge``).

ONNX Runtime's minimal builds (mobile, IoT) read only the ORT format, a flatbuffer, and are
compiled with just the operators a model needs, listed in a required-operators configuration.
Both are written here by ONNX Runtime's converter (``onnxruntime.tools.convert_onnx_models_to_ort``),
run in a child process: it prints to stdout (which ``--json`` keeps for the manifest), it takes
its optimization level from an environment variable, and a crash there must not end the export.

Portability, measured 2026-11-30: files converted by ONNX Runtime 1.32 (Python) in the 'Fixed'
style at level 'basic' load in onnxruntime-node 1.30 and onnxruntime-web 1.30 for all three
examples (fp32 and int8). The level follows the source variant's ('basic' unless it shipped
'extended' or 'none'): 'all' would bake in CPU-specific layout ops that onnxruntime-web cannot
run, and the 'Runtime' style saves optimizations that only a build with the replay option applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .bundle import sha256_file
from .errors import PolyonnxError, VerificationError, one_line

ORT_VARIANT = "ort"
CONFIG_FILE = "required_operators.config"
# A flatbuffer addresses its contents with 32-bit signed offsets: an ORT-format file holds at most 2 GB.
ORT_FORMAT_LIMIT = 2**31 - 1
# ORT-format files carry the flatbuffer file identifier "ORTM" at bytes 4..8 (onnxruntime's
# ort.fbs `file_identifier`); ONNX Runtime tells the formats apart by it when given bytes.
ORT_MAGIC = b"ORTM"
# The source variant's offline level -> the converter's name for it.
_LEVELS = {"none": "disable", "basic": "basic", "extended": "extended"}
STAGE = "export (edge)"


def is_ort_file(path: Path) -> bool:
    """Whether ``path`` is an ORT-format model (by its flatbuffer identifier, not its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == ORT_MAGIC
    except OSError:
        return False


def ort_file_name(onnx_name: str) -> str:
    """model.onnx -> model.ort, model.int8.onnx -> model.int8.ort."""
    return (onnx_name[:-len(".onnx")] if onnx_name.endswith(".onnx") else onnx_name) + ".ort"


def convert(src: Path, workdir: Path, optimization: str, *, timeout: float = 1800.0) -> tuple[Path, Path]:
    """Convert ``src`` (an .onnx, with its external data beside it) into ``workdir``: the .ort file
    and the required-operators configuration ONNX Runtime's converter wrote."""
    level = _LEVELS[optimization]
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", "--optimization_style", "Fixed",
           "--output_dir", str(workdir), str(src)]
    env = dict(os.environ, ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL=level)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PolyonnxError(STAGE, f"ONNX Runtime's ORT-format converter did not finish within {timeout:.0f} s",
                            "export again without --edge, or convert the bundle's model.onnx yourself with "
                            "`python -m onnxruntime.tools.convert_onnx_models_to_ort`") from None
    models = sorted(workdir.glob("*.ort"))
    configs = sorted(workdir.glob("*required_operators*.config"))
    if proc.returncode != 0 or len(models) != 1 or len(configs) != 1:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no message").splitlines()
        why = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1])
        raise PolyonnxError(STAGE, f"ONNX Runtime's ORT-format converter failed on '{src.name}' "
                            f"(exit {proc.returncode}): {one_line(why, 400)}",
                            "export again without --edge (the ONNX variants are unaffected), and report the model "
                            "to ONNX Runtime if it loads as .onnx")
    return models[0], configs[0]


def _write_config(found: Path, target: Path, model_name: str) -> None:
    """The converter's configuration with its comment naming our scratch path replaced by the
    bundle's file name: the lines a minimal build reads are kept as written."""
    lines = found.read_text(encoding="utf-8").splitlines()
    body = [ln for ln in lines if not ln.startswith("#")]
    head = ["# Operators the ORT-format model needs: pass this file to ONNX Runtime's build.py",
            "# --minimal_build --include_ops_by_config (written by polyonnx with onnxruntime's converter)",
            "# Generated from model/s:", f"# - {model_name}"]
    target.write_text("\n".join(head + body) + "\n", encoding="utf-8")


def operators(config: Path) -> dict[str, list[str]]:
    """The configuration's operators: 'domain;opset;Op1,Op2' lines -> {domain: [op, ...]}."""
    found: dict[str, list[str]] = {}
    for line in config.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        domain, _opset, ops = line.split(";", 2)
        found.setdefault(domain, []).extend(op.split("{")[0] for op in ops.split(",") if op)
    return found


def source_bytes(entry: dict) -> int:
    return entry["bytes"] + sum(e["bytes"] for e in entry.get("external_data", []))


def check_fits(entry: dict, name: str) -> None:
    """Refuse a source over the ORT format's 2 GB before converting it."""
    total = source_bytes(entry)
    if total > ORT_FORMAT_LIMIT:
        raise PolyonnxError(STAGE, f"variant '{name}' is {total / 1e9:.2f} GB with its external data, and the ORT "
                            f"format (a flatbuffer, which cannot point to outside data) holds at most 2 GB",
                            "export without --edge, or with a quantized default variant small enough (int8 or int4)")


def edge_variant(graph, source, stage: Path, ctx):
    """The ORT-format copy of ``source`` (a pipeline.Variant) in ``stage``, with its operators
    configuration, checked against ``source`` on the verification plan like any variant."""
    from . import _ort
    from ._capture import failure_text, run_check, summary
    from .manifest import variant_kind
    from .pipeline import Variant

    with ctx.steps.step(f"convert the {source.name} variant to the ORT format (edge)") as st:
        check_fits(source.entry, source.name)
        workdir = ctx.tmp / "edge"
        found_model, found_config = convert(source.path, workdir, source.optimization)
        target = stage / ort_file_name(source.path.name)
        os.replace(found_model, target)
        config = stage / CONFIG_FILE
        _write_config(found_config, config, target.name)
        kind = variant_kind(source.entry)
        check, outs = run_check(graph.plan, graph.output_specs, target, "python", kind,
                                reference_outputs=source.outputs, variant=ORT_VARIANT)
        check["reference"] = f"python:{source.name}"
        if ctx.verify and not check["passed"]:
            raise VerificationError(STAGE, f"the ORT-format model differs from the {source.name} variant it was "
                                    f"converted from: {failure_text(check)}",
                                    "export again without --edge, and report the model to ONNX Runtime")
        crash = _ort.probe_load(target)
        if crash:
            raise VerificationError(STAGE, f"the ORT-format model is unusable: {crash}", "export again without --edge")
        entry = {"file": target.name, "sha256": sha256_file(target), "bytes": target.stat().st_size,
                 "format": "ort", "converted_from": source.name,
                 "operators_config": {"file": config.name, "sha256": sha256_file(config),
                                      "bytes": config.stat().st_size},
                 "opset": source.entry["opset"], "ir_version": source.entry["ir_version"]}
        domains = sorted(d for d in operators(config) if d not in ("", "ai.onnx"))
        if domains:
            entry["domains"] = domains
        entry.update({"optimization": source.optimization, "quantization": dict(source.entry["quantization"]),
                      "runtimes": list(source.entry["runtimes"])})
        if ctx.verify:
            entry["verification"] = [check]
        ops = sum(len(v) for v in operators(config).values())
        st["result"] = (f"{target.name} {entry['bytes'] / 1e6:.2f} MB, {config.name} ({ops} operators); "
                        + summary(check))
    return Variant(ORT_VARIANT, target, entry, tuple(outs), check, source.optimization)
