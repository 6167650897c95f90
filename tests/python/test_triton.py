"""`polyonnx triton`: every generated config.pbtxt parses into Triton's own ModelConfig message
(from the tritonclient package) and says what the manifest says, field by field.

Triton cannot run here (no container runtime, no GPU), so the checks stop at what Triton reads:
the config, the model file's bytes, and the model's inputs/outputs as ONNX Runtime reports them
(what Triton's ONNX Runtime backend compares the config with when it loads a model).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tritonclient = pytest.importorskip("tritonclient.grpc", reason="pip install 'tritonclient[grpc,http]' (the test extra)")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as mc  # noqa: E402
from tritonclient.utils import np_to_triton_dtype  # noqa: E402

from polyonnx import _triton  # noqa: E402
from polyonnx.cli import main  # noqa: E402
from polyonnx.errors import PolyonnxError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "triton"
EXAMPLES = ("digits_cnn", "text_transformer", "gru_tagger")
RUNTIMES = json.loads((ROOT / "shared-schemas" / "runtimes.json").read_text())
FULL = json.loads((ROOT / "shared-schemas" / "examples" / "valid" / "full.json").read_text())
HASH = re.compile(r"\b[0-9a-f]{64}\b")


def parse(path_or_text) -> mc.ModelConfig:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return text_format.Parse(text, mc.ModelConfig())


def triton_type(dtype: str) -> str:
    """Triton's name for a manifest dtype, from tritonclient's own numpy table (not polyonnx's)."""
    name = np_to_triton_dtype(np.dtype(object if dtype == "string" else dtype))
    # Strings are BYTES on the wire and TYPE_STRING in a model config.
    return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"


def assert_config_matches(config: mc.ModelConfig, manifest: dict, variant: str, *, kind="KIND_CPU", count=1):
    expected_name = manifest["name"] if variant == manifest["default_variant"] else f"{manifest['name']}_{variant}"
    assert config.name == expected_name
    assert config.platform == "onnxruntime_onnx"
    batched = config.max_batch_size > 0
    specs = manifest["inputs"] + manifest["outputs"]
    if batched:
        leads = {s["shape"][0] for s in specs}
        assert len(leads) == 1 and isinstance(next(iter(leads)), str), "batching needs one leading dynamic dim"
        assert config.HasField("dynamic_batching")
    else:
        assert not config.HasField("dynamic_batching")
    for got, side in ((config.input, manifest["inputs"]), (config.output, manifest["outputs"])):
        assert [t.name for t in got] == [s["name"] for s in side]
        for tensor, spec in zip(got, side):
            assert mc.DataType.Name(tensor.data_type) == triton_type(spec["dtype"]), spec["name"]
            shape = spec["shape"][1:] if batched else spec["shape"]
            want = [d if isinstance(d, int) else -1 for d in shape]
            if want:
                assert list(tensor.dims) == want, spec["name"]
                assert not tensor.HasField("reshape")
            else:  # a scalar travels as [1] and is reshaped to [] for the model
                assert list(tensor.dims) == [1] and list(tensor.reshape.shape) == []
    assert [(g.count, mc.ModelInstanceGroup.Kind.Name(g.kind)) for g in config.instance_group] == [(count, kind)]


@pytest.fixture(scope="module")
def repository(example_bundles, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("triton") / "repo"
    assert main(["triton", *(str(example_bundles / n) for n in EXAMPLES), "-o", str(out)]) == 0
    return out


def models_of(example_bundles):
    for name in EXAMPLES:
        manifest = json.loads((example_bundles / name / "polyonnx.json").read_text())
        for variant in manifest["variants"]:
            yield manifest, variant


def test_every_example_variant_is_a_model_whose_config_parses_and_matches_its_manifest(repository, example_bundles):
    seen = set()
    for manifest, variant in models_of(example_bundles):
        name = manifest["name"] if variant == manifest["default_variant"] else f"{manifest['name']}_{variant}"
        config = parse(repository / name / "config.pbtxt")
        assert_config_matches(config, manifest, variant)
        # Every example leads with 'batch' and has no max on it: batching up to the default.
        assert config.max_batch_size == _triton.DEFAULT_MAX_BATCH
        seen.add(name)
    assert {p.name for p in repository.iterdir()} == seen


def test_each_model_file_is_the_variants_bytes(repository, example_bundles):
    for manifest, variant in models_of(example_bundles):
        name = manifest["name"] if variant == manifest["default_variant"] else f"{manifest['name']}_{variant}"
        data = (repository / name / "1" / "model.onnx").read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["variants"][variant]["sha256"]
        assert sorted(p.name for p in (repository / name).iterdir()) == ["1", "config.pbtxt"]


def test_config_shapes_agree_with_the_graph_as_onnx_runtime_reports_it(repository):
    """Triton's ONNX Runtime backend refuses a config whose types or fixed dims differ from the model's."""
    import onnxruntime as ort

    ort_types = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64", "tensor(bool)": "TYPE_BOOL",
                 "tensor(float16)": "TYPE_FP16", "tensor(int32)": "TYPE_INT32", "tensor(double)": "TYPE_FP64"}
    for folder in sorted(repository.iterdir()):
        config = parse(folder / "config.pbtxt")
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        for tensors, metas in ((config.input, session.get_inputs()), (config.output, session.get_outputs())):
            by_name = {m.name: m for m in metas}
            assert {t.name for t in tensors} == set(by_name)
            for t in tensors:
                meta = by_name[t.name]
                assert ort_types[meta.type] == mc.DataType.Name(t.data_type)
                graph = list(meta.shape)
                if config.max_batch_size > 0:
                    assert not isinstance(graph[0], int), f"{folder.name}/{t.name}: batch axis is fixed in the graph"
                    graph = graph[1:]
                assert len(graph) == len(t.dims)
                for g, d in zip(graph, t.dims):
                    assert (d == -1) == (not isinstance(g, int)), f"{folder.name}/{t.name}: {graph} vs {list(t.dims)}"
                    if d != -1:
                        assert g == d


def masked(text: str) -> str:
    """A config with the model's sha256 blanked: it changes with every export."""
    return HASH.sub("<sha256>", text)


def test_the_golden_repositories_are_what_polyonnx_triton_writes_now(example_bundles, tmp_path):
    for name in EXAMPLES:
        out = tmp_path / name
        assert main(["triton", str(example_bundles / name), "-o", str(out)]) == 0
        golden = GOLDEN / name
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in golden.iterdir()), (
            "regenerate with: bash scripts/make-triton-golden.sh")
        for model in out.iterdir():
            assert masked((model / "config.pbtxt").read_text()) == (golden / model.name / "config.pbtxt").read_text(), (
                f"{name}/{model.name}: regenerate with: bash scripts/make-triton-golden.sh, and review the diff")


def test_golden_configs_parse_and_match_the_example_manifests(example_bundles):
    for manifest, variant in models_of(example_bundles):
        name = manifest["name"] if variant == manifest["default_variant"] else f"{manifest['name']}_{variant}"
        assert_config_matches(parse(GOLDEN / manifest["name"] / name / "config.pbtxt"), manifest, variant)


def test_gpu_instances_and_tensorrt_precision_follow_each_variant(example_bundles, tmp_path):
    out = tmp_path / "repo"
    argv = ["triton", str(example_bundles / "digits_cnn"), str(example_bundles / "text_transformer"), "-o", str(out),
            "--kind", "gpu", "--instances", "3", "--tensorrt", "--variants", "fp32,int8"]
    assert main(argv) == 0
    expected = {"none": "FP32", "static": "INT8", "dynamic": "FP32"}  # dynamic int8 ops have no TensorRT layers
    for name in ("digits_cnn", "text_transformer"):
        manifest = json.loads((example_bundles / name / "polyonnx.json").read_text())
        for variant, v in manifest["variants"].items():
            folder = name if variant == manifest["default_variant"] else f"{name}_{variant}"
            config = parse(out / folder / "config.pbtxt")
            assert_config_matches(config, manifest, variant, kind="KIND_GPU", count=3)
            (acc,) = config.optimization.execution_accelerators.gpu_execution_accelerator
            assert acc.name == "tensorrt"
            assert acc.parameters["precision_mode"] == expected[v["quantization"]["method"]]
            assert not config.optimization.execution_accelerators.cpu_execution_accelerator


def test_without_tensorrt_there_is_no_accelerator(repository):
    for folder in repository.iterdir():
        assert not parse(folder / "config.pbtxt").HasField("optimization")


def config_of(manifest, variant="fp32", **options):
    return parse(_triton.triton_config(manifest, variant, _triton.TritonOptions(**options)))


def test_bool_inputs_and_dim_constraints_from_a_schema_2_manifest():
    text = _triton.triton_config(FULL, "fp32")
    config = parse(text)
    assert_config_matches(config, FULL, "fp32")
    # Triton has no way to say min/max/multiple_of or a value range: the config says so in comments.
    seq = FULL["dims"]["seq"]
    assert f"dim 'seq': min {seq['min']}, max {seq['max']}, multiple of {seq['multiple_of']}" in text
    lo, hi = FULL["inputs"][0]["value_range"]
    assert f"input 'input_ids': values in [{lo}, {hi}]" in text


def test_max_batch_is_capped_by_the_batch_dims_max():
    m = copy.deepcopy(FULL)
    m["dims"]["batch"]["max"] = 3
    assert config_of(m).max_batch_size == 3
    assert config_of(m, max_batch=2).max_batch_size == 2


def test_no_shared_leading_dim_means_max_batch_size_0_and_full_shapes():
    m = copy.deepcopy(FULL)
    m["outputs"][0]["shape"] = [4]  # logits without the batch dim
    config = config_of(m)
    assert config.max_batch_size == 0
    assert_config_matches(config, m, "fp32")
    assert list(config.input[0].dims) == [-1, -1]


def test_a_batch_dim_that_must_be_at_least_2_or_a_multiple_is_not_batched():
    # Triton's batcher forms batches of any size from 1, which such a model refuses.
    for key, value in (("min", 2), ("multiple_of", 4)):
        m = copy.deepcopy(FULL)
        m["dims"]["batch"][key] = value
        assert config_of(m).max_batch_size == 0


def test_max_batch_0_turns_batching_off():
    config = config_of(FULL, max_batch=0)
    assert config.max_batch_size == 0
    assert_config_matches(config, FULL, "fp32")


def test_scalars_are_dims_1_reshaped_to_no_dims():
    m = copy.deepcopy(FULL)
    m["inputs"].append({"name": "temperature", "dtype": "float32", "shape": []})
    config = config_of(m)  # no shared leading dim any more
    assert config.max_batch_size == 0
    assert_config_matches(config, m, "fp32")
    m = copy.deepcopy(FULL)
    m["inputs"].append({"name": "weight", "dtype": "float32", "shape": ["batch"]})
    config = config_of(m)
    assert config.max_batch_size > 0
    assert_config_matches(config, m, "fp32")


def test_every_manifest_dtype_has_a_triton_type():
    schema = json.loads((ROOT / "shared-schemas" / "manifest.schema.json").read_text())
    for dtype in schema["$defs"]["dtype"]["enum"]:
        m = copy.deepcopy(FULL)
        m["inputs"][1]["dtype"] = dtype
        assert mc.DataType.Name(config_of(m).input[1].data_type) == triton_type(dtype)


def test_a_dtype_triton_lacks_is_refused_naming_the_tensor():
    m = copy.deepcopy(FULL)
    m["outputs"][1]["dtype"] = "bfloat16"
    with pytest.raises(PolyonnxError, match=r"triton: output 'hidden' has dtype 'bfloat16'.* -- re-export"):
        _triton.triton_config(m, "fp32")


def test_an_opset_or_ir_version_above_the_triton_release_is_refused():
    lim = RUNTIMES["triton"]
    m = copy.deepcopy(FULL)
    m["variants"]["int8"]["opset"] = lim["max_opset"] + 1
    with pytest.raises(PolyonnxError, match=rf"variant 'int8' needs opset {lim['max_opset'] + 1}.*"
                                            rf"Triton {lim['release']}.* up to {lim['max_opset']} -- re-export"):
        _triton.triton_config(m, "int8")
    m = copy.deepcopy(FULL)
    m["variants"]["fp32"]["ir_version"] = lim["max_ir_version"] + 1
    with pytest.raises(PolyonnxError, match=rf"IR version {lim['max_ir_version'] + 1}"):
        _triton.triton_config(m, "fp32")


def test_the_triton_entry_of_runtimes_json_names_its_release_and_limits():
    lim = RUNTIMES["triton"]
    assert "package" not in lim  # nothing to install: the JS pin checks skip it
    assert lim["image"].endswith(f":{lim['release']}-py3")
    assert isinstance(lim["max_opset"], int) and isinstance(lim["max_ir_version"], int)


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "polyonnx", "triton", *argv], capture_output=True, text=True)


def test_cli_refusals_name_the_stage_and_the_fix(example_bundles, tmp_path):
    bundle = str(example_bundles / "gru_tagger")
    out = run_cli(bundle, "-o", str(tmp_path / "a"), "--tensorrt")
    assert out.returncode == 2 and "triton: --tensorrt needs GPU instances" in out.stderr and "--kind gpu" in out.stderr
    out = run_cli(bundle, "-o", str(tmp_path / "b"), "--variants", "int8")
    assert out.returncode == 2 and "bundle 'gru_tagger' has no variant 'int8' (it has fp32)" in out.stderr
    out = run_cli(bundle, bundle, "-o", str(tmp_path / "c"))
    assert out.returncode == 2 and "two models would be called 'gru_tagger'" in out.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_an_existing_repository_is_replaced_only_with_force(example_bundles, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keep.txt").write_text("mine")
    out = run_cli(str(example_bundles / "gru_tagger"), "-o", str(repo))
    assert out.returncode == 2 and "already exists" in out.stderr and "--force" in out.stderr
    assert (repo / "keep.txt").exists()
    assert run_cli(str(example_bundles / "gru_tagger"), "-o", str(repo), "--force").returncode == 0
    assert sorted(p.name for p in repo.iterdir()) == ["gru_tagger"]


def test_a_model_file_that_does_not_match_its_sha256_is_not_copied(example_bundles, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(example_bundles / "gru_tagger", bundle)
    with open(bundle / "model.onnx", "ab") as f:
        f.write(b"\0")
    out = run_cli(str(bundle), "-o", str(tmp_path / "repo"))
    assert out.returncode == 2 and "does not match its sha256" in out.stderr
    assert not (tmp_path / "repo").exists()


def test_a_name_with_characters_a_folder_cannot_hold_becomes_underscores():
    m = copy.deepcopy(FULL)
    m["name"] = "org/model:v1"
    assert config_of(m).name == "org_model_v1"
    assert config_of(m, variant="int8").name == "org_model_v1_int8"


def test_polyonnx_help_lists_the_triton_command():
    out = subprocess.run([sys.executable, "-m", "polyonnx", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "triton" in out.stdout


def profile_of(config: mc.ModelConfig, key: str) -> dict[str, list[int]]:
    (acc,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    text = acc.parameters[key]
    return {name: [int(x) for x in dims.split("x")] for name, dims in (p.split(":") for p in text.split(","))}


def test_tensorrt_profile_spans_each_dims_bounds_when_all_are_bounded():
    m = copy.deepcopy(FULL)  # seq: min 8, max 512; batch: no max, so max_batch_size bounds it
    config = config_of(m, kind="gpu", tensorrt=True, max_batch=4)
    seq = m["dims"]["seq"]
    for name in ("input_ids", "attention_mask"):
        assert profile_of(config, "trt_profile_min_shapes")[name] == [1, seq["min"]]
        assert profile_of(config, "trt_profile_opt_shapes")[name] == [m["dims"]["batch"]["example"], seq["example"]]
        assert profile_of(config, "trt_profile_max_shapes")[name] == [4, seq["max"]]


def test_no_tensorrt_profile_when_a_dim_has_no_max(example_bundles):
    manifest = json.loads((example_bundles / "gru_tagger" / "polyonnx.json").read_text())
    assert "max" not in manifest["dims"]["time"]
    config = config_of(manifest, kind="gpu", tensorrt=True)
    (acc,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert set(acc.parameters) == {"precision_mode", "max_workspace_size_bytes"}
