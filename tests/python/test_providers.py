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
