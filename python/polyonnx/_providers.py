"""Which execution providers a runtime uses: one rule for Python, Node and the browser.

A caller asks for an ordered list of polyonnx provider names (``cpu``, ``cuda``, ``tensorrt``,
``coreml``, ``webgpu``, ``wasm``...; shared-schemas/providers.json maps each to every runtime's
own name) and a fallback policy:

- ``fallback='error'`` (the default): every provider asked for must be available here, or the
  load fails with ``ProviderError`` (E_PROVIDER) naming what is missing and what there is.
- ``fallback='cpu'``: providers that are not available are dropped, each with its reason, and
  ``cpu`` is appended when something was dropped and the list lacks it.

``choose`` is pure (names in, names out) so that js/providers.mjs can be held to the same
answers by shared-schemas/vectors/providers.json. It imports no onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import PolyonnxError, ProviderError
from .manifest import load_shared

FALLBACKS = ("error", "cpu")


def table() -> dict:
    return load_shared("providers.json")


@dataclass(frozen=True)
class Choice:
    """``providers``: polyonnx names in order of preference; ``native``: the runtime's own names
    for them; ``dropped``: (name, reason) for each provider the fallback left out."""

    providers: tuple[str, ...]
    native: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return {"providers": list(self.providers), "dropped": [{"provider": p, "reason": r} for p, r in self.dropped]}


def _shown(value) -> str:
    """A value as js/providers.mjs shows it (JSON), so both languages word a refusal alike."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def _options_error(stage: str, message: str, fix: str) -> PolyonnxError:
    err = PolyonnxError(stage, message, fix)
    err.code = "E_OPTIONS"
    return err


def check_request(providers, fallback, *, stage: str) -> tuple[list[str], str]:
    """The request, checked: (provider names, fallback). ``None`` means the defaults."""
    known = table()["providers"]
    names = list(table()["default"]) if providers is None else providers
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names \
            or not all(isinstance(n, str) for n in names):
        raise _options_error(stage, f"providers must be a non-empty list of provider names, given {_shown(names)}",
                             f"pass e.g. ['cuda', 'cpu'] (names: {', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _options_error(stage, f"unknown execution provider(s) {', '.join(repr(n) for n in unknown)}",
                             f"use names from shared-schemas/providers.json: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise _options_error(stage, f"providers lists a name twice: {_shown(list(names))}", "list each provider once")
    fallback = "error" if fallback is None else fallback
    if fallback not in FALLBACKS:
        raise _options_error(stage, f"fallback must be one of {', '.join(repr(f) for f in FALLBACKS)}, given {_shown(fallback)}",
                             "pass fallback 'error' to fail when a provider is missing, or 'cpu' to run on the CPU")
    return list(names), fallback


def choose(providers, fallback, runtime: str, available, *, stage: str = "load") -> Choice:
    """Apply the rule for ``runtime`` (python, node, wasm, browser), given the polyonnx names of
    the providers this installation has (``available``)."""
    names, fallback = check_request(providers, fallback, stage=stage)
    known = table()["providers"]
    have = [p for p in known if p in set(available)]
    kept, dropped = [], []
    for name in names:
        if runtime not in known[name]:
            dropped.append((name, f"the {runtime} runtime does not offer '{name}'"))
        elif name not in have:
            dropped.append((name, f"'{name}' is not available in this {runtime} install (it has {', '.join(have) or 'none'})"))
        else:
            kept.append(name)
    if dropped and fallback == "error":
        raise ProviderError(stage, "; ".join(reason for _, reason in dropped),
                            "install a build with that provider (e.g. onnxruntime-gpu for cuda), "
                            "or pass fallback 'cpu' to run on the CPU instead",
                            details={"providers": names, "available": have})
    if dropped and "cpu" not in kept:
        kept.append("cpu")
    # The same runtime name twice (cpu and wasm are both 'wasm' in a browser) is asked for once.
    native = list(dict.fromkeys(known[n][runtime] for n in kept))
    return Choice(tuple(kept), tuple(native), tuple(dropped))


def polyonnx_names(runtime: str, native_names) -> list[str]:
    """The polyonnx names of a runtime's own provider names (unknown ones are left out)."""
    by_native = {}
    for name, per_runtime in table()["providers"].items():
        if runtime in per_runtime:
            by_native.setdefault(per_runtime[runtime], name)
    return [by_native[n] for n in native_names if n in by_native]
