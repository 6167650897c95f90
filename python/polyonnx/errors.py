"""Errors polyonnx raises. Each names the stage, the thing, and what to do next."""

from __future__ import annotations


class PolyonnxError(Exception):
    """A failure a user can act on.

    ``stage`` is the pipeline stage ("export", "verify", "quantize", "load", ...),
    ``message`` says what went wrong with which thing, ``fix`` says what to do next.
    The CLI prints ``str(err)`` and exits with status 2.
    """

    exit_code = 2

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


class IntegrityError(PolyonnxError):
    """A bundle file's sha256 or size differs from the manifest."""


class VerificationError(PolyonnxError):
    """An exported or quantized model gives answers outside tolerance."""
