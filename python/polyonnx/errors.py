"""Errors polyonnx raises. Each names the stage, the thing, and what to do next."""

from __future__ import annotations


def one_line(text, limit: int = 240) -> str:
    """``text`` (an error, a runtime's message) on one line, cut to ``limit`` characters, for a
    reason quoted inside another message."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " ..."


class PolyonnxError(Exception):
    """A failure a user can act on.

    ``stage`` is the pipeline stage ("export", "verify", "quantize", "load", ...),
    ``message`` says what went wrong with which thing, ``fix`` says what to do next.
    The CLI prints ``str(err)`` and exits with status 2.
    """

    exit_code = 2
    code = "E_POLYONNX"  # the same stable codes as js/errors.mjs

    def __init__(self, stage: str, message: str, fix: str | None = None, *, details: dict | None = None):
        self.stage = stage
        self.message = message
        self.fix = fix
        self.details = details or {}
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.stage}: {self.message}"
        if self.fix:
            text += f" -- {self.fix}"
        return text


class ManifestError(PolyonnxError):
    """polyonnx.json is missing, malformed or does not match the schema."""

    code = "E_MANIFEST"


class IntegrityError(PolyonnxError):
    """A bundle file's sha256 or size differs from the manifest."""

    code = "E_INTEGRITY"


class FeedError(PolyonnxError):
    """A feed has the wrong rank or dims, a size outside its dim's constraints, or a value outside
    the input's value_range: refused before ONNX Runtime sees it, with js/feeds.mjs's words."""

    code = "E_FEED"


class VerificationError(PolyonnxError):
    """An exported or quantized model gives answers outside tolerance."""

    code = "E_VERIFY"


class ProviderError(PolyonnxError):
    """An execution provider that was asked for is not available, and the fallback is 'error'
    (js/errors.mjs: a CompatibilityError with this code)."""

    code = "E_PROVIDER"
