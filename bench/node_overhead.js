'use strict';
// What polyonnx costs over raw onnxruntime-node: load time (validation + sha256 + header read)
// and per-run latency (feed checks/conversion, the run queue, result wrapping).
//
//   node bench/node_overhead.js [BUNDLE_DIR ...]      (default: the JS fixtures mlp and tokens,
//                                                     plus text_transformer when built)
//
// Raw and polyonnx runs use the same session (the model's own) and the same inputs, alternating
// one after the other so machine noise hits both alike; medians over many runs.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { load } = require('../js/index.cjs');
const { ort } = require('../js/backends/node.mjs');
const { prepareFeeds } = require('../js/feeds.mjs');

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = process.env.POLYONNX_JS_FIXTURES || path.join(ROOT, 'build', 'js-fixtures');
const EXAMPLES = process.env.POLYONNX_EXAMPLE_BUNDLES || path.join(ROOT, 'build', 'test-bundles');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Feeds at the manifest's example sizes, as nested JS arrays (what a caller typically passes). */
function exampleFeeds(manifest) {
  const sizes = Object.fromEntries(Object.entries(manifest.dims).map(([k, v]) => [k, v.example]));
  const feeds = {};
  let seed = 1;
  const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (const spec of manifest.inputs) {
    const dims = spec.shape.map((d) => (typeof d === 'string' ? sizes[d] : d));
    const [lo, hi] = spec.value_range || [0, 9];
    const value = () => (spec.dtype === 'bool' ? rand() < 0.8
      : spec.dtype.startsWith('float') ? rand() * 2 - 1 : lo + Math.floor(rand() * (hi - lo + 1)));
    const build = (axis) => Array.from({ length: dims[axis] }, () => (axis === dims.length - 1 ? value() : build(axis + 1)));
    feeds[spec.name] = dims.length ? build(0) : value();
  }
  return feeds;
}

async function benchBundle(dir, { loads = 15, runs = 300 } = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const variant = manifest.default_variant;
  const file = path.join(dir, manifest.variants[variant].file);
  const options = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 };
  // The same session as polyonnx's: load() takes polyonnx's provider names (providers.json).
  const polyOptions = { providers: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 };
  const O = ort();

  // load: raw InferenceSession.create(path) vs polyonnx load(dir), alternating
  const rawLoad = [];
  const polyLoad = [];
  for (let i = 0; i < loads; i++) {
    let t = performance.now();
    const s = await O.InferenceSession.create(file, options);
    rawLoad.push(performance.now() - t);
    await s.release();
    t = performance.now();
    const m = await load(dir, { variant, ...polyOptions });
    polyLoad.push(performance.now() - t);
    await m.dispose();
  }

  const model = await load(dir, { variant, ...polyOptions });
  const nested = exampleFeeds(manifest);
  const { tensors } = prepareFeeds(nested, manifest.inputs, manifest.dims);
  const typed = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { data: t.data, dims: t.dims }]));
  const ortFeeds = () => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, new O.Tensor(t.dtype, t.data, t.dims)]));
  const session = model._session; // the same session for both sides
  const times = { raw: [], typed: [], nested: [] };
  for (let i = 0; i < runs + 20; i++) {
    let t = performance.now();
    await session.run(ortFeeds());
    const raw = performance.now() - t;
    t = performance.now();
    await model.run(typed);
    const ty = performance.now() - t;
    t = performance.now();
    await model.run(nested);
    const ne = performance.now() - t;
    if (i >= 20) { times.raw.push(raw); times.typed.push(ty); times.nested.push(ne); }
  }
  await model.dispose();
  const sizes = Object.entries(manifest.dims).map(([k, v]) => `${k}=${v.example}`).join(' ') || 'static';
  return {
    bundle: `${manifest.name}/${variant} (${sizes})`,
    mb: manifest.variants[variant].bytes / 1e6,
    rawLoad: median(rawLoad), polyLoad: median(polyLoad),
    raw: median(times.raw), typed: median(times.typed), nested: median(times.nested),
  };
}

async function main() {
  let dirs = process.argv.slice(2);
  if (!dirs.length) {
    dirs = ['mlp', 'tokens'].map((n) => path.join(FIXTURES, n));
    const tt = path.join(EXAMPLES, 'text_transformer');
    if (fs.existsSync(path.join(tt, 'polyonnx.json'))) dirs.push(tt);
  }
  for (const d of dirs) {
    if (!fs.existsSync(path.join(d, 'polyonnx.json'))) {
      throw new Error(`no bundle at ${d}: run .venv/bin/python tests/js/fixtures/make_fixtures.py build/js-fixtures`);
    }
  }
  const rows = [];
  for (const d of dirs) rows.push(await benchBundle(d));
  const f = (x, n = 3) => x.toFixed(n);
  console.log(`node ${process.version}, onnxruntime-node ${ort().env.versions.node}, 1 intra-op thread; medians (ms)`);
  console.log('| bundle | MB | load raw | load polyonnx | run raw | run polyonnx {data,dims} | run polyonnx nested arrays |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.bundle} | ${f(r.mb, 2)} | ${f(r.rawLoad, 2)} | ${f(r.polyLoad, 2)} | ${f(r.raw)} | `
      + `${f(r.typed)} (+${f(r.typed - r.raw)}) | ${f(r.nested)} (+${f(r.nested - r.raw)}) |`);
  }
}

main().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
