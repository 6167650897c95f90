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


def test_every_command_accepts_q():
    from polyonnx.cli import COMMANDS, build_parser

    for name in COMMANDS:
        parser = build_parser(name)
        sub = parser._subparsers._group_actions[0].choices[name]
        assert "-q" in sub._option_string_actions, f"`polyonnx {name}` has no -q"


def test_export_json_prints_the_manifest_it_wrote(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["export", str(tiny_onnx), "-o", str(out), "--quantize", "none", "--no-verify", "-q", "--json"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert json.loads(printed.out) == json.loads((out / "polyonnx.json").read_text())


def test_info_report_and_bench_json_are_json_on_stdout_with_q_silent_on_stderr(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "b"
    assert cli(["export", str(tiny_onnx), "-o", str(out), "--quantize", "none", "--no-verify", "-q"]) == 0
    capsys.readouterr()

    assert cli(["info", str(out), "--json", "-q"]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and json.loads(printed.out)["name"] == "tiny"

    # A bundle without quantization candidates reports none, in JSON too.
    assert cli(["report", str(out), "--json", "-q", "-o", str(tmp_path / "r0.html")]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and json.loads(printed.out)["candidates"] == []

    saved = tmp_path / "bench.json"
    assert cli(["bench", str(out), "--runtimes", "python", "--runs", "5", "--blocks", "1", "--no-self-check",
                "--json", "-q", "--save", str(saved)]) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert printed.err == "" and result["results"]
    assert json.loads(saved.read_text()) == result


def test_report_json_lists_fp32_and_every_candidate_the_manifest_records(example_bundles, tmp_path, capsys):
    bundle = example_bundles / "text_transformer"
    recorded = json.loads((bundle / "polyonnx.json").read_text())["quantization_report"]
    html = tmp_path / "r.html"
    assert cli(["report", str(bundle), "--json", "-q", "-o", str(html)]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert printed.err == "" and html.is_file()
    assert [row["name"] for row in report["candidates"]] == ["fp32", *(c["name"] for c in recorded["candidates"])]
    assert [row["cosine"] for row in report["candidates"][1:]] == [c.get("cosine") for c in recorded["candidates"]]
