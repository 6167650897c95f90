"""`pip install polyonnx` without torch (issue #12, part 4): the wheel, installed into a fresh
venv with only its default dependencies, imports an .onnx into a bundle, and tracing a PyTorch
model says which extra to install instead of failing with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    # PYTHONPATH would let the venv see this checkout's polyonnx instead of the wheel's.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=240, **kw)


def _tiny_onnx(path: Path) -> None:
    from onnx import TensorProto, checker, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    # IR 9: what every onnxruntime the package allows (>=1.20) reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    checker.check_model(model)
    save(model, str(path))


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    """A venv holding the wheel and its default dependencies only (pip's cache / find-links
    serve them; no torch, no scikit-learn)."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ROOT,
                  "-w", tmp / "dist"])
    assert built.returncode == 0, built.stderr
    wheel = next((tmp / "dist").glob("polyonnx-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    installed = _run([python, "-m", "pip", "install", "-q", wheel])
    if installed.returncode != 0:
        # Only an unreachable index excuses it; a wheel whose own metadata cannot be installed is
        # exactly what this test exists to catch.
        offline = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                   "Connection refused", "ProxyError", "Max retries exceeded")
        if any(s in installed.stderr for s in offline):
            pytest.skip(f"no package index reachable here: {installed.stderr.strip()[-300:]}")
        pytest.fail(f"the wheel does not install into a fresh venv: {installed.stderr.strip()[-1500:]}")
    return python


def test_wheel_installs_without_torch_or_scikit_learn(bare_venv):
    listed = _run([bare_venv, "-m", "pip", "list", "--format=freeze"])
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "polyonnx" in names and "onnxruntime" in names
    assert not names & {"torch", "onnxscript", "scikit-learn"}


def test_importing_polyonnx_and_its_pipeline_imports_no_torch(bare_venv):
    code = "import sys, polyonnx, polyonnx.pipeline, polyonnx.cli; print('torch' in sys.modules)"
    done = _run([bare_venv, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_an_onnx_file_exports_to_a_bundle_without_torch(bare_venv, tmp_path):
    _tiny_onnx(tmp_path / "tiny.onnx")
    done = _run([bare_venv, "-m", "polyonnx", "export", "tiny.onnx", "-o", "out", "--quantize", "none",
                 "--no-verify"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "polyonnx.json").is_file() and (tmp_path / "out" / "model.onnx").is_file()
    info = _run([bare_venv, "-m", "polyonnx", "info", "out", "--json"], cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert '"onnx-import"' in info.stdout


def test_tracing_a_module_without_torch_names_the_extra_in_one_line(bare_venv, tmp_path):
    (tmp_path / "mymodel.py").write_text("NET = None\n")
    done = _run([bare_venv, "-m", "polyonnx", "export", "mymodel.py:NET", "-o", "out"], cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "pip install 'polyonnx[torch]'" in errors[0] and "torch==2.13.0" in errors[0]
    assert not (tmp_path / "out").exists()


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def test_the_wheel_without_torch_verifies_an_imported_onnx_in_python_and_node(bare_venv, tmp_path):
    """Issue #12's "done when": a fresh venv without torch imports a .onnx and verifies it in both
    runtimes; the worker's npm packages come from `python -m polyonnx setup-node`."""
    _tiny_onnx(tmp_path / "tiny.onnx")
    done = _run([bare_venv, "-m", "polyonnx", "export", "tiny.onnx", "-o", "out", "--quantize", "none", "-q"],
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    deps = tmp_path / "jsdeps"
    setup = _run([bare_venv, "-m", "polyonnx", "setup-node", "--dir", deps, "-q"], cwd=tmp_path)
    assert setup.returncode == 0, setup.stderr
    env_deps = {"POLYONNX_NODE_DEPS": str(deps)}
    checked = subprocess.run([str(bare_venv), "-m", "polyonnx", "verify", "out", "--runtimes", "python,node", "--json",
                              "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                             env={**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
                                  **env_deps})
    assert checked.returncode == 0, checked.stderr + checked.stdout
    import json

    result = json.loads(checked.stdout)
    assert result["passed"] and {c["runtime"] for c in result["checks"]} == {"node"}
    assert all(c["reference"] == "python:fp32" for c in result["checks"])
    # The sizes issue #12's closing note quotes (printed with -s / -rA).
    venv_mb = _size_mb(bare_venv.parents[1])
    print(f"install sizes: venv without torch {venv_mb:.0f} MB, setup-node's node_modules {_size_mb(deps):.0f} MB")
