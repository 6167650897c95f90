"""The Python half of the JS-generated manifest fuzz (tests/js/fuzz.test.js): reads file names (one
per line) on stdin, loads each DIR/NAME as a bundle exactly as tests/python/test_fuzz.py does (the
manifest, then the default variant's files by size and sha256), prints {name: verdict} as JSON with
verdict 'accept', the polyonnx error code, or 'foreign: ...'.

    .venv/bin/python tests/fuzz_verdicts.py DIR < names.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from polyonnx.bundle import Bundle
from polyonnx.errors import PolyonnxError


def verdict(path: Path) -> str:
    try:
        Bundle.load(path).model_path(None, check=True)
        return "accept"
    except PolyonnxError as e:
        return e.code
    except Exception as e:  # reported, and counted as a failure by the JS test
        return f"foreign: {type(e).__name__}: {e!s:.200}"


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    names = [n for n in sys.stdin.read().split("\n") if n]
    sys.stdout.write(json.dumps({n: verdict(folder / n) for n in names}))
