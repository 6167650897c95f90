'use strict';
// The edge variant (an ORT-format model, `polyonnx export --edge`) and ONNX external data
// (`--external-data`) in Node, on onnxruntime-node and on onnxruntime-web's wasm backend (#13
// parts 4 and 5). The bundle is exported by the Python CLI from a small ONNX MLP, with the
// references computed by ONNX Runtime Python on the self-contained source; the browser runs the
// same bundle in tests/python/test_edge.py and test_external_data.py.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const { load, IntegrityError, ManifestError, CompatibilityError } = require('../../js/index.cjs');
const { ROOT, compareOutput, tolerance, scratchBundle, editManifest, rejectsWith } = require('./_helpers');

const PY = path.join(ROOT, '.venv', 'bin', 'python');

// Writes the MLP, exports it with --edge --external-data --quantize dynamic, and prints the
// feeds and ONNX Runtime Python's outputs for the source model and the int8 file.
const MAKE = `
import json, subprocess, sys
from pathlib import Path
import numpy as np, onnxruntime as ort
sys.path.insert(0, "tests/python")
from _onnx_mlp import IN, write_mlp
out = Path(sys.argv[1])
src = write_mlp(out / "mlp.onnx")
subprocess.run([sys.executable, "-m", "polyonnx", "export", str(src), "-o", str(out / "bundle"), "--edge",
                "--external-data", "--quantize", "dynamic", "-q"], check=True, stdout=subprocess.DEVNULL)
x = np.random.default_rng(11).normal(size=(4, IN)).astype(np.float32)
ref = lambda f: ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
print(json.dumps({"x": x.ravel().tolist(), "dims": list(x.shape), "fp32": ref(src).ravel().tolist(),
                  "int8": ref(out / "bundle" / "model.int8.onnx").ravel().tolist()}))
`;

let made;
function exported() {
  if (!made) {
    if (!fs.existsSync(PY)) throw new Error(`${PY} is missing: this test exports its bundle with the Python CLI (bash scripts/setup.sh)`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-edge-'));
    const out = execFileSync(PY, ['-c', MAKE, dir], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
    made = { dir, bundle: path.join(dir, 'bundle'), ref: JSON.parse(out) };
  }
  return made;
}

test.after(() => { if (made) fs.rmSync(made.dir, { recursive: true, force: true }); });

function feeds(ref) {
  return { x: { dtype: 'float32', dims: ref.dims, data: Float32Array.from(ref.x) } };
}

/** load() on onnxruntime-node, or the same load sequence on onnxruntime-web's wasm backend. */
async function loadOn(runtime, dir, options) {
  if (runtime === 'node') return load(dir, options);
  const { openModel } = await import('../../js/model.mjs');
  const { readBundle } = await import('../../js/bundle-node.mjs');
  const wasm = await import('../../js/backends/wasm.mjs');
  return openModel(await readBundle(dir), options, wasm);
}

for (const runtime of ['node', 'wasm']) {
  for (const variant of ['ort', 'fp32', 'int8']) {
    test(`${runtime}: variant '${variant}' gives ONNX Runtime Python's answers`, async () => {
      const { bundle, ref } = exported();
      const model = await loadOn(runtime, bundle, { variant });
      try {
        const { y } = await model.run(feeds(ref));
        const reference = { dtype: 'float32', dims: y.dims, data: Float32Array.from(variant === 'int8' ? ref.int8 : ref.fp32) };
        const tol = tolerance(variant === 'int8' ? 'int8' : 'fp32', runtime);
        const verdict = compareOutput(y, reference, tol);
        assert.ok(verdict.passed, verdict.why);
        const info = model.info();
        const v = model.manifest.variants[variant];
        assert.equal(info.file, v.file);
        // info's size counts the data files a variant reads; the edge variant has none.
        assert.equal(info.bytes, v.bytes + (v.external_data || []).reduce((s, e) => s + e.bytes, 0));
        assert.equal(variant === 'ort', !v.external_data);
      } finally {
        await model.dispose();
      }
    });
  }
}

test("a variant recorded as format 'ort' whose file is an ONNX model is refused before any session", async () => {
  const dir = scratchBundle(exported().bundle);
  editManifest(dir, (m) => {
    const fp32 = m.variants.fp32;
    m.variants.ort = { ...m.variants.ort, file: fp32.file, sha256: fp32.sha256, bytes: fp32.bytes };
    m.variants.fp32 = { ...fp32, file: 'model.int8.onnx', sha256: m.variants.int8.sha256, bytes: m.variants.int8.bytes,
      external_data: m.variants.int8.external_data };
    delete m.variants.int8;
  });
  await rejectsWith(assert, load(dir, { variant: 'ort' }), ManifestError, 'E_MANIFEST', ['model.onnx', "'ORTM'", "variant 'ort'"]);
});

test("an 'ort' variant's opset comes from the manifest: one above the runtime's limit is refused unread", async () => {
  const dir = scratchBundle(exported().bundle);
  editManifest(dir, (m) => { m.variants.ort.opset = 27; });
  fs.rmSync(path.join(dir, 'model.ort')); // never read: the manifest alone decides
  await rejectsWith(assert, load(dir, { variant: 'ort' }), CompatibilityError, 'E_COMPAT', ['opset 27', "variant 'ort'"]);
});

for (const runtime of ['node', 'wasm']) {
  test(`${runtime}: one changed byte in model.onnx.data is an IntegrityError naming it`, async () => {
    const dir = scratchBundle(exported().bundle);
    const file = path.join(dir, 'model.onnx.data');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1] ^= 0x01;
    fs.writeFileSync(file, bytes);
    await rejectsWith(assert, loadOn(runtime, dir, { variant: 'fp32' }), IntegrityError, 'E_INTEGRITY',
      ['model.onnx.data', 'sha256', "variant 'fp32'"]);
    // the edge variant does not read it, and still loads
    const ort = await loadOn(runtime, dir, { variant: 'ort' });
    await ort.dispose();
  });
}
