"""`polyonnx bench`: runs on a small example bundle with few runs and writes a JSON report with
the expected keys. Numbers are not asserted (they depend on the machine); their shape is."""

from __future__ import annotations

import argparse
import json

import pytest

from polyonnx import _cmd_bench, _node
from polyonnx.bench import bench_bundle, format_report, size_sets
from polyonnx.bundle import Bundle
from polyonnx.errors import PolyonnxError

NODE_OK, NODE_WHY = _node.node_available(("node",))

ROW_KEYS = {"runtime", "variant", "batch", "sizes", "threads", "runs", "timing", "p50_ms", "p90_ms", "p99_ms",
            "mean_ms", "throughput_per_s"}


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="polyonnx bench")
    _cmd_bench.configure(parser)
    return _cmd_bench.run(parser.parse_args(argv))


def test_bench_command_writes_a_report_with_every_row_and_key(example_bundles, tmp_path, capsys):
    out = tmp_path / "bench.json"
    runtimes = "python,node" if NODE_OK else "python"
    code = _run_cli([str(example_bundles / "digits_cnn"), "--runtimes", runtimes, "--batch", "1,3",
                     "--runs", "3", "--threads", "1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert {"bench", "bundle", "created", "machine", "settings", "results", "ratios", "skipped"} <= set(report)
    variants = list(Bundle.load(example_bundles / "digits_cnn").variants)
    expected = {(rt, v, b) for rt in runtimes.split(",") for v in variants for b in (1, 3)}
    assert {(r["runtime"], r["variant"], r["batch"]) for r in report["results"]} == expected
    for row in report["results"]:
        assert ROW_KEYS <= set(row), row
        assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["threads"] == 1
        assert row["timing"] == ("in-process" if row["runtime"] == "python" else "in-worker")
    if NODE_OK:
        assert {(r["variant"], r["sizes"]["batch"]) for r in report["ratios"]} == {(v, b) for v in variants for b in (1, 3)}
        assert all(r["target"] == 1.1 and r["over_python_p50"] > 0 for r in report["ratios"])
    printed = capsys.readouterr().out
    assert "p50 ms" in printed and "digits_cnn" in printed


def test_seq_sets_every_non_batch_dynamic_dim(example_bundles):
    gru = Bundle.load(example_bundles / "gru_tagger")
    assert size_sets(gru, [1, 4], [5]) == [{"time": 5, "batch": 1}, {"time": 5, "batch": 4}]
    example_time = gru.dims["time"]["example"]
    assert size_sets(gru, [2], None) == [{"time": example_time, "batch": 2}]


def test_an_unknown_variant_or_runtime_fails_with_the_fix(example_bundles):
    with pytest.raises(PolyonnxError, match="no variant.*'fp64'.*use some of"):
        bench_bundle(example_bundles / "digits_cnn", runtimes=["python"], variants=["fp64"], runs=1)
    with pytest.raises(PolyonnxError, match="unknown runtime.*'tensorflow'"):
        bench_bundle(example_bundles / "digits_cnn", runtimes=["tensorflow"], runs=1)


def test_a_runtime_that_cannot_start_is_skipped_with_its_reason(example_bundles, monkeypatch):
    from polyonnx import bench

    monkeypatch.setattr(bench, "_runtime_ok", lambda name: (name == "python", f"{name}: not installed here"))
    report = bench_bundle(example_bundles / "digits_cnn", runtimes=["python", "node"], variants=["fp32"], runs=2)
    assert [r["runtime"] for r in report["results"]] == ["python"]
    assert report["skipped"] == [{"runtime": "node", "variant": None, "reason": "node: not installed here"}]
    assert "skipped node: node: not installed here" in format_report(report)
