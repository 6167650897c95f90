"""polyonnx: PyTorch -> ONNX bundles that give the same answers in Python, Node.js and browsers.

Public API (everything else is private):

- ``export(model, example_inputs, out, ...) -> Bundle``: export, optimize, quantize, verify.
- ``load(path) -> Bundle``: read and validate a bundle.
- ``runtime(name, bundle, variant=None)``: run a bundle in ``python``, ``node``, ``wasm`` ...
- ``Bundle``, ``PolyonnxError`` and its subclasses.

Importing polyonnx imports neither torch nor onnxruntime: the heavy modules load on first use.
"""

from __future__ import annotations

from ._version import __version__
from .errors import IntegrityError, ManifestError, PolyonnxError, VerificationError

__all__ = [
    "__version__",
    "export",
    "load",
    "runtime",
    "Bundle",
    "PolyonnxError",
    "ManifestError",
    "IntegrityError",
    "VerificationError",
]


def export(model, example_inputs=None, out=None, **options):
    """Export ``model`` (an ``nn.Module`` or a path to an ``.onnx`` file) to a verified bundle at ``out``.

    See ``polyonnx.pipeline.export`` for every option.
    """
    from .pipeline import export as _export

    return _export(model, example_inputs, out, **options)


def load(path):
    """Read the bundle at ``path`` (a folder or its ``polyonnx.json``), validate it, return a ``Bundle``."""
    from .bundle import Bundle

    return Bundle.load(path)


def runtime(name, bundle, variant=None, **options):
    """Open ``bundle`` in the runtime called ``name``; returns an object with ``run(feeds)`` and ``close()``."""
    from .runtimes import open_runtime

    return open_runtime(name, bundle, variant=variant, **options)


def __getattr__(name):
    if name == "Bundle":
        from .bundle import Bundle

        return Bundle
    raise AttributeError(f"module 'polyonnx' has no attribute {name!r}")
