"""Shared fixtures: the bundled examples are exported once per test session.

scripts/test.sh exports them before the suites run (POLYONNX_EXAMPLE_BUNDLES) so the JS tests
can use them too; run alone, pytest exports them itself into a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def example_bundles(tmp_path_factory) -> Path:
    folder = os.environ.get("POLYONNX_EXAMPLE_BUNDLES")
    out = Path(folder) if folder else tmp_path_factory.mktemp("bundles")
    subprocess.run([sys.executable, str(ROOT / "tests" / "make_bundles.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def torch_examples():
    """The example models as PyTorch modules (the references), built once."""
    from polyonnx import examples

    return {name: getattr(examples, name)() for name in examples.EXAMPLES}
