"""`polyonnx export MODEL -o DIR`: the export pipeline from the command line."""

from __future__ import annotations

import argparse

from ._spec import parse_dim, parse_range
from .errors import PolyonnxError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="package.module:attr, path/to/file.py:attr (nn.Module instance, subclass or zero-argument "
                        "factory), or path/to/model.onnx")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="bundle folder to write")
    p.add_argument("--input", action="append", default=[], metavar="SPEC",
                   help="an input as NAME:DTYPE[DIMS], e.g. 'input_ids:int64[batch,seq]' (names are dynamic axes, "
                        "numbers static); repeat per input, in forward() order. Omit if the model declares polyonnx_spec. "
                        "On an .onnx: names, ties (same name) or pins (a number) the graph's dims")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE[,min=N,max=N,multiple_of=N]",
                   help="example size and constraints of a dynamic dim, e.g. --dim height=64,min=32,multiple_of=32; "
                        "what is not given is discovered from the model's failures at probe sizes (a traced example "
                        "must be 2 or more)")
    p.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH[:strict]",
                   help="inclusive value range of an input: enforced by every runtime for integers (e.g. token ids), "
                        "for floats only the verification domain unless ':strict'")
    p.add_argument("--feeds", action="append", default=[], metavar="FILE.npz",
                   help="a verification feed set (arrays named after the inputs); repeat for several. For inputs "
                        "random data cannot exercise: indices, shape tensors, recurrent state")
    p.add_argument("--class-axis", action="append", default=[], metavar="OUTPUT=AXIS",
                   help="axis of an output holding class scores, so argmax agreement is checked")
    p.add_argument("--output-names", metavar="A,B", help="comma-separated output names")
    p.add_argument("--name", help="bundle name (default: the model's name)")
    p.add_argument("--opset", type=int, default=20, help="ONNX opset, 18-26 (default 20)")
    p.add_argument("--optimize", choices=["none", "basic", "extended"], default="basic",
                   help="ONNX Runtime offline optimization (default basic: portable to every runtime)")
    from .autoquant import MODES

    p.add_argument("--quantize", choices=list(MODES), default=None,
                   help="quantized variant (default auto: measure dynamic int8, static int8 per calibration method, "
                        "weight-only int4 and fp16 against fp32, ship the best that is accurate enough and faster, "
                        "or none)")
    p.add_argument("--calibration", metavar="FILE",
                   help="calibration data: an .npz, or a folder of .npz/.npy files, arrays named after the inputs")
    p.add_argument("--calibration-method", metavar="M,...", default="MinMax,Entropy,Percentile",
                   help="static calibration methods to try with auto (static uses the first; default all three)")
    p.add_argument("--per-channel", action="store_true", help="per-channel int8 weights (static)")
    p.add_argument("--op-types", metavar="A,B", help="op types to quantize (static), e.g. MatMul,Gemm")
    p.add_argument("--exclude-nodes", metavar="A,B", help="node names to keep in float (static)")
    p.add_argument("--labels", metavar="FILE.npy",
                   help="labels for the calibration samples, in order: auto then reports task accuracy")
    p.add_argument("--max-drop", type=float, default=0.01,
                   help="largest accuracy drop (absolute) a quantized variant may cost (default 0.01)")
    p.add_argument("--edge", action="store_true",
                   help="also ship the default variant in ONNX Runtime's ORT format (variant 'ort', model.ort) with "
                        "required_operators.config, for minimal (mobile, IoT) ONNX Runtime builds; see docs/edge.md")
    p.add_argument("--external-data", action="store_true",
                   help="ship every ONNX variant's weights as ONNX external data (model.onnx.data), listed and "
                        "hashed in polyonnx.json; automatic above protobuf's 2 GB; see docs/large-models.md")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-verify", action="store_true", help="skip run-time comparisons (graph checks still run)")
    p.add_argument("--allow-pickle", action="store_true", help="allow loading a pickled .pt/.pth model (runs its code)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true",
                   help="print the written manifest (polyonnx.json) on stdout instead of the summary table")


def _pairs(values, what, fix):
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not val.lstrip("-").isdigit():
            raise PolyonnxError("export (spec)", f"cannot read {what} {v!r}", fix)
        out[k.strip()] = int(val)
    return out


def _list(text):
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def run(args) -> int:
    from ._progress import cli_steps
    from .pipeline import export
    from .report import print_bundle

    dims = dict(parse_dim(d) for d in args.dim)
    ranges = dict(parse_range(r) for r in args.range)
    class_axes = _pairs(args.class_axis, "--class-axis", "write it as OUTPUT=AXIS, e.g. --class-axis logits=1")
    bundle = export(
        args.model, None, args.out,
        inputs=args.input or None, dims=dims, value_ranges=ranges, class_axes=class_axes,
        output_names=[s.strip() for s in args.output_names.split(",")] if args.output_names else None,
        name=args.name, opset=args.opset, optimize=args.optimize, quantize=args.quantize,
        calibration=args.calibration, verify=not args.no_verify, force=args.force, feeds=args.feeds or None,
        allow_pickle=args.allow_pickle, progress=cli_steps(7 + args.edge + args.external_data, args.quiet),
        edge=args.edge, external_data=args.external_data,
        quant_options={
            "methods": tuple(m.strip() for m in args.calibration_method.split(",") if m.strip()),
            "per_channel": args.per_channel,
            "op_types": _list(args.op_types), "nodes_to_exclude": _list(args.exclude_nodes),
            "labels": args.labels, "max_drop": args.max_drop,
        },
    )
    if args.json:
        from .manifest import to_json

        print(to_json(bundle.manifest), end="")
    else:
        print_bundle(bundle)
    return 0
