"""Machine-readable and quiet output (issue #12, part 4): `--json` puts the result on stdout,
`-q` leaves stderr empty, and the library reports progress on the `polyonnx` logger, not stderr."""

from __future__ import annotations

import json
import logging

import pytest

import polyonnx
from polyonnx.cli import main as cli


@pytest.fixture
def tiny_onnx(tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    path = tmp_path / "tiny.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def test_the_library_reports_progress_on_the_polyonnx_logger_not_stderr(tiny_onnx, tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO, logger="polyonnx")
    polyonnx.export(str(tiny_onnx), None, tmp_path / "b", quantize="none", verify=False)
    steps = [r.getMessage() for r in caplog.records if r.name == "polyonnx"]
    assert any(m.startswith("[1/") and "tiny.onnx" in m for m in steps)
    assert capsys.readouterr().err == ""


def test_the_cli_keeps_its_progress_lines_and_q_silences_them(tiny_onnx, tmp_path, capsys):
    assert cli(["export", str(tiny_onnx), "-o", str(tmp_path / "a"), "--quantize", "none", "--no-verify"]) == 0
    assert "[1/" in capsys.readouterr().err
    assert cli(["export", str(tiny_onnx), "-o", str(tmp_path / "b"), "--quantize", "none", "--no-verify", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_verify_json_prints_the_checks_on_stdout_and_q_prints_nothing_on_stderr(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["export", str(tiny_onnx), "-o", str(out), "--quantize", "none", "--no-verify", "-q"]) == 0
    capsys.readouterr()
    code = cli(["verify", str(out), "--runtimes", "python,node", "--json", "-q", "--no-record"])
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert printed.err == ""
    assert result["bundle"] == "tiny" and result["checks"]
    assert result["passed"] == all(c["passed"] for c in result["checks"]) == (code == 0)
    assert {c["runtime"] for c in result["checks"]} >= {"node"}


def test_info_json_is_the_manifest(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["export", str(tiny_onnx), "-o", str(out), "--quantize", "none", "--no-verify", "-q"]) == 0
    capsys.readouterr()
    assert cli(["info", str(out), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["name"] == "tiny" and "fp32" in manifest["variants"]
