'use strict';
// The load sequence's guarantees with a backend whose timing the test controls (model.mjs is
// runtime-neutral: the same code serves onnxruntime-node and onnxruntime-web): the sha256 runs
// while the session is built and no model is handed out before it matched; a signal aborts a
// load between its stages and a run before its turn or while it runs, always with E_ABORTED.
// The same behaviours in real Chromium: tests/js/browser-loading.test.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { scratchBundle, exampleBundle } = require('./_helpers');

const modules = async () => ({
  ...(await import('../../js/model.mjs')),
  ...(await import('../../js/bundle-node.mjs')),
  ...(await import('../../js/errors.mjs')),
});

/** A promise and its resolve/reject, to hold a step until the test lets it go. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** A backend that records what it is asked; `hold` makes createSession/run wait for the test. */
function fakeBackend(hold = {}) {
  const runtimes = require('../../shared-schemas/runtimes.json');
  const calls = { created: 0, released: [], runs: 0, running: 0, maxRunning: 0 };
  return {
    calls,
    RUNTIME: 'node',
    runtimeVersion: () => runtimes.node.version,
    async createSession() {
      calls.created += 1;
      const id = calls.created;
      if (hold.create) await hold.create(id);
      return { id };
    },
    async run(session, tensors, fetches) {
      calls.runs += 1;
      calls.running += 1;
      calls.maxRunning = Math.max(calls.maxRunning, calls.running);
      try {
        if (hold.run) await hold.run(calls.runs);
        return Object.fromEntries(fetches.map((n) => [n, { dtype: 'float32', dims: [1, 3], data: new Float32Array(3) }]));
      } finally {
        calls.running -= 1;
      }
    },
    async release(session) { calls.released.push(session.id); },
  };
}

const FEEDS = { x: [[1, 2, 3, 4]] }; // the mlp fixture: x [batch, 4] -> y [batch, 3]

test('an already aborted signal stops load() before it reads a model file or builds a session', async () => {
  const { readBundle, openModel } = await modules();
  const bundle = await readBundle(scratchBundle('mlp'));
  let reads = 0;
  const counted = { ...bundle, readVariantFiles: (...a) => { reads += 1; return bundle.readVariantFiles(...a); } };
  const backend = fakeBackend();
  const controller = new AbortController();
  controller.abort(new Error('user left'));
  await assert.rejects(openModel(counted, { signal: controller.signal }, backend), (e) => {
    assert.equal(e.code, 'E_ABORTED');
    assert.equal(e.stage, 'load');
    assert.match(e.message, /variant 'fp32' of bundle 'mlp' was aborted by its signal \(user left\)/);
    assert.equal(e.cause, controller.signal.reason);
    return true;
  });
  assert.equal(reads, 0);
  assert.equal(backend.calls.created, 0);
});

test('a load aborted while its session is built releases that session and rejects with E_ABORTED', async () => {
  const { readBundle, openModel } = await modules();
  const controller = new AbortController();
  const backend = fakeBackend({ create: async () => { controller.abort(); } });
  const bundle = await readBundle(scratchBundle('mlp'));
  await assert.rejects(openModel(bundle, { signal: controller.signal }, backend), (e) => e.code === 'E_ABORTED');
  assert.equal(backend.calls.created, 1);
  assert.deepEqual(backend.calls.released, [1]);
});

test('a small model that fails its sha256 never reaches the runtime', async () => {
  const { readBundle, openModel, IntegrityError } = await modules();
  const dir = scratchBundle('mlp');
  const file = path.join(dir, 'model.onnx');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 1;
  fs.writeFileSync(file, bytes);
  const backend = fakeBackend();
  await assert.rejects(openModel(await readBundle(dir), {}, backend), IntegrityError);
  assert.equal(backend.calls.created, 0);
});

test('a large model is hashed while the session is built: on a mismatch the session is released and no model is handed out', async () => {
  const { readBundle, openModel, IntegrityError } = await modules();
  const dir = scratchBundle(exampleBundle('text_transformer'));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const file = path.join(dir, manifest.variants.int8.file);
  const good = fs.readFileSync(file);
  assert.ok(good.length > 1 << 20, 'a file above the hash-at-once threshold');
  const { readModelHeader } = await import('../../js/onnx-header.mjs');
  const header = (b) => { try { return JSON.stringify(readModelHeader(b)); } catch { return null; } };
  // A byte whose change leaves the header as it was (a weight), so the session really is built.
  const bad = Buffer.from(good);
  for (let at = good.length >> 1; ; at += 1) {
    bad[at] ^= 1;
    if (header(bad) === header(good)) break;
    bad[at] ^= 1;
  }
  fs.writeFileSync(file, bad);
  // Session creation is held a while, so the hash settles first (as on a machine with a free core).
  let sawBytes = null;
  const backend = fakeBackend({ create: () => new Promise((r) => setTimeout(r, 50)) });
  const create = backend.createSession;
  backend.createSession = (bytes, ...rest) => { sawBytes = Buffer.from(bytes); return create(bytes, ...rest); };
  await assert.rejects(openModel(await readBundle(dir), { variant: 'int8' }, backend), (e) => {
    assert.ok(e instanceof IntegrityError, e.message);
    assert.match(e.message, /model\.int8\.onnx' does not match its sha256/);
    return true;
  });
  assert.equal(backend.calls.created, 1);
  assert.deepEqual(backend.calls.released, [1], 'the session built from the changed bytes was released');
  assert.ok(sawBytes.equals(bad), 'the session was built from exactly the bytes that were hashed');

  // The good file: the same sequence hands out a model.
  fs.writeFileSync(file, good);
  const model = await openModel(await readBundle(dir), { variant: 'int8' }, backend);
  assert.equal(backend.calls.released.length, 1);
  await model.dispose();
});

test('run: an aborted signal rejects at once, a queued run aborted before its turn never runs', async () => {
  const { readBundle, openModel } = await modules();
  const gate = deferred();
  const backend = fakeBackend({ run: (n) => (n === 1 ? gate.promise : undefined) });
  const model = await openModel(await readBundle(scratchBundle('mlp')), {}, backend);
  await assert.rejects(model.run(FEEDS, { signal: AbortSignal.abort() }), (e) => e.code === 'E_ABORTED' && e.stage === 'run');
  assert.equal(backend.calls.runs, 0);

  const first = model.run(FEEDS); // holds the queue until the gate opens
  const controller = new AbortController();
  const second = model.run(FEEDS, { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 10));
  controller.abort();
  await assert.rejects(second, (e) => e.code === 'E_ABORTED');
  gate.resolve();
  await first;
  await model.run(FEEDS);
  assert.equal(backend.calls.runs, 2, 'the aborted run never reached the backend');
  await model.dispose();
});

test('run: a run aborted while the runtime works rejects at once; the next run waits until the runtime is done', async () => {
  const { readBundle, openModel } = await modules();
  const gate = deferred();
  const backend = fakeBackend({ run: (n) => (n === 1 ? gate.promise : undefined) });
  const model = await openModel(await readBundle(scratchBundle('mlp')), {}, backend);
  const controller = new AbortController();
  const busy = model.run(FEEDS, { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(backend.calls.running, 1);
  controller.abort(new Error('too slow'));
  await assert.rejects(busy, (e) => e.code === 'E_ABORTED' && /too slow/.test(e.message));
  const next = model.run(FEEDS);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(backend.calls.runs, 1, 'the next run has not started: the runtime is still busy');
  gate.resolve();
  await next;
  assert.equal(backend.calls.maxRunning, 1, 'never two runs at once on one session');
  await model.dispose();
});

test('run options: signal must be an AbortSignal, and unknown run options are refused', async () => {
  const { readBundle, openModel } = await modules();
  const model = await openModel(await readBundle(scratchBundle('mlp')), {}, fakeBackend());
  await assert.rejects(model.run(FEEDS, { signal: 'stop' }), (e) => e.code === 'E_OPTIONS' && /AbortSignal/.test(e.message));
  await assert.rejects(model.run(FEEDS, { timeout: 5 }), (e) => e.code === 'E_OPTIONS' && /'outputs' and 'signal'/.test(e.message));
  await assert.rejects(openModel(await readBundle(scratchBundle('mlp')), { signal: true }, fakeBackend()),
    (e) => e.code === 'E_OPTIONS' && /AbortSignal/.test(e.message));
  await model.dispose();
});

test('the one-off run() rejects as soon as its signal fires, not when the run inside ONNX Runtime ends', async () => {
  const { readBundle, openModel, runOnce } = await modules();
  const gate = deferred();
  const backend = fakeBackend({ run: () => gate.promise });
  const bundle = await readBundle(scratchBundle('mlp'));
  const controller = new AbortController();
  const call = runOnce((where, options) => openModel(bundle, options, backend), 'mlp', FEEDS, { signal: controller.signal });
  while (backend.calls.running === 0) await new Promise((r) => setImmediate(r));
  controller.abort();
  // The run is still held inside the backend: the call must settle anyway.
  await assert.rejects(call, (e) => e.code === 'E_ABORTED');
  assert.deepEqual(backend.calls.released, [], 'the session is not released under a running run');
  gate.resolve();
  for (let i = 0; i < 100 && !backend.calls.released.length; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(backend.calls.released, [1], 'released once that run ended');
});
