"""The demo server: a bundle, the JS package and onnxruntime-web's files, served on loopback.

Used by ``python -m polyonnx demo BUNDLE`` (a person at a browser) and by the ``browser`` runtime
(headless Chromium driven by js/browser-driver.mjs). Standard library only.

Routes (all GET/HEAD, 127.0.0.1 only):

- ``/``: the demo page (js/demo/index.html) for the bundle at ``/bundle/``; ``/runner.html`` is the
  bare page the browser runtime drives.
- ``/demo/...``: the page's own files (js/demo/).
- ``/pkg/...``: the polyonnx JS package (js/, package.json, shared-schemas/*.json): the page
  imports ``/pkg/js/browser.mjs`` through its import map, exactly as a web developer would.
- ``/ort/...``: node_modules/onnxruntime-web/dist/.
- ``/bundle/...`` and ``/bundles/<key>/...``: polyonnx.json and the files it names, nothing else.
- ``/samples/digits.json``: held-out scikit-learn digits for the digits page (when scikit-learn is there).

Only regular files are served, and a link only to a file inside its own folder (bundle, page,
package); a request whose ``Host`` is not 127.0.0.1/localhost/[::1] at the bound port gets 403
(DNS rebinding), a path with control characters or undecodable escapes 400 (issue #11).

Every response carries COOP/COEP (cross-origin isolation, which wasm threads need: without it
SharedArrayBuffer does not exist and onnxruntime-web runs one thread) and CORP.
"""

from __future__ import annotations

import email.utils
import functools
import json
import os
import stat
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .bundle import Bundle
from .errors import PolyonnxError

STAGE = "demo"
HOST = "127.0.0.1"

MIME = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm",
    ".onnx": "application/octet-stream", ".data": "application/octet-stream", ".png": "image/png",
    ".svg": "image/svg+xml", ".map": "application/json",
}

ISOLATION_HEADERS = {
    # Cross-origin isolation (crossOriginIsolated === true): SharedArrayBuffer, hence wasm threads.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}

DIGITS_HELD_OUT = 360  # the digits example's held-out tail (python/polyonnx/examples/_digits.py)


def _bundle_files(bundle: Bundle) -> set[str]:
    names = {"polyonnx.json"}
    for v in bundle.manifest["variants"].values():
        names.add(v["file"])
        names.update(e["file"] for e in v.get("external_data", []))
    return names


@functools.lru_cache(maxsize=1)
def digit_samples(per_class: int = 2) -> list[dict]:
    """Held-out scikit-learn digits (values 0..16, as in the training data), a few per class."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images, labels = data.images[-DIGITS_HELD_OUT:], data.target[-DIGITS_HELD_OUT:]
    out, seen = [], {}
    for i, (img, label) in enumerate(zip(images, labels)):
        if seen.get(int(label), 0) < per_class:
            seen[int(label)] = seen.get(int(label), 0) + 1
            out.append({"label": int(label), "index": len(data.images) - DIGITS_HELD_OUT + i,
                        "pixels": [int(v) for v in img.ravel()]})
    return sorted(out, key=lambda s: (s["label"], s["index"]))


class DemoServer:
    """An HTTP server on 127.0.0.1 (``port=0``: a free port) in a background thread or the foreground."""

    def __init__(self, bundle=None, *, port: int = 0, quiet: bool = True):
        from ._node import find_js

        js = find_js(("wasm",))  # raises naming the npm install command when onnxruntime-web is missing
        self.package_root = js.js_dir.parent
        self.page_dir = js.js_dir / "demo"
        self.ort_dist = js.modules / "onnxruntime-web" / "dist"
        for need, what in ((self.page_dir / "index.html", "the demo page"), (self.ort_dist / "ort.wasm.min.mjs", "onnxruntime-web")):
            if not need.is_file():
                raise PolyonnxError(STAGE, f"{what} is missing ({need})", js.install_fix)
        self.quiet = quiet
        self._bundles: dict[str, tuple[Path, set[str]]] = {}
        self._lock = threading.Lock()
        self.bundle = None
        if bundle is not None:
            self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
            self._bundles["bundle"] = (self.bundle.path.resolve(), _bundle_files(self.bundle))
        try:
            self.httpd = ThreadingHTTPServer((HOST, port), functools.partial(_Handler, self))
        except OSError as e:
            raise PolyonnxError(STAGE, f"cannot listen on {HOST}:{port} ({e.strerror or e})",
                                "pick another --port, or leave it out to get a free one") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def add_bundle(self, bundle) -> str:
        """Serve another bundle; returns its folder URL (``/bundles/<key>/``)."""
        bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        folder = bundle.path.resolve()
        with self._lock:
            for key, (path, _) in self._bundles.items():
                if path == folder and key != "bundle":
                    self._bundles[key] = (folder, _bundle_files(bundle))  # files may have been re-exported
                    return self.url(f"/bundles/{key}/")
            key = f"{len(self._bundles)}-{urllib.parse.quote(bundle.name, safe='')}"
            self._bundles[key] = (folder, _bundle_files(bundle))
        return self.url(f"/bundles/{key}/")

    def start(self) -> "DemoServer":
        """Serve from a daemon thread (returns at once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"polyonnx-demo-{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown() if self._thread else None
        self.httpd.server_close()

    # -- routing ---------------------------------------------------------------------------------
    def resolve(self, path: str) -> Path | bytes | None:
        """The file (or generated bytes) for a URL path, or None (404)."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\\" in p or "\x00" in p or p.startswith(".") for p in parts):
            return None
        if not parts:
            return self.page_dir / "index.html"
        head, rest = parts[0], parts[1:]
        if head in ("index.html", "runner.html") and not rest:
            return self.page_dir / head
        if head == "demo":
            return _inside(self.page_dir, rest)
        if head == "ort" and len(rest) == 1:
            return _inside(self.ort_dist, rest)
        if head == "pkg":
            if rest == ["package.json"]:
                return self.package_root / "package.json"
            if rest[:1] == ["js"] or (rest[:1] == ["shared-schemas"] and len(rest) == 2 and rest[1].endswith(".json")):
                return _inside(self.package_root, rest)
            return None
        if head == "bundle" and len(rest) == 1:
            return self._bundle_file("bundle", rest[0])
        if head == "bundles" and len(rest) == 2:
            return self._bundle_file(urllib.parse.unquote(rest[0]), rest[1])
        if parts == ["samples", "digits.json"]:
            try:
                return json.dumps(digit_samples()).encode()
            except ImportError:
                return None
        return None

    def _bundle_file(self, key: str, name: str) -> Path | None:
        with self._lock:
            entry = self._bundles.get(key)
        if entry is None or name not in entry[1]:
            return None  # only polyonnx.json and the files it names
        real = (entry[0] / name).resolve()
        # A link is followed only to a file in the bundle folder itself (a model.onnx -> /etc/passwd
        # link was served before issue #11).
        return real if real.parent == entry[0] else None


def _inside(root: Path, parts: list[str]) -> Path | None:
    target = root.joinpath(*parts).resolve() if parts else None
    if target is None or not target.is_relative_to(root.resolve()):
        return None
    return target


def _open_regular(path: Path):
    """An open binary file and its stat when ``path`` is a regular file, else None.

    O_NONBLOCK: a FIFO in the bundle would otherwise block the open (and the thread) forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb"), st


def _allowed_hosts(port: int) -> set[str]:
    """Host header values a page on this server sends: loopback names at the bound port.

    Anything else is refused, so a DNS-rebinding page (evil.example resolving to 127.0.0.1)
    cannot read the bundle through a visitor's browser.
    """
    names = ("127.0.0.1", "localhost", "[::1]")
    return {f"{n}:{port}" for n in names} | (set(names) if port == 80 else set())


class _Handler(BaseHTTPRequestHandler):
    server_version = "polyonnx-demo"

    def __init__(self, demo: DemoServer, *args, **kwargs):
        self.demo = demo
        super().__init__(*args, **kwargs)

    def log_message(self, fmt, *args):
        if not self.demo.quiet:
            super().log_message(fmt, *args)

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _not_allowed(self):
        # A 4xx, not http.server's 501: the server is read-only, the method is the client's mistake.
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _headers(self, status: int, ctype: str, length: int, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        # Revalidate every time (If-Modified-Since below): a re-exported bundle must not be served stale.
        self.send_header("Cache-Control", "no-cache")
        for k, v in {**ISOLATION_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()

    def _text(self, status: int, text: str, body: bool) -> None:
        data = f"polyonnx demo: {text}\n".encode()
        self._headers(status, "text/plain; charset=utf-8", len(data))
        if body:
            self.wfile.write(data)

    def _serve(self, body: bool) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in _allowed_hosts(self.demo.port):
            self._text(HTTPStatus.FORBIDDEN, f"Host {host or '(none)'!r} is not this server "
                       f"(open {self.demo.url('/')})", body)
            return
        path = urllib.parse.urlsplit(self.path).path
        if path == "/favicon.ico":
            self._headers(HTTPStatus.NO_CONTENT, "image/x-icon", 0)
            return
        try:
            decoded = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            decoded = "\x00"  # not UTF-8 once decoded: malformed like a control character
        if any(ord(c) < 0x20 or c == "\x7f" for c in decoded) or len(decoded) > 1024:
            self._text(HTTPStatus.BAD_REQUEST, "malformed path (control characters, or longer than 1024)", body)
            return
        try:
            found = self.demo.resolve(decoded)
            opened = _open_regular(found) if isinstance(found, Path) else None
        except (ValueError, OSError):  # a name the file system refuses (too long, undecodable)
            self._text(HTTPStatus.NOT_FOUND, f"nothing at {path}", body)
            return
        if isinstance(found, bytes):
            self._headers(HTTPStatus.OK, "application/json", len(found))
            if body:
                self.wfile.write(found)
            return
        if opened is None:
            self._text(HTTPStatus.NOT_FOUND, f"nothing at {path}", body)
            return
        with opened[0] as f:
            self._send_file(f, opened[1], MIME.get(found.suffix, "application/octet-stream"), body)

    def _send_file(self, f, st: os.stat_result, ctype: str, body: bool) -> None:
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                if int(email.utils.parsedate_to_datetime(since).timestamp()) >= int(st.st_mtime):
                    self._headers(HTTPStatus.NOT_MODIFIED, ctype, 0, {"Last-Modified": modified})
                    return
            except (TypeError, ValueError):
                pass
        self._headers(HTTPStatus.OK, ctype, st.st_size, {"Last-Modified": modified})
        if body:
            try:
                # Exactly the size announced, even if the file grows meanwhile.
                remaining = st.st_size
                while remaining > 0:
                    chunk = f.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away mid-download


def serve(bundle, *, port: int = 0, open_browser: bool = False, quiet: bool = True, terse: bool = False) -> int:
    """Run the demo server in the foreground until Ctrl-C (``python -m polyonnx demo``). ``terse``
    prints the URL alone (``-q``), for a script that reads it."""
    server = DemoServer(bundle, port=port, quiet=quiet)
    url = server.url("/")
    print(url if terse else f"polyonnx demo: {url}  (bundle '{server.bundle.name}', variants "
          f"{', '.join(server.bundle.variants)}; Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser

        if not webbrowser.open(url) and not terse:
            print("polyonnx demo: no browser to open here; open the URL above yourself", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":  # a quick manual check: python -m polyonnx._demo BUNDLE
    import sys

    sys.exit(serve(sys.argv[1], port=int(os.environ.get("PORT", "0"))))
