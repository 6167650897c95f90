"""Runtimes: one bundle variant opened in ONNX Runtime Python, onnxruntime-node, or onnxruntime-web.

``open_runtime(name, bundle, variant=None, **options)`` returns an object with
``run(feeds) -> {output name: numpy array}``, ``close()``, and context-manager support.
``RUNTIMES`` maps each name to its opener; adding a runtime is one entry there (and one in
``MANIFEST_NAMES``). ONNX Runtime Python is reached through ``_ort`` (the one module importing onnxruntime);
onnxruntime-node and onnxruntime-web through the Node worker (``_node``, js/worker.mjs).

Options every runtime takes: ``threads`` (intra-op threads; for wasm, onnxruntime-web's
numThreads, fixed per worker process at its first wasm session) and ``timeout`` (seconds per
request, node/wasm only).
"""

from __future__ import annotations

import functools
import time

import numpy as np

from . import _browser
from ._node import WorkerSession
from .bundle import Bundle
from .errors import FeedError, IntegrityError, PolyonnxError
from .feeds import as_arrays, check_feeds, check_names

# Runtime name -> the word a variant's `runtimes` list uses for it in polyonnx.json.
MANIFEST_NAMES = {"python": "python", "node": "node", "wasm": "web", "browser": "web"}


def _as_bundle(bundle) -> Bundle:
    return bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)


def _check_feed_names(name: str, feeds: dict, inputs: list[dict]) -> None:
    expected = [spec["name"] for spec in inputs]
    if not isinstance(feeds, dict):
        raise FeedError(f"{name} run", f"feeds must be a dict keyed by input name, given {type(feeds).__name__}",
                        f"pass {{{', '.join(f'{n!r}: ...' for n in expected)}}} (inputs are matched by name)")
    check_names(feeds, inputs, stage=f"{name} run")


def _check_external_data_listed(bundle: Bundle, variant: str, path) -> None:
    """ONNX Runtime reads whatever external data files a model names; only files polyonnx.json
    lists are hashed, so a model naming any other file is refused (issue #11: an unlisted weights
    file could be swapped and change the answers with no integrity error)."""
    from . import _graph

    listed = {e["file"] for e in bundle.variant(variant).get("external_data", [])}
    unlisted = sorted(_graph.external_data_files(path) - listed)
    if unlisted:
        raise IntegrityError("python load", f"variant '{variant}' of '{bundle.name}' reads {', '.join(map(repr, unlisted))}, "
                             "which polyonnx.json does not list, so nothing checks its bytes",
                             "re-export the bundle (export lists and hashes every external data file)")


class _Runtime:
    """Shared shape: ``name``, ``bundle``, ``variant``, ``run``, ``close``, context manager."""

    name = "?"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<polyonnx {self.name} runtime: {self.bundle.name!r} variant {self.variant!r}>"


class PythonRuntime(_Runtime):
    """ONNX Runtime Python, the reference every other runtime is compared with (on the CPU unless
    ``providers`` asks for more: an ordered list of polyonnx names, with ``fallback`` 'error' or
    'cpu'; see _providers)."""

    name = "python"
    last_times_ms: list = []  # the last run()'s times, one per repeat

    def __init__(self, bundle, variant: str | None = None, *, threads: int | None = None, timeout=None,
                 providers=None, fallback: str | None = None):
        from . import _ort, _providers

        self.bundle = _as_bundle(bundle)
        self.variant = variant or self.bundle.default_variant
        # The request is checked before any file is read: a typo fails first, as in JS.
        choice = _providers.choose(providers, fallback, "python",
                                   _providers.polyonnx_names("python", _ort.available_providers()),
                                   stage="python load")
        path = self.bundle.model_path(self.variant, check=True)  # size + sha256 before loading
        _check_external_data_listed(self.bundle, self.variant, path)
        # "extended": the highest level polyonnx ships offline (portable to Node and the web).
        # onnxruntime-node/-web sessions keep their own default ("all"); any difference that
        # makes must stay inside tolerances.json, which is what `polyonnx verify` checks.
        self._ort = _ort
        self._session = _ort.session(path, threads=threads, level="extended", stage="python load",
                                     providers=choice.native)
        # What ONNX Runtime registered, not what was asked for (it can refuse a provider at load).
        self.providers = tuple(_providers.polyonnx_names("python", self._session.get_providers()))
        self._dropped = choice.dropped

    def info(self) -> dict:
        """The runtime, variant and the providers this session runs on (and any fallback taken)."""
        return {"runtime": self.name, "variant": self.variant, "providers": list(self.providers),
                "providers_dropped": [{"provider": p, "reason": r} for p, r in self._dropped]}

    def run(self, feeds: dict, outputs: list[str] | None = None, *, repeat: int = 1) -> dict[str, np.ndarray]:
        """{output name: numpy array}. ``repeat`` > 1 runs that many times back to back (the outputs
        are the last run's), each run's time in ``last_times_ms``, as the node, wasm and browser
        runtimes do."""
        from .wire import check_repeat

        check_repeat(repeat, "python run")
        times = []
        for _ in range(repeat):  # each a whole run, checks included, as model.run repeats in JS
            t0 = time.perf_counter()
            result = self._run_once(feeds, outputs)
            times.append((time.perf_counter() - t0) * 1000)
        self.last_times_ms = times
        return result

    def _run_once(self, feeds: dict, outputs) -> dict[str, np.ndarray]:
        if self._session is None:
            raise PolyonnxError("python run", f"the runtime for '{self.bundle.name}' was closed", "open a new runtime")
        _check_feed_names("python", feeds, self.bundle.inputs)
        arrays = as_arrays(feeds, self.bundle.inputs, stage="python run")
        # What Node and the browser refuse, refused here too, before ONNX Runtime sees it
        # (a zero-length GRU axis aborts the process inside ORT).
        check_feeds(arrays, self.bundle.inputs, self.bundle.dims, stage="python run")
        names = list(outputs) if outputs else [o["name"] for o in self.bundle.outputs]
        values = self._ort.run(self._session, arrays, names, stage="python run")
        return {n: values[n] for n in names}

    def close(self) -> None:
        self._session = None


class NodeRuntime(WorkerSession, _Runtime):
    """A session in the shared Node worker: ``backend='node'`` (onnxruntime-node) or ``'wasm'``
    (onnxruntime-web's wasm backend in Node). Loading goes through the JS package's own manifest,
    compatibility, integrity and feed checks; their errors come back with their JS codes.
    ``last_ms``: the last run's time inside Node, around ``model.run``."""

    def __init__(self, bundle, variant: str | None = None, *, backend: str = "node", threads: int | None = None,
                 timeout: float | None = None, worker=None, session_options: dict | None = None, providers=None,
                 fallback: str | None = None):
        from . import _node, _providers

        self.name = backend
        self.bundle = _as_bundle(bundle)
        self.timeout = timeout
        options = dict(session_options or {})
        if providers is not None or fallback is not None:
            # Checked here with the JS rule's words, before a worker starts; JS checks again.
            providers, fallback = _providers.check_request(providers, fallback, stage=f"{backend} load")
            options.update(providers=list(providers), fallback=fallback)
        self._worker = worker or _node.shared_worker(backends=(backend,))
        if threads and backend == "node":
            options.setdefault("intraOpNumThreads", int(threads))
        self._load_fields = {
            "bundle": str(self.bundle.path.resolve()), "variant": variant, "backend": backend,
            "options": options or None, "wasm_threads": int(threads) if threads and backend == "wasm" else None,
        }
        self.variant = variant or self.bundle.default_variant
        self._load()

    def _loaded(self, result: dict) -> None:
        self._ran_on = {"providers": list(result.get("providers") or []),
                        "providers_dropped": list(result.get("providers_dropped") or [])}

    def info(self) -> dict:
        """The runtime, variant and the providers its session runs on (and any fallback taken)."""
        return {"runtime": self.name, "variant": self.variant, **getattr(self, "_ran_on", {})}


RUNTIMES = {
    "python": PythonRuntime,
    "node": functools.partial(NodeRuntime, backend="node"),
    "wasm": functools.partial(NodeRuntime, backend="wasm"),
    "browser": _browser.BrowserRuntime,
}


def open_runtime(name: str, bundle, variant: str | None = None, **options):
    """Open ``variant`` (default: the manifest's default_variant) of ``bundle`` in runtime ``name``."""
    if name not in RUNTIMES:
        raise PolyonnxError("runtime", f"unknown runtime {name!r}", f"use one of {', '.join(RUNTIMES)}")
    return RUNTIMES[name](bundle, variant, **options)


def available(name: str) -> tuple[bool, str]:
    """(True, what) when runtime ``name`` can be opened here, else (False, why and the fix)."""
    if name == "python":
        import importlib.util

        ok = importlib.util.find_spec("onnxruntime") is not None
        return ok, "onnxruntime" if ok else "python: onnxruntime is not installed -- pip install onnxruntime"
    if name in ("node", "wasm"):
        from ._node import node_available

        return node_available((name,))
    if name == "browser":
        return _browser.browser_available()
    return False, f"unknown runtime {name!r}"
