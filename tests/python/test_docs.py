"""Every code snippet in README.md and docs/*.md runs (issue #12, part 5).

Each Markdown file gets a fresh workspace outside the clone, and its fenced blocks run there in
order, as a reader would type them:

- ``sh``/``bash``: bash -euo pipefail, with this checkout's ``.venv/bin`` first on PATH (so
  ``polyonnx`` and ``python`` are the installed ones);
- ``python``: the venv's python;
- ``js``: Node, as an ES module (``.mjs``), or as CommonJS (``.cjs``) when tagged ``tour-cjs``;
- ``ts``: compiled by ``tsc`` under ``module: nodenext``, then run by Node;
- ``html``: served on 127.0.0.1 (cross-origin isolated) and opened in headless Debian Chromium; the
  snippet passes when its module script runs to the end with no page error;
- ``json``/``yaml``: parsed;
- ``text``: output and synopses, not code.

``polyonnx`` resolves in the workspace through ``node_modules/polyonnx`` (a link to this checkout).
The example bundles a doc declares on its "Examples below use:" line are copied into ``bundles/``
first (a doc's own exports are run as shown). A block that cannot run on any CI machine (it needs Docker or a GPU)
says so in its info string (``sh skip=docker``); only the reasons in ``SKIP_REASONS`` are allowed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_REASONS = {
    "docker": "runs Triton Inference Server in Docker: no container runtime on CI (docs/triton.md says so)",
    "kubernetes": "applies a KServe InferenceService: no cluster on CI",
    "gpu": "needs an NVIDIA GPU and onnxruntime-gpu: scripts/gpu-check.sh runs it where one exists",
    "bench": "a benchmark of minutes: CI runs the same code on a subset (tests/python/test_onnx_backend.py, "
             "test_corpus.py, test_bench.py, tests/js/isolation.test.js)",
    "ort-build": "compiles ONNX Runtime from an onnxruntime checkout (about an hour): not on CI",
    "ci": "the clone's own set-up and test commands: .ci/run runs exactly these two lines",
    "install": "installs from PyPI/npm into the reader's environment: tests/js/package.test.js and "
               "tests/python/test_package_no_torch.py install the real packages into fresh projects",
}
NOT_CODE = {"text", "console", "output", ""}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)
EXPORT_TARGET = re.compile(r"-o\s+bundles/([A-Za-z0-9_]+)")
USES = "Examples below use: "


def blocks(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        info = m.group(1).strip().split()
        lang = info[0].lower() if info else ""
        attrs = dict(a.split("=", 1) if "=" in a else (a, True) for a in info[1:])
        found.append({"lang": lang, "attrs": attrs, "code": m.group(2), "line": text[:m.start()].count("\n") + 1})
    return found


class _Handler(http.server.SimpleHTTPRequestHandler):
    # Cross-origin isolation, as `polyonnx demo` serves: onnxruntime-web may use threads.
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


class Workspace:
    def __init__(self, path: Path, bundles: Path, doc_text: str):
        self.path = path
        self.env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("PYTHONPATH", None)
        modules = path / "node_modules"
        (modules / "@types").mkdir(parents=True)
        (modules / "polyonnx").symlink_to(ROOT)
        for name in ("onnxruntime-node", "onnxruntime-web", "onnxruntime-common", "@types/node"):
            if (ROOT / "node_modules" / name).exists():
                (modules / name).symlink_to(ROOT / "node_modules" / name)
        # Only the example bundles the doc says it uses (its "Examples below use:" line, which
        # also tells the reader how to make them) and does not export itself: a doc relying on
        # one it never names fails here, as it would for a reader.
        exported = set(EXPORT_TARGET.findall(doc_text))
        declared = {n for line in doc_text.splitlines() if line.startswith(USES)
                    for n in re.findall(r"bundles/([A-Za-z0-9_]+)", line)}
        for name in sorted(declared - exported):
            shutil.copytree(bundles / name, path / "bundles" / name)
        self._server = None
        self._n = 0

    def url(self) -> str:
        if self._server is None:
            handler = functools.partial(_Handler, directory=str(self.path))
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def close(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _run(self, cmd, stdin=None, timeout=900):
        return subprocess.run(cmd, cwd=self.path, env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=timeout)

    def run(self, block: dict) -> subprocess.CompletedProcess | str | None:
        lang, code, attrs = block["lang"], block["code"], block["attrs"]
        self._n += 1
        if lang in ("sh", "bash", "shell"):
            return self._run(["bash", "-euo", "pipefail", "-c", code])
        if lang == "python":
            return self._run([str(ROOT / ".venv" / "bin" / "python"), "-"], stdin=code)
        if lang in ("js", "javascript", "mjs", "cjs"):
            cjs = lang == "cjs" or "tour-cjs" in attrs
            script = self.path / f"snippet{self._n}.{'cjs' if cjs else 'mjs'}"
            script.write_text(code)
            return self._run(["node", script.name])
        if lang in ("ts", "typescript"):
            folder = self.path / f"ts{self._n}"
            folder.mkdir()
            (folder / "package.json").write_text('{"type": "module"}')
            (folder / "snippet.ts").write_text(code)
            (folder / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
                "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "strict": True,
                "types": ["node"], "typeRoots": [str(self.path / "node_modules" / "@types")], "outDir": "out"},
                "files": ["snippet.ts"]}))
            built = self._run([str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", str(folder)])
            if built.returncode:
                return built
            out = folder / "out" / "snippet.js"
            return self._run(["node", str(out.relative_to(self.path))])
        if lang == "html":
            page = self.path / f"snippet{self._n}.html"
            # Marks the end of the last module script: set only after its every top-level await.
            marked = re.sub(r"</script>(?![\s\S]*<script type=\"module\")", "\n;window.__snippetDone = true;\n</script>",
                            code, count=1) if '<script type="module"' in code else code
            page.write_text(f"<!doctype html><meta charset=utf-8><body>\n{marked}\n</body>")
            done = self._run(["node", str(ROOT / "tests" / "docs" / "run_html.mjs"), self.url() + page.name])
            if done.returncode:
                return done
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if not result["done"] or result["errors"]:
                return f"the page did not finish: errors {result['errors']}; console {result['console'][-10:]}"
            return None
        if lang == "json":
            try:
                json.loads(code)
            except ValueError as e:
                return f"not valid JSON ({e}): tag an excerpt as text"
            return None
        if lang == "yaml":
            import yaml

            try:
                list(yaml.safe_load_all(code))
            except yaml.YAMLError as e:
                return f"not valid YAML ({e})"
            return None
        return f"no way to run a '{lang}' block: tag output and synopses as text"


def _code_blocks(path: Path):
    return [b for b in blocks(path) if b["lang"] not in NOT_CODE]


def test_every_skipped_block_says_why_with_a_known_reason():
    for doc in DOCS:
        for b in blocks(doc):
            if "skip" in b["attrs"]:
                assert b["attrs"]["skip"] in SKIP_REASONS, f"{doc.name}:{b['line']}: skip={b['attrs']['skip']}"


def test_the_readme_is_at_most_160_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 160


def test_every_fence_in_the_docs_is_a_block_the_runner_sees():
    # An indented or ~~~ fence would be a snippet nobody runs: each ``` line opens or closes a block.
    for doc in DOCS:
        fences = [ln for ln in doc.read_text(encoding="utf-8").splitlines() if ln.lstrip().startswith(("```", "~~~"))]
        assert len(fences) == 2 * len(blocks(doc)), f"{doc.name}: {len(fences)} fence lines, {len(blocks(doc))} blocks parsed"


def _runnable(path: Path):
    return [b for b in _code_blocks(path) if "skip" not in b["attrs"]]


@pytest.mark.parametrize("doc", [d for d in DOCS if _runnable(d)], ids=lambda d: d.name)
def test_every_snippet_in_the_doc_runs(doc, example_bundles, tmp_path):
    if not shutil.which("node"):
        pytest.fail("node is not on PATH: the docs' JS snippets need it (scripts/setup.sh installs the rest)")
    ws = Workspace(tmp_path / "workspace", example_bundles, doc.read_text(encoding="utf-8"))
    try:
        for block in _code_blocks(doc):
            if "skip" in block["attrs"]:
                continue
            result = ws.run(block)
            where = f"{doc.relative_to(ROOT)}:{block['line']} ({block['lang']} block)"
            if isinstance(result, str):
                pytest.fail(f"{where}: {result}\n{block['code']}")
            if result is not None and result.returncode != 0:
                pytest.fail(f"{where} exited {result.returncode}\n--- block ---\n{block['code']}\n"
                            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}")
    finally:
        ws.close()
