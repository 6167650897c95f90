"""`python -m polyonnx` / `polyonnx`: one subcommand per module, loaded only when used.

Each command module exposes ``configure(parser)`` and ``run(args) -> int``. Keeping the heavy
imports inside those modules is what lets `polyonnx --help` answer without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__
from .errors import PolyonnxError

# name -> (module, one-line help)
COMMANDS = {
    "export": ("polyonnx._cmd_export", "export a PyTorch model (or an .onnx file) to a verified bundle"),
    "verify": ("polyonnx._cmd_verify", "check that every runtime gives the same answers for a bundle"),
    "info": ("polyonnx._cmd_info", "show a bundle's inputs, outputs, dims, variants and checks"),
    "setup-node": ("polyonnx._cmd_setup_node",
                   "install the JS dependencies (onnxruntime-node/-web) the node and wasm runtimes need"),
    "demo": ("polyonnx._cmd_demo", "serve a bundle's demo page on 127.0.0.1 (runs in the browser with onnxruntime-web)"),
    "view": ("polyonnx._cmd_view", "show a variant's graph in Netron, served on 127.0.0.1"),
    "bench": ("polyonnx._cmd_bench", "latency and throughput per runtime x variant x batch size"),
    "report": ("polyonnx._cmd_report", "quantization figures of a bundle: a table and a self-contained HTML plot"),
    "triton": ("polyonnx._cmd_triton", "write a Triton Inference Server model repository from bundles"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyonnx",
        description="PyTorch -> ONNX bundles that give the same answers in Python, Node.js and browsers.",
    )
    parser.add_argument("--version", action="version", version=f"polyonnx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported; `--help` at the top imports none.
        if only == name:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except PolyonnxError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was written (bundles are written to a temporary folder first)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
