'use strict';
// The package entry points: require('polyonnx') (CommonJS) and import from 'polyonnx' (ESM)
// resolve through package.json "exports" to one shared implementation.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');

const { ROOT, fixture } = require('./_helpers');

const PUBLIC = ['CompatibilityError', 'FeedError', 'IntegrityError', 'ManifestError', 'Model', 'PolyonnxError',
  'PoolError', 'SessionError', 'createPool', 'float16FromNumbers', 'float16ToFloat32', 'load', 'manifest', 'run', 'toNested', 'version'];

function node(args, input) {
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', input });
}

test('require("polyonnx") gives the public API and runs a bundle', () => {
  const out = node(['-e', `
    const p = require('polyonnx');
    p.run(${JSON.stringify(fixture('mlp'))}, { x: [[1, 2, 3, 4]] })
      .then((r) => console.log(JSON.stringify({ keys: Object.keys(p).sort(), dims: r.y.dims })));
  `]);
  const got = JSON.parse(out.trim().split('\n').pop());
  assert.deepEqual(got.keys, PUBLIC);
  assert.deepEqual(got.dims, [1, 3]);
});

test('import { load } from "polyonnx" works in ESM and shares the CommonJS classes', () => {
  const out = node(['--input-type=module', '-e', `
    import { load, FeedError } from 'polyonnx';
    import * as ns from 'polyonnx';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('polyonnx');
    const model = await load(${JSON.stringify(fixture('mlp'))});
    const r = await model.run({ x: [[1, 2, 3, 4]] });
    let code = null;
    try { await model.run({ x: [[1, 2]] }); } catch (e) { code = e instanceof cjs.FeedError && e.code; }
    await model.dispose();
    const names = Object.keys(ns).filter((k) => k !== 'default').sort();
    console.log(JSON.stringify({ names, dims: r.y.dims, code, same: FeedError === cjs.FeedError && ns.default === cjs }));
  `]);
  const got = JSON.parse(out.trim().split('\n').pop());
  assert.deepEqual(got.names, PUBLIC);
  assert.deepEqual(got.dims, [1, 3]);
  assert.equal(got.code, 'E_FEED');
  assert.equal(got.same, true);
});

test('version is package.json\'s', () => {
  assert.equal(require('../../js/index.js').version, require('../../package.json').version);
});

test('only js/backends/node.js loads onnxruntime-node, and the shared modules are ES modules that need nothing from Node', () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const jsDir = path.join(ROOT, 'js');
  const files = [...fs.readdirSync(jsDir).map((f) => path.join(jsDir, f)), ...fs.readdirSync(path.join(jsDir, 'backends')).map((f) => path.join(jsDir, 'backends', f))]
    .filter((f) => f.endsWith('.js') || f.endsWith('.mjs'));
  const users = files.filter((f) => /require\(['"]onnxruntime-node['"]\)|from ['"]onnxruntime-node['"]/.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(users.map((f) => path.relative(ROOT, f)), ['js/backends/node.js']);
  // The browser build imports these files as they are (no bundler): ES module syntax only, and
  // imports of relative files alone (an import map would have to name anything else).
  for (const f of ['feeds.mjs', 'manifest.mjs', 'tensor.mjs', 'errors.mjs', 'onnx-header.mjs', 'compat.mjs', 'model.mjs']) {
    const src = fs.readFileSync(path.join(jsDir, f), 'utf8');
    assert.doesNotMatch(src, /\brequire\(|module\.exports/, `${f} must stay an ES module`);
    for (const [, spec] of src.matchAll(/^import .* from ['"]([^'"]+)['"]/gm)) {
      assert.match(spec, /^\.\.?\//, `${f} imports '${spec}': shared modules import relative files only`);
    }
  }
  // Each CommonJS file of a shared module is its ES module re-exported: one implementation.
  for (const f of ['feeds', 'tensor', 'errors', 'onnx-header', 'compat', 'model', 'manifest']) {
    assert.equal(require(path.join(jsDir, `${f}.js`)), require(path.join(jsDir, `${f}.mjs`)), `${f}.js re-exports ${f}.mjs`);
  }
});
