"""`polyonnx setup-node`: install the JS dependencies the node/wasm runtimes need.

For a pip-installed polyonnx: writes a package.json with what the worker (js/worker.mjs) needs,
at the versions the shipped package.json pins for the tests (its devDependencies: the npm
package itself depends on nothing, its runtimes are optional peers), into a per-user folder and
runs npm install there, with the Node/npm that polyonnx itself would use. In a repository
checkout it installs into the repository (the same as `ONNXRUNTIME_NODE_INSTALL=skip npm install`
at its root).

onnxruntime-node's postinstall downloads CUDA libraries and fails offline; the CPU binary ships
inside the package, so the install skips that step (ONNXRUNTIME_NODE_INSTALL=skip).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from .errors import PolyonnxError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default=None,
                        help="install here instead of the default folder (then set POLYONNX_NODE_DEPS to it)")
    parser.add_argument("--dry-run", action="store_true", help="print what would run, install nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (npm too)")


def pins() -> dict:
    """What the worker needs (node and wasm backends), at the versions package.json's devDependencies pin."""
    from ._node import REQUIRED, REQUIRED_WASM, package_json

    path = package_json()
    if path is None:
        raise PolyonnxError("setup-node", "no package.json beside polyonnx's JS package, so the pinned versions are unknown",
                            "reinstall polyonnx (its wheel ships js/ with package.json), or use a repository checkout")
    dev = json.loads(path.read_text(encoding="utf-8")).get("devDependencies") or {}
    missing = [name for name in REQUIRED + REQUIRED_WASM if name not in dev]
    if missing:
        raise PolyonnxError("setup-node", f"{path} pins no {', '.join(missing)} in devDependencies", "reinstall polyonnx")
    return {name: dev[name] for name in REQUIRED + REQUIRED_WASM}


def run(args) -> int:
    from . import _node

    node = _node.find_node()
    npm = _node.npm_for(node)
    clone = (_node.REPO_ROOT / "js" / "worker.mjs").is_file() and (_node.REPO_ROOT / "package.json").is_file()
    deps = pins()
    if args.dir:
        target, write_manifest = Path(args.dir), True
    elif clone:
        target, write_manifest = _node.REPO_ROOT, False  # the repository's own package.json
    else:
        target, write_manifest = _node.user_deps_dir(), True
    # The generated package.json lists the worker's packages as dependencies; a checkout's own
    # package.json has them (and its test tools) as devDependencies, which --omit=dev would skip.
    command = [*npm, "install", *(["--omit=dev"] if write_manifest else []), "--no-audit", "--no-fund",
               *(["--loglevel=error"] if args.quiet else [])]

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    # onnxruntime-node's install script reads this; not as an npm config (npm warns about unknown ones).
    env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")
    # npm must run with this node first on PATH: packages' install scripts call `node`.
    env["PATH"] = os.pathsep.join([str(Path(node.path).parent), env.get("PATH", "")])
    manifest = {"name": "polyonnx-node-deps", "private": True, "description": "JS dependencies of polyonnx's node/wasm runtimes",
                "dependencies": deps}
    say(f"node {node.version_text} ({node.source}: {node.path})")
    say(f"installing {', '.join(f'{k}@{v}' for k, v in deps.items())} into {target}")
    say(f"$ (cd {shlex.quote(str(target))} && ONNXRUNTIME_NODE_INSTALL=skip {shlex.join(command)})")
    if args.dry_run:
        if write_manifest:
            print(json.dumps(manifest, indent=2))
        return 0
    target.mkdir(parents=True, exist_ok=True)
    if write_manifest:
        (target / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    try:
        done = subprocess.run(command, cwd=target, env=env)
    except OSError as e:
        raise PolyonnxError("setup-node", f"cannot run npm ({e})", "install npm (it comes with Node.js)") from None
    if done.returncode != 0:
        raise PolyonnxError("setup-node", f"npm install failed in {target} (exit {done.returncode}; its output is above)",
                            "check network access to the npm registry, then run this command again")
    missing = [p for p in deps if not (target / "node_modules" / p / "package.json").is_file()]
    if missing:
        raise PolyonnxError("setup-node", f"npm finished but {', '.join(missing)} is not in {target / 'node_modules'}",
                            "run the npm command above by hand and read its output")
    if write_manifest and target != _node.user_deps_dir():
        say(f"done; set POLYONNX_NODE_DEPS={target} so polyonnx finds these")
    else:
        say("done: `polyonnx verify` and polyonnx.runtime('node' | 'wasm', ...) can run")
    return 0
