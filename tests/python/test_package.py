"""Packaging facts: light import, one version, JS runtime ranges and pins that match runtimes.json."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_polyonnx_and_help_do_not_import_torch_or_onnxruntime():
    code = (
        "import sys, contextlib, io\n"
        "import polyonnx\n"
        "from polyonnx.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "    main(['export', '--help']) if False else None\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_python_and_npm_versions_are_the_same():
    import polyonnx

    pkg = json.loads((ROOT / "package.json").read_text())
    assert pkg["version"] == polyonnx.__version__


def test_runtimes_json_matches_the_peer_range_the_test_pins_and_what_is_installed():
    pkg = json.loads((ROOT / "package.json").read_text())
    table = json.loads((ROOT / "shared-schemas" / "runtimes.json").read_text())
    for key in ("node", "web"):
        name = table[key]["package"]
        assert pkg["peerDependencies"][name] == table[key]["range"]
        assert pkg["peerDependenciesMeta"][name] == {"optional": True}
        assert pkg["devDependencies"][name] == table[key]["version"]
        installed = json.loads((ROOT / "node_modules" / name / "package.json").read_text())
        assert installed["version"] == table[key]["version"]


def test_module_entry_point_answers_help():
    out = subprocess.run([sys.executable, "-m", "polyonnx", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("export", "verify", "info"):
        assert command in out.stdout
