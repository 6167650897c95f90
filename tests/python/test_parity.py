"""Parity across runtimes: `polyonnx verify` and ``verify_bundle``.

The bundled examples (digits_cnn, text_transformer, gru_tagger) are exported once per session
by conftest's ``example_bundles`` fixture and checked in python, node and wasm for every variant
they ship. A hand-built MLP (tests/python/_parity_bundles.py) covers the failure paths fast.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import polyonnx
from polyonnx import _node, compare
from polyonnx.cli import main
from polyonnx.manifest import load_shared
from polyonnx.verify import _make_check, format_table, plan_feeds, record_checks, run_parity, verify_bundle

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _parity_bundles as pb  # noqa: E402

NODE_OK, NODE_WHY = _node.node_available(("node", "wasm"))
RUNTIMES = ("python", "node", "wasm") if NODE_OK else ("python",)
EXAMPLES = ("digits_cnn", "text_transformer", "gru_tagger")
CHECK_SCHEMA = {"$ref": "#/$defs/check", "$defs": load_shared("manifest.schema.json")["$defs"]}


def assert_schema_valid(check: dict) -> None:
    jsonschema.Draft202012Validator(CHECK_SCHEMA).validate(check)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return pb.mlp_bundle(tmp_path_factory.mktemp("parity") / "mlp")


@pytest.fixture
def mlp_copy(mlp, tmp_path):
    shutil.copytree(mlp, tmp_path / "mlp")
    return tmp_path / "mlp"


# --- the bundled examples, in every runtime -----------------------------------------------------
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_gives_the_same_answers_in_every_runtime(name, example_bundles, tmp_path):
    bundle_dir = tmp_path / name
    shutil.copytree(example_bundles / name, bundle_dir)
    checks, skipped = run_parity(bundle_dir, RUNTIMES)
    bundle = polyonnx.load(bundle_dir)
    expected = set()
    for v, spec in bundle.variants.items():
        quantized = spec["quantization"]["method"] != "none"
        for rt in RUNTIMES:
            if any(s[:2] == (rt, v) for s in skipped):
                continue
            if quantized:
                expected.add((rt, v, f"{rt}:fp32"))
                if rt != "python":
                    expected.add((rt, v, f"python:{v}"))
            elif rt != "python":
                expected.add((rt, v, "python:fp32"))
    assert {(c["runtime"], c["variant"], c["reference"]) for c in checks} == expected
    failed = [f"{c['runtime']}:{c['variant']} vs {c['reference']}: {c.get('error') or c['outputs']}"
              for c in checks if not c["passed"]]
    assert not failed, "\n".join(failed)
    for c in checks:
        assert_schema_valid(c)
    record_checks(bundle, checks)
    assert len(polyonnx.load(bundle_dir).manifest["parity"]["checks"]) == len(checks)


@pytest.mark.skipif(not NODE_OK, reason=NODE_WHY)
def test_node_fp32_of_an_example_matches_python_within_the_node_tolerance(example_bundles):
    (check,) = verify_bundle(example_bundles / "text_transformer", runtimes=["node"], variants=["fp32"])
    tol = compare.tolerance("fp32", "node")
    assert check["tolerance"] == {k: v for k, v in tol.items() if v is not None}
    # The bound uses the largest reference value, recomputed here from the same generated feeds.
    with polyonnx.runtime("python", example_bundles / "text_transformer", variant="fp32") as py:
        scale = max(float(np.abs(py.run(feeds)["logits"]).max())
                    for _, feeds in plan_feeds(polyonnx.load(example_bundles / "text_transformer")))
    assert check["passed"] and check["outputs"]["logits"]["passed"]
    assert check["outputs"]["logits"]["max_abs"] <= tol["atol"] + tol["rtol"] * scale
    # Every dynamic dim ran at 3+ sizes: an axis fixed by the exporter would have failed here.
    for dim in ("batch", "seq"):
        assert len({s[dim] for s in check["sizes"]}) >= 3


# --- checks, records, the table ---------------------------------------------------------------
def test_checks_follow_the_manifest_schema_and_replace_older_ones(mlp_copy):
    first = verify_bundle(mlp_copy, runtimes=["python"], save=True)
    assert [(c["runtime"], c["variant"], c["reference"]) for c in first] == [("python", "int8", "python:fp32")]
    second = verify_bundle(mlp_copy, runtimes=["python"], sizes={"batch": [7]}, save=True)
    recorded = polyonnx.load(mlp_copy).manifest["parity"]
    assert len(recorded["checks"]) == 1 and recorded["checks"][0]["sizes"] == [{"batch": 7}]
    assert recorded["checks"] == second
    assert recorded["updated"].endswith("Z")


def test_a_shape_mismatch_is_an_error_on_the_check_not_a_metric():
    spec = [{"name": "y", "dtype": "float32", "shape": ["n"]}]
    check = _make_check("node", "fp32", "python:fp32", compare.tolerance("fp32", "node"), [{"n": 3}], spec,
                        [{"y": np.zeros(3, np.float32)}], [{"y": np.zeros(4, np.float32)}])
    assert check["passed"] is False
    assert "shape [3] where python:fp32 has [4]" in check["error"]
    assert "shape_mismatch" not in check["outputs"]["y"]
    assert_schema_valid(check)


def test_non_finite_differences_are_recorded_as_null_and_fail():
    spec = [{"name": "y", "dtype": "float32", "shape": ["n"]}]
    check = _make_check("wasm", "fp32", "python:fp32", compare.tolerance("fp32", "wasm"), [{"n": 2}], spec,
                        [{"y": np.array([np.inf, 1], np.float32)}], [{"y": np.array([1, 1], np.float32)}])
    assert check["passed"] is False and check["outputs"]["y"]["max_abs"] is None
    json.dumps(check, allow_nan=False)
    assert_schema_valid(check)


def test_a_runtime_that_cannot_start_is_a_failed_check_naming_the_fix(mlp_copy, monkeypatch, capsys):
    monkeypatch.setattr(_node, "_shared", {})
    monkeypatch.setenv(_node.ENV_NODE, str(mlp_copy / "no-node-here"))
    checks = verify_bundle(mlp_copy, runtimes=["node"], variants=["fp32"])
    assert checks[0]["passed"] is False and "POLYONNX_NODE" in checks[0]["error"]
    assert_schema_valid(checks[0])
    assert main(["verify", str(mlp_copy), "--runtimes", "node", "--variants", "fp32"]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_generated_feeds_run_each_dynamic_dim_at_three_sizes_or_the_given_ones(mlp):
    sizes = [s for s, _ in plan_feeds(mlp)]
    assert len({s["batch"] for s in sizes}) >= 3
    assert [s for s, _ in plan_feeds(mlp, sizes={"batch": [1, 3]})] == [{"batch": 1}, {"batch": 3}]
    with pytest.raises(polyonnx.PolyonnxError, match="no input has"):
        plan_feeds(mlp, sizes={"seq": [4]})


# --- the command --------------------------------------------------------------------------------
@pytest.mark.skipif(not NODE_OK, reason=NODE_WHY)
def test_verify_command_prints_a_table_records_and_exits_0(mlp_copy, capsys):
    assert main(["verify", str(mlp_copy), "--sizes", "batch=1,4"]) == 0
    out, err = capsys.readouterr()
    header = out.splitlines()[0].split()
    assert header == ["runtime", "variant", "reference", "output", "max_abs", "max_rel", "cosine", "argmax", "result"]
    assert sum(1 for line in out.splitlines()[1:] if line.endswith("ok")) == 7
    assert "recorded 7 check(s)" in err
    assert len(polyonnx.load(mlp_copy).manifest["parity"]["checks"]) == 7


def test_verify_command_reads_feeds_from_an_npz(mlp_copy, tmp_path, capsys):
    path = tmp_path / "feeds.npz"
    np.savez(path, x=np.random.default_rng(3).standard_normal((6, 16)).astype(np.float32))
    assert main(["verify", str(mlp_copy), "--runtimes", "python", "--inputs", str(path), "--no-record"]) == 0
    assert "parity" not in polyonnx.load(mlp_copy).manifest


def test_verify_command_exits_1_when_int8_is_out_of_tolerance(mlp_copy, tmp_path, capsys):
    # Swap in an "int8" variant quantized from different weights: a real parity failure.
    other = pb.mlp_bundle(tmp_path / "other", seed=7)
    shutil.copy(other / "model.int8.onnx", mlp_copy / "model.int8.onnx")
    bundle = polyonnx.load(mlp_copy)
    fresh = json.loads((other / "polyonnx.json").read_text())["variants"]["int8"]
    bundle.manifest["variants"]["int8"].update(sha256=fresh["sha256"], bytes=fresh["bytes"])
    bundle.save_manifest()
    assert main(["verify", str(mlp_copy), "--runtimes", "python"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out


def test_verify_command_rejects_malformed_sizes(mlp, capsys):
    assert main(["verify", str(mlp), "--sizes", "batch=two"]) == 2
    assert "DIM=N" in capsys.readouterr().err


def test_table_marks_skipped_runtimes():
    text = format_table([], [("wasm", "int8", "variant 'int8' lists runtimes ['python', 'node'], not 'web'")])
    assert "skipped" in text.splitlines()[1] and "not 'web'" in text
