'use strict';
// Browser loading in real Chromium (issue #12 part 3): load(url, { onProgress, cache, signal,
// fetch }). Requests are counted by the server (every answer is Cache-Control: no-store, so the
// browser's HTTP cache hides none); outputs are compared with onnxruntime-node on the same model
// and feeds, within the browser tolerance of shared-schemas/tolerances.json.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, fixture, exampleBundle, tolerance, compareOutput } = require('./_helpers');
const { serve, launchChromium, openPage } = require('./_chromium');

const PAGE = `<!doctype html><meta charset="utf-8"><title>polyonnx loading test</title>
<script type="importmap">{ "imports": { "polyonnx": "/pkg/js/browser.mjs", "onnxruntime-web/wasm": "/ort/ort.wasm.min.mjs", "onnxruntime-web/webgpu": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">
  import * as polyonnx from 'polyonnx';
  window.polyonnx = polyonnx;
  // Errors cross page.evaluate as plain objects: the code and message are what the tests check.
  window.caught = (e) => ({ error: { code: e && e.code, name: e && e.name, message: String(e && e.message), details: e && e.details } });
  document.body.dataset.ready = '1';
</script><body></body>`;

// The same page, counting the Workers it starts (polyonnx hashes a large file in one; onnxruntime-web
// starts none here: the page is not cross-origin isolated, so wasm runs 1 thread), and a twin whose
// CSP refuses every worker (the sha256 then runs on the page's thread) and records the refusals.
const COUNTING = `<script>
  const Native = window.Worker;
  window.workersMade = 0;
  window.Worker = class extends Native { constructor(...a) { super(...a); window.workersMade += 1; } };
  window.refused = [];
  document.addEventListener('securitypolicyviolation', (e) => window.refused.push(e.effectiveDirective));
</script>`;
const COUNTING_PAGE = PAGE.replace('<script type="importmap">', `${COUNTING}<script type="importmap">`);
const NO_WORKERS_PAGE = COUNTING_PAGE.replace('<title>', `<meta http-equiv="Content-Security-Policy" content="worker-src 'none'"><title>`);

const KEY = ['x-polyonnx-key', 'sesame'];

let server;
let browser;
let scratch;

/** Copies the tests may change: digits_cnn (twice, the second under another name) and extdata. */
function makeScratch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-browser-loading-'));
  fs.cpSync(exampleBundle('digits_cnn'), path.join(dir, 'digits'), { recursive: true });
  fs.cpSync(exampleBundle('digits_cnn'), path.join(dir, 'digits-moved'), { recursive: true });
  fs.cpSync(fixture('extdata'), path.join(dir, 'extdata'), { recursive: true });
  // A model file over the 1 MiB that is hashed at once (text_transformer int8, 7.8 MB), and a copy
  // with one byte changed (same size): the sha256 alone tells them apart.
  const big = path.join(dir, 'big');
  fs.mkdirSync(big);
  const tt = exampleBundle('text_transformer');
  const ttManifest = JSON.parse(fs.readFileSync(path.join(tt, 'polyonnx.json'), 'utf8'));
  ttManifest.variants = { int8: ttManifest.variants.int8 };
  ttManifest.default_variant = 'int8';
  fs.writeFileSync(path.join(big, 'polyonnx.json'), JSON.stringify(ttManifest));
  fs.copyFileSync(path.join(tt, ttManifest.variants.int8.file), path.join(big, ttManifest.variants.int8.file));
  fs.cpSync(big, path.join(dir, 'big-changed'), { recursive: true });
  const changed = path.join(dir, 'big-changed', ttManifest.variants.int8.file);
  const data = fs.readFileSync(changed);
  data[data.length - 100] ^= 0x01; // deep in the weights: the file still parses
  fs.writeFileSync(changed, data);
  // The fixture is exported for python and node only; its ops are plain ONNX that onnxruntime-web
  // runs, and the browser is asked to load it for its external data file.
  const m = path.join(dir, 'extdata', 'polyonnx.json');
  const manifest = JSON.parse(fs.readFileSync(m, 'utf8'));
  manifest.variants.fp32.runtimes = [...new Set([...manifest.variants.fp32.runtimes, 'web'])];
  fs.writeFileSync(m, JSON.stringify(manifest));
  return dir;
}

test.before(async () => {
  scratch = makeScratch();
  server = await serve({
    '/pkg/js/': path.join(ROOT, 'js'),
    '/pkg/shared-schemas/': path.join(ROOT, 'shared-schemas'),
    '/pkg/package.json': path.join(ROOT, 'package.json'), // a file route: the prefix is the whole path
    '/ort/': path.join(ROOT, 'node_modules', 'onnxruntime-web', 'dist'),
    '/b/': scratch,
    '/private/': { dir: scratch, header: KEY },
  }, { '/page.html': PAGE, '/counting.html': COUNTING_PAGE, '/no-workers.html': NO_WORKERS_PAGE });
  browser = await launchChromium();
});

test.after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

function manifestOf(name) {
  return JSON.parse(fs.readFileSync(path.join(scratch, name, 'polyonnx.json'), 'utf8'));
}

/** Seeded pixels for digits_cnn (batch 2) and onnxruntime-node's logits for them. */
async function digitsReference(variant = 'fp32') {
  const ort = require('onnxruntime-node');
  const manifest = manifestOf('digits');
  let seed = 7;
  const pixels = Array.from({ length: 2 * 64 }, () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; });
  const session = await ort.InferenceSession.create(path.join(scratch, 'digits', manifest.variants[variant].file));
  try {
    const out = await session.run({ pixels: new ort.Tensor('float32', Float32Array.from(pixels), [2, 1, 8, 8]) });
    return { feeds: { pixels: { data: pixels, dims: [2, 1, 8, 8] } }, logits: out.logits };
  } finally {
    await session.release();
  }
}

function assertMatchesReference(got, ref, label) {
  const r = compareOutput({ dtype: 'float32', dims: got.dims, data: Float32Array.from(got.data) },
    { dtype: 'float32', dims: Array.from(ref.dims), data: ref.data }, tolerance('fp32', 'browser'), 1);
  assert.ok(r.passed, `${label}: ${r.why}`);
}

/** In the page: load `url` with `options` (onProgress recorded), run `feeds`, dispose. */
function loadAndRun(page, url, options = {}, feeds = null) {
  return page.evaluate(async ({ url, options, feeds }) => {
    const progress = [];
    try {
      const model = await window.polyonnx.load(url, { ...options, onProgress: (p) => progress.push(p) });
      const info = model.info();
      let logits = null;
      if (feeds) {
        const out = await model.run({ pixels: { data: Float32Array.from(feeds.pixels.data), dims: feeds.pixels.dims } });
        logits = { dims: out.logits.dims, data: Array.from(out.logits.data) };
      }
      await model.dispose();
      return { progress, files: info.files, variant: info.variant, logits };
    } catch (e) {
      return { progress, ...window.caught(e) };
    }
  }, { url, options, feeds });
}

test('a first load fetches each model file once, reports progress in bytes up to the total, and answers as onnxruntime-node does', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    const ref = await digitsReference();
    server.clear();
    const got = await loadAndRun(page, '/b/digits/', {}, ref.feeds);
    assert.equal(got.error, undefined, JSON.stringify(got.error));
    assert.equal(server.count('/b/digits/polyonnx.json'), 1);
    assert.equal(server.count('/b/digits/model.onnx'), 1);
    assertMatchesReference(got.logits, ref.logits, 'digits_cnn fp32 in Chromium vs onnxruntime-node');
    const { bytes } = manifestOf('digits').variants.fp32;
    assert.ok(got.progress.length >= 1);
    assert.ok(got.progress.every((p, i) => p.total === bytes && p.file === 'model.onnx'
      && p.loaded > (i ? got.progress[i - 1].loaded : 0)), JSON.stringify(got.progress));
    assert.equal(got.progress.at(-1).loaded, bytes);
    assert.deepEqual(got.files, { cache: 'polyonnx', from: { 'model.onnx': 'network' }, stored: ['model.onnx'], problems: [] });

    // A model with an external data file: one total over both files, each file named as it arrives.
    const ext = await loadAndRun(page, '/b/extdata/');
    assert.equal(ext.error, undefined, JSON.stringify(ext.error));
    const v = manifestOf('extdata').variants.fp32;
    const total = v.bytes + v.external_data[0].bytes;
    assert.ok(ext.progress.every((p, i) => p.total === total && (!i || p.loaded > ext.progress[i - 1].loaded)));
    assert.deepEqual([...new Set(ext.progress.map((p) => p.file))].sort(), ['model.onnx', 'model.onnx.data']);
    assert.equal(ext.progress.at(-1).loaded, total);
    assert.equal(server.count('/b/extdata/model.onnx.data'), 1);
  } finally {
    await context.close();
  }
});

test('a second load of the same bundle makes no model-file request and still checks sha256: a corrupted cached copy is evicted and fetched again', async () => {
  const context = await browser.newContext(); // one origin's Cache Storage, shared by its pages
  try {
    const ref = await digitsReference();
    const first = await openPage(context, `${server.base}/page.html`);
    assert.equal((await loadAndRun(first, '/b/digits/')).error, undefined);
    await first.close();

    const page = await openPage(context, `${server.base}/page.html`);
    server.clear();
    const second = await loadAndRun(page, '/b/digits/', {}, ref.feeds);
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.equal(server.count('/b/digits/polyonnx.json'), 1, 'the manifest is always fetched');
    assert.equal(server.count('/b/digits/model.onnx'), 0, 'the model comes from the Cache API');
    assert.deepEqual(second.files.from, { 'model.onnx': 'cache' });
    assert.equal(second.progress.at(-1).loaded, manifestOf('digits').variants.fp32.bytes, 'progress counts cached bytes too');
    assertMatchesReference(second.logits, ref.logits, 'from the cache');

    // The key is the sha256, not the URL: the same bytes under another folder hit; the int8
    // variant (other bytes, another sha256) misses.
    server.clear();
    const moved = await loadAndRun(page, '/b/digits-moved/');
    assert.equal(moved.error, undefined);
    assert.equal(server.count('/b/digits-moved/model.onnx'), 0);
    const int8 = await loadAndRun(page, '/b/digits/', { variant: 'int8' });
    assert.equal(int8.error, undefined);
    assert.equal(server.count('/b/digits/model.int8.onnx'), 1);

    // One changed byte in the cached copy (same size): the load does not trust it. It is evicted,
    // the file fetched again and checked, and the good copy stored in its place.
    const { sha256, bytes } = manifestOf('digits').variants.fp32;
    await page.evaluate((sha) => { window.wantedSha = sha; }, sha256);
    const changed = await page.evaluate(async () => {
      const store = await caches.open('polyonnx');
      const key = (await store.keys()).find((k) => k.url.endsWith('/sha256/' + window.wantedSha));
      const data = new Uint8Array(await (await store.match(key)).arrayBuffer());
      data[data.length >> 1] ^= 0xff;
      await store.put(key, new Response(data));
      return data.length;
    });
    assert.equal(changed, bytes);
    server.clear();
    const healed = await loadAndRun(page, '/b/digits/', {}, ref.feeds);
    assert.equal(healed.error, undefined, JSON.stringify(healed.error));
    assert.equal(server.count('/b/digits/model.onnx'), 1, 'the tampered cached copy was refused and the file fetched again');
    assert.equal(healed.files.refetched, 'model.onnx');
    assert.deepEqual(healed.files.stored, ['model.onnx']);
    assertMatchesReference(healed.logits, ref.logits, 'after the refetch');
    const cachedSha = await page.evaluate(async () => {
      const store = await caches.open('polyonnx');
      const key = (await store.keys()).find((k) => k.url.endsWith('/sha256/' + window.wantedSha));
      const digest = await crypto.subtle.digest('SHA-256', await (await store.match(key)).arrayBuffer());
      return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
    });
    assert.equal(cachedSha, sha256, 'the cache holds the good bytes again');
    assert.equal(cachedSha, crypto.createHash('sha256').update(fs.readFileSync(path.join(scratch, 'digits', 'model.onnx'))).digest('hex'));

    // cache: false neither reads nor writes the cache; a named cache is another store.
    server.clear();
    const off = await loadAndRun(page, '/b/digits/', { cache: false });
    assert.equal(server.count('/b/digits/model.onnx'), 1);
    assert.deepEqual(off.files, { cache: null, from: { 'model.onnx': 'network' }, stored: [], problems: [] });
    const named = await loadAndRun(page, '/b/digits/', { cache: 'my-app-models' });
    assert.equal(server.count('/b/digits/model.onnx'), 2);
    assert.equal(named.files.cache, 'my-app-models');
    assert.ok(await page.evaluate(() => caches.has('my-app-models')));
  } finally {
    await context.close();
  }
});

test('a signal aborts a load (before any request, or mid-download) and a run, with E_ABORTED', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    const ref = await digitsReference();
    server.clear();
    const before = await page.evaluate(async () => {
      try {
        await window.polyonnx.load('/b/digits/', { signal: AbortSignal.abort(new Error('user left')) });
        return {};
      } catch (e) {
        return window.caught(e);
      }
    });
    assert.equal(before.error.code, 'E_ABORTED', JSON.stringify(before));
    assert.match(before.error.message, /aborted by its signal \(user left\)/);
    assert.equal(server.log.length, 0, 'an aborted signal makes no request at all');

    // Aborted from the first progress call: the download stops, no model is handed out.
    const midway = await page.evaluate(async () => {
      const controller = new AbortController();
      try {
        await window.polyonnx.load('/b/digits-moved/', { cache: false, signal: controller.signal, onProgress: () => controller.abort() });
        return {};
      } catch (e) {
        return window.caught(e);
      }
    });
    assert.equal(midway.error.code, 'E_ABORTED', JSON.stringify(midway));

    const runs = await page.evaluate(async (feeds) => {
      const model = await window.polyonnx.load('/b/digits/');
      const input = { pixels: { data: Float32Array.from(feeds.pixels.data), dims: feeds.pixels.dims } };
      const outcome = (p) => p.then(() => 'ran', (e) => e.code);
      const already = await outcome(model.run(input, { signal: AbortSignal.abort() }));
      // The first run starts at once (the model is idle) and is aborted while onnxruntime-web has
      // it: it rejects, its result dropped. The second, aborted while it waits its turn, never runs.
      const c1 = new AbortController();
      const c2 = new AbortController();
      const p1 = outcome(model.run(input, { signal: c1.signal }));
      const p2 = outcome(model.run(input, { signal: c2.signal }));
      c1.abort();
      c2.abort();
      const [r1, r2] = await Promise.all([p1, p2]);
      const after = await model.run(input);
      const info = model.info();
      await model.dispose();
      return { already, r1, r2, runs: info.runs, after: { dims: after.logits.dims, data: Array.from(after.logits.data) } };
    }, ref.feeds);
    assert.deepEqual([runs.already, runs.r1, runs.r2], ['E_ABORTED', 'E_ABORTED', 'E_ABORTED']);
    assert.equal(runs.runs, 2, 'the started run and the last one ran; the one aborted before its turn never did');
    assertMatchesReference(runs.after, ref.logits, 'a run after aborted ones');
  } finally {
    await context.close();
  }
});

test("a caller's fetch is used for every request, the manifest included (a header the server requires)", async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    const refused = await loadAndRun(page, '/private/digits/', { cache: false });
    assert.equal(refused.error.code, 'E_MANIFEST');
    assert.match(refused.error.message, /HTTP 403.*pass load\(url, \{ fetch \}\)/);
    server.clear();
    const got = await page.evaluate(async ([name, value]) => {
      const seen = [];
      const fetchWithKey = (url, init) => { seen.push(String(url)); return fetch(url, { ...init, headers: { [name]: value } }); };
      const model = await window.polyonnx.load('/private/digits/', { fetch: fetchWithKey, cache: false });
      await model.dispose();
      return seen.map((u) => new URL(u).pathname);
    }, KEY);
    assert.deepEqual(got, ['/private/digits/polyonnx.json', '/private/digits/model.onnx']);
    const asked = server.log.filter((r) => r.path.startsWith('/private/'));
    assert.ok(asked.length === 2 && asked.every((r) => r.headers[KEY[0]] === KEY[1]), JSON.stringify(server.log.map((r) => r.path)));
  } finally {
    await context.close();
  }
});

test('unknown or ill-typed load options fail before any request', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    server.clear();
    const got = await page.evaluate(async () => {
      const codes = [];
      for (const options of [{ onprogress: () => {} }, { cache: 3 }, { fetch: 'fetch' }, { onProgress: true }, { signal: {} }]) {
        try {
          await window.polyonnx.load('/b/digits/', options);
          codes.push('loaded');
        } catch (e) {
          codes.push(`${e.code}: ${e.message}`);
        }
      }
      return codes;
    });
    assert.equal(got.length, 5);
    for (const c of got) assert.match(c, /^E_OPTIONS: load: (unknown option|option)/);
    assert.match(got[0], /unknown option 'onprogress'.*onProgress/);
    assert.equal(server.log.length, 0);
  } finally {
    await context.close();
  }
});

test('a large file is hashed in one worker per page while the session is built, and a changed byte is refused; a CSP without workers hashes on the page thread', async () => {
  const ort = require('onnxruntime-node');
  const manifest = manifestOf('big');
  const file = path.join(scratch, 'big', manifest.variants.int8.file);
  assert.ok(manifest.variants.int8.bytes > (1 << 20), 'the file must be over the at-once limit for this test to mean anything');
  const ids = new BigInt64Array(16).map((_, i) => BigInt((i * 37) % 500));
  const feedName = manifest.inputs[0].name;
  const session = await ort.InferenceSession.create(file);
  let reference;
  try {
    const out = await session.run({ [feedName]: new ort.Tensor('int64', ids, [1, 16]) });
    reference = out[session.outputNames[0]];
  } finally {
    await session.release();
  }
  const loadBoth = (page) => page.evaluate(async ({ feedName, ids }) => {
    const feeds = { [feedName]: { data: BigInt64Array.from(ids.map(BigInt)), dims: [1, 16] } };
    const one = async (url) => {
      try {
        const model = await window.polyonnx.load(url, { cache: false });
        const out = await model.run(feeds);
        await model.dispose();
        const first = Object.values(out)[0];
        return { dims: first.dims, data: Array.from(first.data) };
      } catch (e) {
        return window.caught(e);
      }
    };
    const good = await one('/b/big/');
    const changed = await one('/b/big-changed/');
    const again = await one('/b/big/');
    return { good, changed, again, workersMade: window.workersMade, refused: window.refused };
  }, { feedName, ids: Array.from(ids, Number) });
  const context = await browser.newContext();
  try {
    for (const [pageName, csp] of [['counting.html', false], ['no-workers.html', true]]) {
      const got = await loadBoth(await openPage(context, `${server.base}/${pageName}`));
      for (const side of ['good', 'again']) {
        assert.equal(got[side].error, undefined, `${pageName} ${side}: ${JSON.stringify(got[side].error)}`);
        const r = compareOutput({ dtype: 'float32', dims: got[side].dims, data: Float32Array.from(got[side].data) },
          { dtype: 'float32', dims: Array.from(reference.dims), data: reference.data }, tolerance('int8', 'browser'), 1);
        assert.ok(r.passed, `${pageName} ${side}: ${r.why}`);
      }
      assert.equal(got.changed.error && got.changed.error.name, 'IntegrityError', `${pageName}: ${JSON.stringify(got.changed)}`);
      assert.match(got.changed.error.message, /does not match its sha256 in polyonnx\.json/);
      assert.equal(got.changed.error.details.expected, manifest.variants.int8.sha256);
      assert.equal(got.changed.error.details.found,
        crypto.createHash('sha256').update(fs.readFileSync(path.join(scratch, 'big-changed', manifest.variants.int8.file))).digest('hex'));
      // One worker for the page's three large files; under the CSP, one attempt (refused, and the
      // three sha256 computed on the page's thread instead), not one per file.
      assert.equal(got.workersMade, 1, pageName);
      assert.equal(got.refused.includes('worker-src'), csp, `CSP refusals seen: ${JSON.stringify(got.refused)}`);
    }
  } finally {
    await context.close();
  }
});

test('a typed array run again after it was refilled in place gives the new answer (onnxruntime-web Tensors are reused per array)', async () => {
  const ort = require('onnxruntime-node');
  const manifest = manifestOf('digits');
  const seeded = (seed) => Array.from({ length: 64 }, () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; });
  const pixelSets = [seeded(3), seeded(11), seeded(3)];
  const session = await ort.InferenceSession.create(path.join(scratch, 'digits', manifest.variants.fp32.file));
  const refs = [];
  try {
    for (const p of pixelSets) refs.push((await session.run({ pixels: new ort.Tensor('float32', Float32Array.from(p), [1, 1, 8, 8]) })).logits);
  } finally {
    await session.release();
  }
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    const got = await page.evaluate(async (sets) => {
      const model = await window.polyonnx.load('/b/digits/', { cache: false });
      const twin = await window.polyonnx.load('/b/digits/', { variant: 'int8', cache: false });
      const data = new Float32Array(64);
      const outs = [];
      for (const p of sets) {
        data.set(p); // the same array, refilled
        const out = await model.run({ pixels: { data, dims: [1, 1, 8, 8] } });
        outs.push({ dims: out.logits.dims, data: Array.from(out.logits.data) });
        await twin.run({ pixels: { data, dims: [1, 1, 8, 8] } }); // the same array through another session
      }
      await model.dispose();
      await twin.dispose();
      return outs;
    }, pixelSets);
    got.forEach((out, i) => assertMatchesReference(out, refs[i], `pixel set ${i}`));
    assert.notDeepEqual(got[0].data, got[1].data, 'a refilled array is not answered from the first run');
  } finally {
    await context.close();
  }
});

test("webgpu that cannot start (navigator.gpu without an adapter) is E_PROVIDER, and fallback 'cpu' loads on the CPU, as in Node", async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, `${server.base}/page.html`);
    const got = await page.evaluate(async () => {
      const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
      const attempt = async (options) => {
        try {
          const model = await window.polyonnx.load('/b/digits/', { cache: false, ...options });
          const info = model.info();
          await model.dispose();
          return { providers: info.providers, dropped: info.providersDropped };
        } catch (e) {
          return window.caught(e);
        }
      };
      return { gpu: Boolean(navigator.gpu), adapter: Boolean(adapter),
        strict: await attempt({ providers: ['webgpu'] }), fallback: await attempt({ providers: ['webgpu'], fallback: 'cpu' }) };
    });
    if (got.adapter) {
      // A browser with a GPU adapter runs it: both loads are on webgpu, nothing dropped.
      assert.deepEqual(got.strict.providers, ['webgpu']);
      assert.deepEqual(got.fallback.providers, ['webgpu']);
      return;
    }
    assert.equal(got.gpu, true, 'this Chromium has navigator.gpu (the case that used to be E_SESSION)');
    assert.equal(got.strict.error.code, 'E_PROVIDER', JSON.stringify(got.strict));
    assert.match(got.strict.error.message, /could not start execution provider\(s\) 'webgpu'/);
    assert.deepEqual(got.fallback.providers, ['cpu']);
    assert.equal(got.fallback.dropped.length, 1);
    assert.equal(got.fallback.dropped[0].provider, 'webgpu');
  } finally {
    await context.close();
  }
});
