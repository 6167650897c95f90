"""Execution providers (issue #13, part 3): one rule in every runtime (shared vectors), the python
runtime runs on what the rule chose and says so, and a missing provider gives the chosen fallback
or E_PROVIDER."""

from __future__ import annotations

import json

import numpy as np
import pytest

import polyonnx
from polyonnx._providers import choose, polyonnx_names
from polyonnx.errors import PolyonnxError, ProviderError
from polyonnx.manifest import load_shared, schema_path

VECTORS = json.loads(schema_path("vectors/providers.json").read_text())["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["why"] for c in VECTORS])
def test_providers_vector(case):
    call = lambda: choose(case.get("providers"), case.get("fallback"), case["runtime"], case["available"])  # noqa: E731
    if "error" in case["expect"]:
        with pytest.raises(PolyonnxError) as info:
            call()
        assert info.value.code == case["expect"]["error"] and str(info.value) == case["expect"]["message"]
    else:
        assert call().as_dict() | {"native": list(call().native)} == case["expect"]


def test_every_installed_onnxruntime_provider_has_a_polyonnx_name_or_is_listed_as_unknown():
    import onnxruntime as ort

    names = polyonnx_names("python", ort.get_available_providers())
    assert "cpu" in names
    table = load_shared("providers.json")["providers"]
    assert all(table[n]["python"] in ort.get_available_providers() for n in names)


def _copy(example_bundles, tmp_path, name="digits_cnn"):
    import shutil

    return shutil.copytree(example_bundles / name, tmp_path / name)


def test_python_runtime_runs_on_the_cpu_and_says_so_when_cuda_is_missing_and_fallback_is_cpu(example_bundles):
    from polyonnx.runtimes import open_runtime

    from polyonnx.bundle import Bundle
    from polyonnx.verify import plan_feeds

    bundle = example_bundles / "digits_cnn"
    (_, feeds), *_ = plan_feeds(Bundle.load(bundle), None, None)
    with open_runtime("python", bundle) as plain:
        expected = plain.run(feeds)
        assert plain.info()["providers"] == ["cpu"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback is not taken here (scripts/gpu-check.sh covers it)")
    with open_runtime("python", bundle, providers=["cuda", "cpu"], fallback="cpu") as rt:
        got = rt.run(feeds)
        info = rt.info()
    assert info["providers"] == ["cpu"] and [d["provider"] for d in info["providers_dropped"]] == ["cuda"]
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    with pytest.raises(ProviderError, match="'cuda' is not available in this python install") as err:
        open_runtime("python", bundle, providers=["cuda", "cpu"])
    assert err.value.code == "E_PROVIDER" and "fallback 'cpu'" in str(err.value)


def test_verify_providers_records_where_each_check_ran(example_bundles, tmp_path, capsys):
    import onnxruntime as ort

    from polyonnx.bundle import Bundle
    from polyonnx.cli import main as cli

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: scripts/gpu-check.sh verifies on it")
    bundle = _copy(example_bundles, tmp_path)
    # fallback error: the check fails and says why; nothing half-done is recorded as a pass.
    assert cli(["verify", str(bundle), "--runtimes", "python", "--variants", "fp32", "--providers", "cuda,cpu",
                "--json", "-q", "--no-record"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["passed"] and "'cuda' is not available" in result["checks"][0]["error"]
    # fallback cpu: python on the CPU against the CPU reference, the dropped provider recorded.
    assert cli(["verify", str(bundle), "--runtimes", "python", "--variants", "fp32", "--providers", "cuda,cpu",
                "--fallback", "cpu", "-q"]) == 0
    capsys.readouterr()
    checks = [c for c in Bundle.load(bundle).manifest["parity"]["checks"] if c.get("providers_dropped")]
    assert checks and all(c["providers"] == ["cpu"] and c["providers_dropped"][0]["provider"] == "cuda" for c in checks)
    assert all(c["passed"] for c in checks)


def test_a_typo_in_providers_fails_before_any_runtime_starts(example_bundles, capsys):
    from polyonnx.cli import main as cli

    assert cli(["verify", str(example_bundles / "digits_cnn"), "--runtimes", "python", "--providers", "cdua",
                "--no-record", "-q"]) == 2
    assert "unknown execution provider(s) 'cdua'" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["node", "wasm", "browser"])
def test_js_runtimes_take_the_same_option_and_say_where_they_ran(example_bundles, runtime):
    from polyonnx.runtimes import available, open_runtime
    from polyonnx.verify import _ran_on

    ok, why = available(runtime)
    if not ok:
        pytest.fail(f"{runtime} is not available here: {why}")
    bundle = example_bundles / "digits_cnn"
    # A provider no runtime here has: refused with E_PROVIDER in the same words as Python's rule...
    with pytest.raises(PolyonnxError) as err:
        open_runtime(runtime, bundle, providers=["coreml"])
    assert err.value.code == "E_PROVIDER" and "'coreml'" in str(err.value)
    # ... or dropped with fallback 'cpu', and the session says it runs on the CPU.
    with open_runtime(runtime, bundle, providers=["coreml", "cpu"], fallback="cpu") as rt:
        ran = _ran_on(rt)
    assert ran["providers"] == ["cpu"] and [d["provider"] for d in ran["providers_dropped"]] == ["coreml"]
    # A typo is refused before any worker or page starts, with the shared words.
    with pytest.raises(PolyonnxError, match="unknown execution provider"):
        open_runtime(runtime, bundle, providers=["cdua"])


def test_bench_takes_the_same_providers_option_and_records_where_each_row_ran(example_bundles, tmp_path, capsys):
    from polyonnx.cli import main as cli

    out = tmp_path / "bench.json"
    assert cli(["bench", str(example_bundles / "digits_cnn"), "--runtimes", "python,node", "--variants", "fp32",
                "--runs", "4", "--blocks", "1", "--no-self-check", "--providers", "coreml,cpu", "--fallback", "cpu",
                "-q", "--save", str(out)]) == 0
    assert "fell back from 'coreml'" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["settings"]["providers"] == ["coreml", "cpu"] and report["settings"]["fallback"] == "cpu"
    assert {r["runtime"] for r in report["results"]} == {"python", "node"}
    for row in report["results"]:
        assert row["providers"] == ["cpu"] and [d["provider"] for d in row["providers_dropped"]] == ["coreml"]
