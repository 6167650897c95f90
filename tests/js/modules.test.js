'use strict';
// The package entry points: require('polyonnx') (js/index.cjs, the one CommonJS file) and import
// from 'polyonnx' (js/index.mjs) resolve through package.json "exports" to one ES module graph,
// with no forwarding files and nothing done at import time.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { ROOT, fixture } = require('./_helpers');

const JS = path.join(ROOT, 'js');
const PUBLIC = ['CompatibilityError', 'FeedError', 'IntegrityError', 'ManifestError', 'Model', 'PolyonnxError',
  'PoolError', 'SessionError', 'createPool', 'float16FromNumbers', 'float16ToFloat32', 'load', 'manifest', 'run', 'toNested', 'version'];

function node(args, input) {
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', input });
}

/** Every file under js/ (backends too), relative to the repository. */
function jsFiles() {
  return [...fs.readdirSync(JS).map((f) => path.join(JS, f)), ...fs.readdirSync(path.join(JS, 'backends')).map((f) => path.join(JS, 'backends', f))]
    .filter((f) => fs.statSync(f).isFile());
}

/** A source file without its comment lines (`//`, and ` * ` inside JSDoc blocks, which name modules in types). */
function code(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\/?\*)/.test(l)).join('\n');
}

/** Relative imports of an ES module: static `import ... from './x'`, `export ... from`, and `import('./x')`. */
function relativeImports(file) {
  const src = code(file);
  const specs = [...src.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s));
}

test('require("polyonnx") gives the public API and runs a bundle', () => {
  const out = node(['-e', `
    const p = require('polyonnx');
    p.run(${JSON.stringify(fixture('mlp'))}, { x: [[1, 2, 3, 4]] })
      .then((r) => console.log(JSON.stringify({ keys: Object.keys(p).sort(), dims: r.y.dims, frozen: Object.isFrozen(p) })));
  `]);
  const got = JSON.parse(out.trim().split('\n').pop());
  assert.deepEqual(got.keys, PUBLIC);
  assert.deepEqual(got.dims, [1, 3]);
  assert.equal(got.frozen, true);
});

test('import { load } from "polyonnx" works in ESM and shares the CommonJS instances', () => {
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
    const same = FeedError === cjs.FeedError && ns.default === cjs && load === cjs.load && ns.Model === cjs.Model;
    console.log(JSON.stringify({ names, dims: r.y.dims, code, same }));
  `]);
  const got = JSON.parse(out.trim().split('\n').pop());
  assert.deepEqual(got.names, PUBLIC);
  assert.deepEqual(got.dims, [1, 3]);
  assert.equal(got.code, 'E_FEED');
  assert.equal(got.same, true);
});

test("version is package.json's", () => {
  assert.equal(require('../../js/index.cjs').version, require('../../package.json').version);
});

test('js/ is ES modules and one CommonJS entry that hands over index.mjs: no forwarding files', () => {
  const files = jsFiles().map((f) => path.relative(ROOT, f)).filter((f) => /\.(c|m)?js$/.test(f));
  assert.deepEqual(files.filter((f) => !f.endsWith('.mjs')), ['js/index.cjs']);
  const cjs = code(path.join(JS, 'index.cjs'));
  assert.deepEqual([...cjs.matchAll(/=\s*require\(['"]([^'"]+)['"]\)/g)].map((m) => m[1]), ['./index.mjs']);
  for (const f of files.filter((x) => x.endsWith('.mjs'))) {
    assert.doesNotMatch(fs.readFileSync(path.join(ROOT, f), 'utf8'), /module\.exports|^'use strict'/m, `${f} must be an ES module`);
  }
});

test('import "polyonnx" loads no runtime, starts nothing and changes no global', () => {
  const out = node(['--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    const before = Object.getOwnPropertyNames(globalThis).sort().join(',');
    const F16 = globalThis.Float16Array;
    await import('polyonnx');
    const after = Object.getOwnPropertyNames(globalThis).sort().join(',');
    const require = createRequire(import.meta.url);
    const loaded = Object.keys(require.cache).filter((k) => /onnxruntime|msgpack|ajv/.test(k));
    console.log(JSON.stringify({ sameGlobals: before === after, f16: globalThis.Float16Array === F16, loaded,
      handles: process._getActiveHandles().length }));
  `]);
  const got = JSON.parse(out.trim().split('\n').pop());
  assert.equal(got.sameGlobals, true);
  assert.equal(got.f16, true);
  assert.deepEqual(got.loaded, []);
});

test('the import graphs of the Node and browser entries: which files they reach, and no Node-only file in the browser', () => {
  const reach = (entry) => {
    const seen = new Set();
    const walk = (f) => {
      if (seen.has(f) || !f.startsWith(JS)) return;
      seen.add(f);
      for (const dep of relativeImports(f)) walk(dep);
    };
    walk(path.join(JS, entry));
    return [...seen].map((f) => path.relative(JS, f)).sort();
  };
  const nodeGraph = reach('index.mjs');
  const browserGraph = reach('browser.mjs');
  // The worker's own files (Python drives them) are outside both graphs: the npm package leaves them out.
  for (const f of ['worker.mjs', 'wire.mjs', 'worker-host.mjs', 'browser-driver.mjs', 'backends/wasm.mjs']) {
    assert.ok(!nodeGraph.includes(f) && !browserGraph.includes(f), `${f} is reached from an entry`);
  }
  // pool-worker.mjs is started by URL (new Worker), not imported: the pool's graph must include it.
  assert.match(fs.readFileSync(path.join(JS, 'pool.mjs'), 'utf8'), /new URL\('\.\/pool-worker\.mjs', import\.meta\.url\)/);
  for (const f of browserGraph) {
    const src = fs.readFileSync(path.join(JS, f), 'utf8');
    assert.doesNotMatch(src, /from ['"]node:|require\(/, `${f} is in the browser graph and uses Node`);
  }
  // Every file an entry reaches ships in the npm package ("files"), and the worker's files do not.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }))[0]
    .files.map((f) => f.path);
  const needed = [...new Set([...nodeGraph, ...browserGraph, 'index.cjs', ...reach('pool-worker.mjs')])].map((f) => `js/${f}`);
  assert.deepEqual(needed.filter((f) => !packed.includes(f)), [], 'reached from an entry but not in the npm package');
  for (const f of ['js/worker.mjs', 'js/wire.mjs', 'js/worker-host.mjs', 'js/browser-driver.mjs', 'js/backends/wasm.mjs']) {
    assert.ok(!packed.includes(f), `${f} is in the npm package`);
  }
  // JSON the entries import (runtimes.json, ...) ships too.
  for (const f of [...nodeGraph, ...browserGraph]) {
    for (const [, spec] of code(path.join(JS, f)).matchAll(/from\s+['"](\.[^'"]+\.json)['"]/g)) {
      const rel = path.relative(ROOT, path.resolve(JS, path.dirname(f), spec));
      assert.ok(packed.includes(rel), `${f} imports ${rel}, which is not in the npm package`);
    }
  }
});

test('only js/backends/node.mjs loads onnxruntime-node, and the shared modules import relative files only', () => {
  const users = jsFiles().filter((f) => /require\(['"]onnxruntime-node['"]\)|from ['"]onnxruntime-node['"]/.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(users.map((f) => path.relative(ROOT, f)), ['js/backends/node.mjs']);
  // The browser build imports these files as they are (no bundler): imports of relative files
  // alone (an import map would have to name anything else).
  for (const f of ['feeds.mjs', 'manifest.mjs', 'tensor.mjs', 'errors.mjs', 'onnx-header.mjs', 'compat.mjs', 'model.mjs']) {
    for (const [, spec] of fs.readFileSync(path.join(JS, f), 'utf8').matchAll(/^import .* from ['"]([^'"]+)['"]/gm)) {
      assert.match(spec, /^\.\.?\//, `${f} imports '${spec}': shared modules import relative files only`);
    }
  }
});
