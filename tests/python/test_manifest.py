"""The shared example manifests go through the Python validator as the schema says."""

import json
from pathlib import Path

import pytest

from polyonnx import manifest
from polyonnx.errors import ManifestError

EXAMPLES = Path(__file__).resolve().parents[2] / "shared-schemas" / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def test_there_are_shared_examples_of_both_kinds():
    assert len(VALID) >= 2 and len(INVALID) >= 10


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_manifest_is_accepted(path):
    assert manifest.problems(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_manifest_is_rejected_with_a_reason(path):
    case = json.loads(path.read_text())
    with pytest.raises(ManifestError) as err:
        if "manifest_text" in case:  # what JSON itself cannot hold (NaN, 1e400): parsed as polyonnx.json text
            manifest.from_json(case["manifest_text"])
        else:
            manifest.validate(case["manifest"])
    assert err.value.details.get("problems") or "not valid JSON" in str(err.value), case["why"]
    assert "polyonnx.json" in str(err.value)
