"""The ``browser`` runtime: a bundle variant run by onnxruntime-web inside headless Chromium.

Three processes, started once per Python process and shared by every browser runtime:

- the demo server (``_demo.DemoServer``, a thread here): serves the runner page, the JS package,
  onnxruntime-web's files and each bundle on 127.0.0.1, with COOP/COEP so wasm threads work;
- the driver (``node js/browser-driver.mjs``): playwright-core driving Debian's Chromium, speaking
  the worker protocol (shared-schemas/WIRE.md), so ``_node.NodeWorker`` is its client: the same
  framing, timeouts, crash handling and stderr tail as the node/wasm runtimes;
- Chromium itself, one page per thread count (onnxruntime-web fixes its threads per page).

A model is loaded in the page by polyonnx's browser build (js/browser.mjs): manifest schema,
sha256 via SubtleCrypto, compatibility and feed checks are the JS package's own, and its error
codes (E_FEED, E_INTEGRITY, ...) come back as they are.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._node import JsPackage, WorkerSession
from .errors import PolyonnxError

STAGE = "browser"
ENV_CHROMIUM = "POLYONNX_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_COMMAND = "apt-get update && apt-get install -y chromium"


class BrowserNotFoundError(PolyonnxError):
    """Debian's Chromium (or POLYONNX_CHROMIUM) is not there."""


def find_chromium() -> str:
    """The Chromium executable: POLYONNX_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH."""
    explicit = os.environ.get(ENV_CHROMIUM)
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise BrowserNotFoundError(STAGE, f"{ENV_CHROMIUM}={explicit!r} is not an executable file",
                                       f"point {ENV_CHROMIUM} at Chromium, or unset it and run: {INSTALL_COMMAND}")
        return explicit
    for cand in (DEFAULT_CHROMIUM, shutil.which("chromium")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise BrowserNotFoundError(STAGE, f"no Chromium found (looked at {DEFAULT_CHROMIUM} and PATH)",
                               f"install Debian's Chromium: {INSTALL_COMMAND} (or set {ENV_CHROMIUM})")


def browser_available() -> tuple[bool, str]:
    """(True, what) when the browser runtime can start here, else (False, why and the fix)."""
    try:
        chromium = find_chromium()
        from ._node import find_js, find_node

        find_node()
        js = find_js(("wasm",))
        if js.missing(("playwright-core",)):
            return False, f"browser: playwright-core is not installed in {js.modules} -- {js.install_fix}"
    except PolyonnxError as e:
        return False, str(e)
    return True, f"chromium {chromium}"


# --- the shared server and driver ------------------------------------------------------------------
_lock = threading.Lock()
_server = None
_driver = None


def shared_server():
    """The process-wide demo server (started on first use, a daemon thread)."""
    global _server
    with _lock:
        if _server is None:
            from ._demo import DemoServer

            _server = DemoServer().start()
        return _server


@dataclass(frozen=True)
class _DriverPackage(JsPackage):
    """The JS package, with js/browser-driver.mjs as the process NodeWorker starts."""

    chromium: str = DEFAULT_CHROMIUM

    @property
    def worker(self) -> Path:
        return self.js_dir / "browser-driver.mjs"

    def env(self) -> dict:
        # The driver launches the Chromium found here, so both sides agree on which one.
        return dict(super().env(), **{ENV_CHROMIUM: self.chromium})


def shared_driver(timeout: float = 180.0):
    """The process-wide browser driver (a NodeWorker running js/browser-driver.mjs)."""
    global _driver
    with _lock:
        if _driver is None or _driver.closed:
            from ._node import NodeWorker, find_js

            chromium = find_chromium()
            js = find_js(("wasm",))
            if js.missing(("playwright-core",)):
                raise PolyonnxError(STAGE, f"playwright-core is not installed in {js.modules}", js.install_fix)
            _driver = NodeWorker(js=_DriverPackage(js.js_dir, js.modules, js.clone, chromium), backends=("wasm",),
                                 timeout=timeout)
        return _driver


def _request(worker, op: str, *, timeout=None, **fields) -> dict:
    """worker.request, with the error's stage said as 'browser ...' rather than 'node ...'."""
    from ._node import WorkerRequestError

    try:
        return worker.request(op, timeout=timeout, **fields)
    except WorkerRequestError as e:
        if e.stage.startswith("node "):
            rest = e.stage[len("node "):]
            e.stage = STAGE if rest == STAGE else f"{STAGE} {rest}"
            e.args = (e._render(),)
        raise


class BrowserRuntime(WorkerSession):
    """One variant loaded in a Chromium page. ``threads``: 1 (default) or more (the runner page is
    cross-origin isolated, so onnxruntime-web can use them). ``last_ms``: the last run's time
    inside the page (``performance.now()`` around ``model.run``)."""

    name = "browser"

    def __init__(self, bundle, variant: str | None = None, *, threads: int | None = None, timeout: float | None = None,
                 session_options: dict | None = None, providers=None, fallback: str | None = None):
        from . import _providers
        from .bundle import Bundle

        if providers is not None or fallback is not None:
            # The page's load() takes the same two options and applies the same rule (providers.mjs).
            providers, fallback = _providers.check_request(providers, fallback, stage="browser load")
            session_options = dict(session_options or {}, providers=list(providers), fallback=fallback)

        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        self.timeout = timeout
        self.threads = int(threads or 1)
        self._server = shared_server()
        self._worker = shared_driver()
        self._load_fields = {
            "bundle": self._server.add_bundle(self.bundle),
            "variant": variant,
            "options": dict(session_options) if session_options else None,
            "page": self._server.url(f"/runner.html?threads={self.threads}"),
        }
        self.variant = variant or self.bundle.default_variant
        self.info: dict = {}
        self._load()  # a driver restart loses every page: WorkerSession.run loads again

    def _request(self, op: str, *, runs: int = 1, **fields) -> dict:
        return _request(self._worker, op, timeout=self._timeout(runs), **fields)

    def _loaded(self, result: dict) -> None:
        self.info = result.get("info") or {}

    def __repr__(self) -> str:
        return f"<polyonnx browser runtime: {self.bundle.name!r} variant {self.variant!r}, {self.threads} thread(s)>"


class Page:
    """A page of the shared browser, for tests and screenshots: ``goto``, ``eval``, ``draw``, ``screenshot``."""

    def __init__(self, url: str, *, wait: str | None = None, timeout: float | None = None):
        self._worker = shared_driver()
        self.timeout = timeout
        self.id = _request(self._worker, "goto", url=url, wait=wait, timeout=timeout)["page"]

    def eval(self, function_source: str, arg=None):
        """Call the JS function ``function_source`` in the page with ``arg``; returns its JSON result."""
        import json

        return json.loads(_request(self._worker, "eval", page=self.id, expression=function_source, arg=arg,
                                   timeout=self.timeout)["value"])

    def wait(self, predicate_source: str, timeout_ms: int = 30000) -> None:
        _request(self._worker, "wait", page=self.id, expression=predicate_source, timeout_ms=timeout_ms,
                 timeout=self.timeout)

    def draw(self, selector: str, strokes: list[list[tuple[float, float]]], steps: int = 4) -> None:
        """Mouse strokes on ``selector``, points in fractions (0..1) of its box."""
        _request(self._worker, "draw", page=self.id, selector=selector,
                 strokes=[[list(map(float, p)) for p in s] for s in strokes], steps=steps, timeout=self.timeout)

    def screenshot(self, path, selector: str | None = None, full_page: bool = False,
                   viewport: tuple[int, int] | None = None) -> Path:
        """A PNG of the page (or of ``selector``); ``viewport`` (width, height) resizes the page first."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _request(self._worker, "screenshot", page=self.id, path=str(path.resolve()), selector=selector,
                 full_page=full_page or None, timeout=self.timeout,
                 viewport={"width": viewport[0], "height": viewport[1]} if viewport else None)
        return path


def shutdown() -> None:
    """Stop the shared driver (and its Chromium) and the server; the next use starts new ones."""
    global _server, _driver
    with _lock:
        if _driver is not None:
            _driver.close()
            _driver = None
        if _server is not None:
            _server.close()
            _server = None
