'use strict';
// polyonnx in a browser app built by a bundler, as a stranger would do it (issue #12 part 3): a
// temporary project outside the clone with only the packed polyonnx tarball (`npm pack`),
// onnxruntime-web and the bundler installed; a page that imports 'polyonnx', built by vite and by
// esbuild, served over http from 127.0.0.1 and run in Debian's Chromium; its outputs compared
// with onnxruntime-node on the same model and feeds. The wasm handling is the recipe of
// docs/browser.md: vite emits the .wasm that onnxruntime-web names with
// new URL(..., import.meta.url); with esbuild the app copies it next to its output.
//
// What this expects of package.json: the "browser" (or "default") condition of "." resolves to
// js/browser.mjs, "files" carries every module browser.mjs imports, and the peer dependency on
// onnxruntime-web accepts the version installed here (the repository's own).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, exampleBundle, tolerance, compareOutput } = require('./_helpers');
const { serve, launchChromium, openPage } = require('./_chromium');

const versionOf = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

// The page's script: seeded pixels (the test computes the same), one load and run, the answer on window.
const MAIN = `import { load } from 'polyonnx';

function seeded(n) {
  let s = 7;
  return Float32Array.from({ length: n }, () => { s = (s * 16807) % 2147483647; return s / 2147483647; });
}

(async () => {
  try {
    const model = await load(new URL('./model/', location.href).href);
    const out = await model.run({ pixels: { data: seeded(2 * 64), dims: [2, 1, 8, 8] } });
    window.result = { dims: out.logits.dims, data: Array.from(out.logits.data), runtime: model.info().runtime };
  } catch (e) {
    window.result = { error: e.code + ': ' + e.message };
  }
  document.body.dataset.done = '1';
})();
`;
const INDEX = (script) => `<!doctype html><html><head><meta charset="utf-8"><title>bundled polyonnx</title>
<script type="module" src="${script}"></script></head><body></body></html>`;

let tmp;
let app;
let tarball;

function sh(cmd, args, cwd) {
  return execFileSync(cmd, args, {
    cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20,
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_fund: 'false', npm_config_audit: 'false' },
  });
}

test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-bundlers-'));
  assert.ok(!path.relative(ROOT, tmp).match(/^[^.]/), 'the project is outside the clone');
  const [packed] = JSON.parse(sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], ROOT));
  tarball = path.join(tmp, packed.filename);
  app = path.join(tmp, 'app');
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'bundled-app', private: true, type: 'module' }));
  // Only what a browser app installs: polyonnx, onnxruntime-web and the two bundlers.
  sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball,
    `onnxruntime-web@${versionOf('onnxruntime-web')}`, `vite@${versionOf('vite')}`, `esbuild@${versionOf('esbuild')}`], app);
  fs.writeFileSync(path.join(app, 'src', 'main.js'), MAIN);
});

test('a browser-only install (the tarball and onnxruntime-web) has no onnxruntime-node', (t) => {
  const only = path.join(tmp, 'browser-only');
  fs.mkdirSync(only);
  fs.writeFileSync(path.join(only, 'package.json'), JSON.stringify({ name: 'browser-only', private: true }));
  sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `onnxruntime-web@${versionOf('onnxruntime-web')}`], only);
  const modules = path.join(only, 'node_modules');
  assert.ok(fs.existsSync(path.join(modules, 'polyonnx', 'js', 'browser.mjs')));
  assert.ok(!fs.existsSync(path.join(modules, 'onnxruntime-node')), 'onnxruntime-node was installed into a browser app');
  const bytes = Number(execFileSync('du', ['-sb', modules], { encoding: 'utf8' }).split('\t')[0]);
  t.diagnostic(`browser-only node_modules: ${(bytes / 1e6).toFixed(1)} MB`); // the closing note of #12
});

test.after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function reference() {
  const ort = require('onnxruntime-node');
  const dir = exampleBundle('digits_cnn');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  let s = 7;
  const pixels = Float32Array.from({ length: 2 * 64 }, () => { s = (s * 16807) % 2147483647; return s / 2147483647; });
  const session = await ort.InferenceSession.create(path.join(dir, manifest.variants[manifest.default_variant].file));
  try {
    return (await session.run({ pixels: new ort.Tensor('float32', pixels, [2, 1, 8, 8]) })).logits;
  } finally {
    await session.release();
  }
}

/** Serve `dir` (the built app, with the bundle copied to model/), open its page, return window.result and the requests. */
async function runBuilt(dir) {
  fs.cpSync(exampleBundle('digits_cnn'), path.join(dir, 'model'), { recursive: true });
  const server = await serve({ '/': dir });
  const browser = await launchChromium();
  try {
    const page = await openPage(await browser.newContext(), `${server.base}/index.html`, 'body[data-done]');
    return { result: await page.evaluate(() => window.result), requests: server.log.map((r) => r.path) };
  } finally {
    await browser.close();
    await server.close();
  }
}

async function assertRunsLikeNode(dir, label) {
  const { result, requests } = await runBuilt(dir);
  assert.equal(result.error, undefined, `${label}: ${result.error}`);
  assert.equal(result.runtime.package, 'onnxruntime-web');
  const ref = await reference();
  const r = compareOutput({ dtype: 'float32', dims: result.dims, data: Float32Array.from(result.data) },
    { dtype: 'float32', dims: Array.from(ref.dims), data: ref.data }, tolerance('fp32', 'browser'), 1);
  assert.ok(r.passed, `${label} vs onnxruntime-node: ${r.why}`);
  assert.ok(requests.some((p) => p.endsWith('.wasm')), `${label}: the page fetched onnxruntime-web's .wasm (${requests.join(', ')})`);
  return requests;
}

test('vite build: the page imports polyonnx and runs a bundle as onnxruntime-node does (vite emits the .wasm)', async () => {
  fs.writeFileSync(path.join(app, 'index.html'), INDEX('/src/main.js'));
  sh(path.join(app, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn', '--outDir', 'dist-vite'], app);
  const out = path.join(app, 'dist-vite');
  // Two .wasm assets: the CPU build's, and the WebGPU build's (asyncify), which only a load with
  // executionProviders: ['webgpu'] imports (a dynamic import: its own chunk, never fetched here).
  const wasm = fs.readdirSync(path.join(out, 'assets')).filter((f) => f.endsWith('.wasm'));
  const cpu = wasm.filter((f) => /^ort-wasm-simd-threaded-[\w-]+\.wasm$/.test(f));
  assert.equal(cpu.length, 1, `vite emitted the CPU build's .wasm: ${wasm}`);
  const requests = await assertRunsLikeNode(out, 'vite');
  assert.deepEqual(requests.filter((p) => p.endsWith('.wasm')), [`/assets/${cpu[0]}`]);
});

test('esbuild --bundle: the page runs once onnxruntime-web\'s .wasm is copied next to the output', async () => {
  const out = path.join(app, 'dist-esbuild');
  sh(path.join(app, 'node_modules', '.bin', 'esbuild'), ['src/main.js', '--bundle', '--format=esm', '--platform=browser',
    `--outdir=${out}`, '--log-level=warning'], app);
  // The recipe: esbuild leaves new URL('ort-wasm-simd-threaded.wasm', import.meta.url) as it is,
  // so the file goes next to the bundle (or load(url, { wasmPaths }) points elsewhere).
  const dist = path.join(app, 'node_modules', 'onnxruntime-web', 'dist');
  fs.copyFileSync(path.join(dist, 'ort-wasm-simd-threaded.wasm'), path.join(out, 'ort-wasm-simd-threaded.wasm'));
  fs.writeFileSync(path.join(out, 'index.html'), INDEX('./main.js'));
  const requests = await assertRunsLikeNode(out, 'esbuild');
  assert.deepEqual(requests.filter((p) => p.endsWith('.wasm')), ['/ort-wasm-simd-threaded.wasm']);
});
