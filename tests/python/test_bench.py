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
                     "--runs", "3", "--threads", "1", "--save", str(out)])
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


def test_each_runtime_is_timed_with_no_other_runtime_session_open(example_bundles, monkeypatch):
    """Issue #14: an idle runtime's spinning ONNX Runtime threads inflated the other's latency
    2-3x; a block opens one session, times it and closes it before the next opens."""
    from polyonnx import bench

    events, real_open = [], bench._open

    def tracking_open(name, bundle, variant, threads, placement=None):
        rt = real_open(name, bundle, variant, threads, placement)
        events.append(("open", name))
        real_close = rt.close

        def close():
            events.append(("close", name))
            real_close()

        rt.close = close
        return rt

    monkeypatch.setattr(bench, "_open", tracking_open)
    runtimes = ["python", "node"] if NODE_OK else ["python"]
    report = bench_bundle(example_bundles / "digits_cnn", runtimes=runtimes, variants=["fp32"], runs=6, blocks=3,
                          self_check=False)
    opened = 0
    for kind, _ in events:
        opened += 1 if kind == "open" else -1
        assert opened in (0, 1), events
    timed = [name for (kind, name) in events if kind == "open"][len(runtimes):]  # after the load probes
    assert timed == [runtimes[(b + i) % len(runtimes)] for b in range(3) for i in range(len(runtimes))]
    for row in report["results"]:
        assert len(row["block_p50_ms"]) == 3 and row["runs"] == 6


def test_self_check_times_each_row_alone_in_a_fresh_process_and_flags_over_ten_percent(example_bundles):
    runtimes = ["python", "node"] if NODE_OK else ["python"]
    report = bench_bundle(example_bundles / "digits_cnn", runtimes=runtimes, variants=["fp32"], runs=8, blocks=2,
                          threads=1)
    assert report["settings"]["self_check_limit"] == 0.10
    for row in report["results"]:
        sc = row["self_check"]
        assert sc["reference_p50_ms"] > 0, sc
        assert sc["over_reference"] == pytest.approx(row["p50_ms"] / sc["reference_p50_ms"])
        assert sc["ok"] == (abs(sc["over_reference"] - 1) <= 0.10)
        # One reference block per block of the row, timed right after it.
        assert len(sc["reference_block_p50_ms"]) == len(row["block_p50_ms"]) == 2
    for r in report["ratios"]:
        low, high = r["spread"]
        assert 0 < low <= high
    text = format_report(report)
    assert "self-check" in text and ("self-check passed" in text or "self-check FAILED" in text)


def test_a_reference_block_that_fails_is_reported_not_raised(example_bundles):
    from polyonnx.bench import _References

    refs = _References(lambda _msg: None)
    try:
        ref = refs.block("python", example_bundles / "digits_cnn", "fp64", {"batch": 1}, threads=1, warmup=1, runs=1)
        assert "error" in ref and "fp64" in ref["error"]
        # The process answered and lives on for the next block.
        assert len(refs.block("python", example_bundles / "digits_cnn", "fp32", {"batch": 1}, threads=1, warmup=1,
                              runs=2)["ms"]) == 2
    finally:
        refs.close()


def test_reference_processes_time_one_runtime_each_and_a_dead_one_is_reported_not_raised(example_bundles):
    from polyonnx.bench import _References

    said = []
    refs = _References(said.append)
    try:
        path = example_bundles / "digits_cnn"
        got = refs.block("python", path, "fp32", {"batch": 1}, threads=1, warmup=2, runs=5)
        assert len(got["ms"]) == 5 and all(ms > 0 for ms in got["ms"])
        first = refs.procs["python"]
        # The same process answers the next block (started once per runtime, not per block).
        assert len(refs.block("python", path, "int8", {"batch": 1}, threads=1, warmup=2, runs=3)["ms"]) == 3
        assert refs.procs["python"] is first
        assert sum("starting the reference process for python" in s for s in said) == 1
        # A reference process asked for another runtime refuses: it opens one runtime only.
        refs.procs["node"] = first
        wrong = refs.block("node", path, "fp32", {"batch": 1}, threads=1, warmup=1, runs=1)
        assert "times 'python' only" in wrong["error"]
        del refs.procs["node"]
        first.proc.kill()
        first.proc.wait()
        dead = refs.block("python", path, "fp32", {"batch": 1}, threads=1, warmup=1, runs=1)
        assert "the reference process for python ended" in dead["error"]
        assert "python" not in refs.procs
    finally:
        refs.close()


def test_a_reference_block_past_its_time_limit_is_stopped_and_reported(example_bundles, monkeypatch):
    from polyonnx import bench

    monkeypatch.setattr(bench, "REFERENCE_TIMEOUT_S", 0.05)  # less than the process takes to start
    refs = bench._References(lambda _msg: None)
    try:
        got = refs.block("python", example_bundles / "digits_cnn", "fp32", {"batch": 1}, threads=1, warmup=1, runs=1)
        assert got == {"error": "the reference process for python ended (no answer within 0 s)"}
        assert refs.procs == {}
    finally:
        refs.close()
