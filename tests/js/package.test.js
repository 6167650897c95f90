'use strict';
// The npm package as a stranger gets it (issue #12, "Done when", the Node half): `npm pack`, then
// a fresh project in the system's temporary folder (outside the clone) that installs the tarball
// with only onnxruntime-node beside it, and runs the README's Node tour exactly as written, from
// CommonJS (.cjs), ESM (.mjs) and TypeScript (tsc under module nodenext, then node), on a copy of
// a real bundle. Each prints the output's dims and its argmax; the expected line is computed here
// from onnxruntime-node run directly on the same model file, and a full-output check compares
// every logit. Also: what the tarball holds, the exported schemas, that no onnxruntime-web came
// along, a clear error without onnxruntime-node, and the node_modules size of a Node-only and of a
// browser-only install (tarball + onnxruntime-web).
//
// npm installs with --prefer-offline (the repository's own install filled npm's cache with the
// same onnxruntime versions); a machine with a cold cache downloads them from the registry.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');

const { ROOT, exampleBundle, tolerance, compareOutput } = require('./_helpers');

const README = path.join(ROOT, 'README.md');
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');
const versionOf = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
const ENV = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };

function sh(cmd, args, cwd, extra = {}) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, env: ENV, ...extra });
}

/** The README's fenced blocks whose info string is exactly `info` (e.g. 'js tour-cjs'). */
function readmeBlocks(info) {
  const text = fs.readFileSync(README, 'utf8');
  return [...text.matchAll(/^```([^\n]*)\n([\s\S]*?)^```\s*$/gm)].filter((m) => m[1].trim() === info).map((m) => m[2]);
}

/** Bytes of every file under `dir` (sizes as stored, links not followed). */
function treeBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(p);
    else total += fs.lstatSync(p).size;
  }
  return total;
}

const MB = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;

/** A new project in `parent` with `packages` installed (tarball path or name@version). */
function project(parent, name, packages, type) {
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, ...(type ? { type } : {}) }, null, 2));
  if (packages.length) sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...packages], dir);
  return dir;
}

let tmp;
let tarball;
let packed;
let app;

test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-package-'));
  assert.ok(path.relative(ROOT, tmp).startsWith('..'), `the project must be outside the clone (${tmp})`);
  const out = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp], ROOT));
  tarball = path.join(tmp, out[0].filename);
  packed = out[0].files.map((f) => f.path);
  app = project(tmp, 'app', [tarball, `onnxruntime-node@${versionOf('onnxruntime-node')}`]);
  fs.cpSync(exampleBundle('digits_cnn'), path.join(app, 'bundles', 'digits_cnn'), { recursive: true });
});

test.after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds what JS users run, the types, the schemas and LICENSE; not the worker Python drives', () => {
  for (const f of ['LICENSE', 'README.md', 'package.json', 'js/index.cjs', 'js/index.mjs', 'js/browser.mjs',
    'js/index.d.cts', 'js/index.d.mts', 'js/browser.d.mts', 'js/types.d.ts', 'js/pool-worker.mjs', 'js/backends/node.mjs',
    'js/backends/web.mjs', 'shared-schemas/manifest.schema.json', 'shared-schemas/runtimes.json']) {
    assert.ok(packed.includes(f), `${f} is missing from the tarball`);
  }
  for (const f of ['js/worker.mjs', 'js/wire.mjs', 'js/worker-host.mjs', 'js/browser-driver.mjs', 'js/backends/wasm.mjs',
    'js/tsconfig.json', 'shared-schemas/bad-inputs.json']) {
    assert.ok(!packed.includes(f), `${f} is in the tarball`);
  }
  assert.deepEqual(packed.filter((f) => f.startsWith('js/demo/') || f.startsWith('tests/') || f.startsWith('python/')), []);
  const pkg = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'polyonnx', 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies: the runtimes are optional peers');
  assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['onnxruntime-node', 'onnxruntime-web']);
  assert.equal(pkg.sideEffects, false);
  assert.ok(pkg.repository && pkg.keywords.includes('onnx'));
});

test('a Node-only install has onnxruntime-node and no onnxruntime-web; the schemas resolve by name', (t) => {
  const modules = path.join(app, 'node_modules');
  assert.ok(fs.existsSync(path.join(modules, 'onnxruntime-node', 'package.json')));
  assert.ok(!fs.existsSync(path.join(modules, 'onnxruntime-web')), 'onnxruntime-web came along with a Node-only install');
  const resolved = sh(process.execPath, ['-p', "require.resolve('polyonnx/shared-schemas/manifest.schema.json')"], app).trim();
  assert.equal(resolved, path.join(modules, 'polyonnx', 'shared-schemas', 'manifest.schema.json'));
  const id = sh(process.execPath, ['-p', "require('polyonnx/shared-schemas/manifest.schema.json').$id"], app).trim();
  assert.equal(id, JSON.parse(fs.readFileSync(path.join(ROOT, 'shared-schemas', 'manifest.schema.json'), 'utf8')).$id);
  t.diagnostic(`node_modules of a Node-only install (polyonnx + onnxruntime-node ${versionOf('onnxruntime-node')}): ${MB(treeBytes(modules))}`);
});

/** The README's tour line, from onnxruntime-node on the bundle's default variant file: util.format(dims, argmax). */
function referenceLine() {
  const script = `
    const fs = require('node:fs');
    const ort = require('onnxruntime-node');
    const m = JSON.parse(fs.readFileSync('bundles/digits_cnn/polyonnx.json', 'utf8'));
    const file = 'bundles/digits_cnn/' + m.variants[m.default_variant].file;
    (async () => {
      const session = await ort.InferenceSession.create(file);
      const out = await session.run({ pixels: new ort.Tensor('float32', new Float32Array(64).fill(0.5), [1, 1, 8, 8]) });
      const logits = out.logits;
      const data = Array.from(logits.data);
      console.log(JSON.stringify({ dims: Array.from(logits.dims), data }));
    })();`;
  const ref = JSON.parse(sh(process.execPath, ['-e', script], app).trim().split('\n').pop());
  return { ref, line: util.format(ref.dims, ref.data.indexOf(Math.max(...ref.data))) };
}

test("the README's Node tour runs as written from CommonJS, ESM and TypeScript and prints the reference's answer", (t) => {
  const { line } = referenceLine();
  const blocks = { cjs: readmeBlocks('js tour-cjs'), mjs: readmeBlocks('js tour-esm'), ts: readmeBlocks('ts tour-ts') };
  for (const [kind, found] of Object.entries(blocks)) assert.equal(found.length, 1, `README.md has ${found.length} '${kind}' tour blocks, not 1`);
  for (const kind of ['cjs', 'mjs']) {
    fs.writeFileSync(path.join(app, `tour.${kind}`), blocks[kind][0]);
    const out = sh(process.execPath, [`tour.${kind}`], app).trim();
    assert.equal(out, line, `tour.${kind} printed ${out}`);
  }
  // TypeScript: an ES module project (top-level await), module nodenext, the types from the
  // installed package; @types/node for console and typed arrays comes from this repository's
  // dev tools, as a TypeScript user has it among theirs.
  const ts = path.join(app, 'ts');
  fs.mkdirSync(ts);
  fs.writeFileSync(path.join(ts, 'package.json'), JSON.stringify({ type: 'module' }));
  fs.writeFileSync(path.join(ts, 'tour.ts'), blocks.ts[0]);
  fs.writeFileSync(path.join(ts, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, outDir: 'out', skipLibCheck: false,
      types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    },
    files: ['tour.ts'],
  }));
  const built = (() => {
    try {
      return sh(TSC, ['-p', ts], app);
    } catch (e) {
      assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
    }
  })();
  assert.equal(built.trim(), '');
  const out = sh(process.execPath, [path.join('ts', 'out', 'tour.js')], app).trim();
  assert.equal(out, line, `the TypeScript tour printed ${out}`);
  t.diagnostic(`each tour printed ${line}, as onnxruntime-node on the same file`);
});

test('require and import of the installed package are one instance, and every logit matches onnxruntime-node', () => {
  const { ref } = referenceLine();
  fs.writeFileSync(path.join(app, 'check.mjs'), `
    import { createRequire } from 'node:module';
    import polyonnx, { load, FeedError } from 'polyonnx';
    const cjs = createRequire(import.meta.url)('polyonnx');
    const model = await load('bundles/digits_cnn');
    const out = await model.run({ pixels: { data: new Float32Array(64).fill(0.5), dims: [1, 1, 8, 8] } });
    console.log(JSON.stringify({ same: cjs === polyonnx && cjs.FeedError === FeedError, runtime: model.info().runtime,
      logits: { dtype: out.logits.dtype, dims: out.logits.dims, data: Array.from(out.logits.data) } }));
    await model.dispose();
  `);
  const got = JSON.parse(sh(process.execPath, ['check.mjs'], app).trim().split('\n').pop());
  assert.equal(got.same, true);
  assert.deepEqual(got.runtime, { name: 'node', package: 'onnxruntime-node', version: versionOf('onnxruntime-node') });
  const cmp = compareOutput({ ...got.logits, data: Float32Array.from(got.logits.data) },
    { dtype: 'float32', dims: ref.dims, data: Float32Array.from(ref.data) }, tolerance('fp32', 'node'), 1);
  assert.ok(cmp.passed, cmp.why);
  assert.equal(cmp.metrics.max_abs, 0, 'polyonnx hands onnxruntime-node the same bytes: bit-identical logits');
});

test('without onnxruntime-node, load() says which package, which versions and the install command', () => {
  const bare = project(tmp, 'bare', [tarball]);
  fs.cpSync(exampleBundle('digits_cnn'), path.join(bare, 'bundles', 'digits_cnn'), { recursive: true });
  const out = sh(process.execPath, ['-e', `
    require('polyonnx').load('bundles/digits_cnn').then(
      () => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));
  `], bare).trim();
  const err = JSON.parse(out);
  const range = require('../../package.json').peerDependencies['onnxruntime-node'];
  assert.equal(err.code, 'E_COMPAT');
  assert.match(err.message, /onnxruntime-node is not installed/);
  assert.ok(err.message.includes(`npm install onnxruntime-node@"${range}"`), err.message);
  assert.match(err.message, /ONNXRUNTIME_NODE_INSTALL=skip/);
});

test('a browser-only install (tarball + onnxruntime-web) has no onnxruntime-node', (t) => {
  const web = project(tmp, 'web', [tarball, `onnxruntime-web@${versionOf('onnxruntime-web')}`], 'module');
  const modules = path.join(web, 'node_modules');
  assert.ok(fs.existsSync(path.join(modules, 'onnxruntime-web', 'package.json')));
  assert.ok(!fs.existsSync(path.join(modules, 'onnxruntime-node')), 'onnxruntime-node came along with a browser-only install');
  t.diagnostic(`node_modules of a browser-only install (polyonnx + onnxruntime-web ${versionOf('onnxruntime-web')}): ${MB(treeBytes(modules))}`);
});
