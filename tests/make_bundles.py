"""Export every bundled example once for the test run, into the folder given as argument.

Both test suites read these bundles (POLYONNX_EXAMPLE_BUNDLES). A bundle already there and
exported by this same polyonnx source is reused, so a second run of the suite is quick.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `auto` decides by timing, which a loaded test machine can tip either way; the test bundles ask
# for their int8 explicitly so every runtime's int8 path is always exercised (digits_cnn: static
# QDQ on convolutions; text_transformer: dynamic). tests/python/test_quantize.py tests `auto` itself.
QUANTIZE = {"digits_cnn": "static", "text_transformer": "dynamic"}


# What decides a bundle's bytes and manifest: the exporter's modules, the examples, the contract.
# (Editing the CLI, the runtimes or the benches does not re-export the examples.)
EXPORT_SOURCES = ("pipeline.py", "_capture.py", "_plan.py", "_dims.py", "_upgrade.py", "_export.py", "_graph.py",
                  "_ort.py", "_quantize.py", "autoquant.py", "_spec.py", "feeds.py", "compare.py", "manifest.py",
                  "bundle.py", "verify.py", "_version.py", "_external.py", "_edge.py", "_providers.py")


def source_digest() -> str:
    pkg = ROOT / "python" / "polyonnx"
    files = [pkg / name for name in EXPORT_SOURCES] + sorted((pkg / "examples").glob("*.py"))
    files += [ROOT / "shared-schemas" / n for n in ("manifest.schema.json", "runtimes.json", "tolerances.json")]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def main(out: Path) -> None:
    import polyonnx
    from polyonnx.examples import EXAMPLES

    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "SOURCE"
    digest = source_digest()
    fresh = stamp.exists() and stamp.read_text() == digest
    for name in EXAMPLES:
        target = out / name
        if fresh and (target / "polyonnx.json").exists():
            print(f"{name}: up to date", file=sys.stderr)
            continue
        print(f"{name}: exporting", file=sys.stderr)
        polyonnx.export(f"polyonnx.examples:{name}", None, target, force=True, progress=False,
                        quantize=QUANTIZE.get(name))
        write_vectors(target, out / f"{name}.vectors.json")
    stamp.write_text(digest)


def write_vectors(bundle_dir: Path, path: Path) -> None:
    """Reference inputs/outputs computed by ONNX Runtime Python for every variant (JS tests read them)."""
    sys.path.insert(0, str(ROOT / "tests" / "js" / "fixtures"))
    try:
        import make_fixtures
    except ImportError:
        return  # the JS fixture helpers are not there yet
    import numpy as np

    import polyonnx
    from polyonnx.feeds import make_feeds

    bundle = polyonnx.load(bundle_dir)
    sizes = {d: v["verified"][-1] for d, v in bundle.dims.items() if not v.get("derived")}
    feeds = make_feeds(bundle.inputs, sizes, seed=123)
    outputs = {}
    for vname in bundle.variants:
        with polyonnx.runtime("python", bundle, variant=vname) as rt:
            outputs[vname] = {k: np.asarray(v) for k, v in rt.run(feeds).items()}
    make_fixtures.write_vectors(bundle_dir, feeds, outputs, path)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "python"))
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "test-bundles"))
