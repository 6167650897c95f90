'use strict';
// Hostile inputs (issue #11): each ends in a typed polyonnx error, never a hang, a foreign
// exception or memory the process keeps. Bundles here are built from the shared minimal manifest
// with made-up model bytes: nothing reaches onnxruntime, so no fixtures are needed.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ManifestError, IntegrityError } = require('../../js/errors.mjs');
const { readBundle, _readVariantFiles } = require('../../js/bundle-node.mjs');
const { ROOT } = require('./_helpers');

const MINIMAL = path.join(ROOT, 'shared-schemas', 'examples', 'valid', 'minimal.json');

/** A bundle folder whose fp32 variant records `model` (bytes) as model.onnx. */
function tinyBundle(model = Buffer.from('not really onnx, but hashed and sized like a model')) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-hostile-'));
  const m = JSON.parse(fs.readFileSync(MINIMAL, 'utf8'));
  m.variants.fp32.bytes = model.length;
  m.variants.fp32.sha256 = crypto.createHash('sha256').update(model).digest('hex');
  fs.writeFileSync(path.join(dir, 'polyonnx.json'), JSON.stringify(m, null, 2));
  fs.writeFileSync(path.join(dir, 'model.onnx'), model);
  return { dir, manifest: m };
}

function mkfifo(p) {
  require('node:child_process').execFileSync('mkfifo', [p]);
}

/** Settles with the promise, or rejects after `ms` (a hang is a failure, not a stuck test). */
function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Unblock anything stuck opening the FIFO for reading (so a failing test does not hang the run). */
function releaseFifo(p) {
  try {
    fs.closeSync(fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
  } catch { /* nobody was reading: ENXIO */ }
}

// --- 8. load() checks file type and size before reading -------------------------------------------
test('a FIFO polyonnx.json is refused with a ManifestError, not read forever', async () => {
  const { dir } = tinyBundle();
  const m = path.join(dir, 'polyonnx.json');
  fs.unlinkSync(m);
  mkfifo(m);
  try {
    await assert.rejects(within(readBundle(dir), 3000, 'readBundle'), (e) => {
      assert.ok(e instanceof ManifestError, e.stack);
      assert.match(e.message, /not a regular file/);
      return true;
    });
  } finally {
    releaseFifo(m);
  }
});

test('polyonnx.json that is not UTF-8 is a ManifestError, as in Python (not silently replaced)', async () => {
  const { dir } = tinyBundle();
  const m = path.join(dir, 'polyonnx.json');
  fs.writeFileSync(m, Buffer.from(fs.readFileSync(m, 'utf8').replace('"tiny_mlp"', '"tiny_XXmlp"').replace('XX', '\u0000\u0000'))
    .map((b) => (b === 0 ? 0xff : b)));
  await assert.rejects(readBundle(dir), (e) => e instanceof ManifestError && /not UTF-8/.test(e.message));
});

test('a UTF-16 polyonnx.json is a ManifestError', async () => {
  const { dir } = tinyBundle();
  const m = path.join(dir, 'polyonnx.json');
  const text = fs.readFileSync(m, 'utf8');
  fs.writeFileSync(m, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));
  await assert.rejects(readBundle(dir), (e) => e instanceof ManifestError && e.code === 'E_MANIFEST');
});

test('a model file that is a FIFO is refused with an IntegrityError, never opened for reading', async () => {
  const { dir } = tinyBundle();
  const model = path.join(dir, 'model.onnx');
  fs.unlinkSync(model);
  mkfifo(model);
  try {
    const bundle = await readBundle(dir);
    await assert.rejects(within(bundle.readVariantFiles('fp32'), 3000, 'readVariantFiles'), (e) => {
      assert.ok(e instanceof IntegrityError, e.stack);
      assert.match(e.message, /not a regular file/);
      return true;
    });
  } finally {
    releaseFifo(model);
  }
});

test('a model file larger than the manifest records is refused before it is read', async () => {
  const { dir, manifest } = tinyBundle();
  const model = path.join(dir, 'model.onnx');
  fs.appendFileSync(model, Buffer.alloc(1 << 20));
  await assert.rejects(_readVariantFiles(dir, manifest, 'fp32'), (e) => {
    assert.ok(e instanceof IntegrityError);
    assert.equal(e.details.found, manifest.variants.fp32.bytes + (1 << 20));
    return true;
  });
});

test('a model file exactly as recorded still loads (the checks refuse only what they should)', async () => {
  const model = Buffer.from('exactly these bytes');
  const { dir, manifest } = tinyBundle(model);
  const { modelBytes } = await _readVariantFiles(dir, manifest, 'fp32');
  assert.deepEqual(Buffer.from(modelBytes), model);
});

test('browser load: a response whose Content-Length differs from the manifest is refused before its body is read', async () => {
  const { fetchBundle } = await import('../../js/bundle-web.mjs');
  const model = Buffer.from('model bytes');
  const { manifest } = tinyBundle(model);
  let bodyRead = false;
  const saved = globalThis.fetch;
  globalThis.fetch = async (url) => {
    if (String(url).endsWith('polyonnx.json')) return new Response(JSON.stringify(manifest));
    const body = new ReadableStream({ pull(c) { bodyRead = true; c.enqueue(new Uint8Array(1 << 20)); } }, { highWaterMark: 0 });
    return new Response(body, { headers: { 'Content-Length': String(1 << 30) } });
  };
  try {
    const bundle = await fetchBundle('http://127.0.0.1:1/b/');
    await assert.rejects(within(bundle.readVariantFiles('fp32'), 3000, 'readVariantFiles'), (e) => e instanceof Error && e.code === 'E_INTEGRITY'
      && /1073741824 bytes/.test(e.message));
    assert.equal(bodyRead, false);
  } finally {
    globalThis.fetch = saved;
  }
});

test('browser load: a body longer than the manifest records is cut off at the recorded size + 1', async () => {
  const { fetchBundle } = await import('../../js/bundle-web.mjs');
  const { manifest } = tinyBundle(Buffer.from('model bytes'));
  let served = 0;
  const saved = globalThis.fetch;
  globalThis.fetch = async (url) => {
    if (String(url).endsWith('polyonnx.json')) return new Response(JSON.stringify(manifest));
    // No Content-Length (chunked): an endless body must not be read whole.
    const body = new ReadableStream({ pull(c) { served += 1 << 16; c.enqueue(new Uint8Array(1 << 16)); } });
    return new Response(body);
  };
  try {
    const bundle = await fetchBundle('http://127.0.0.1:1/b/');
    await assert.rejects(within(bundle.readVariantFiles('fp32'), 3000, 'readVariantFiles'),
      (e) => e.code === 'E_INTEGRITY' && /more than/.test(e.message));
    assert.ok(served < 1 << 20, `read ${served} bytes of an endless body`);
  } finally {
    globalThis.fetch = saved;
  }
});

// --- 5. pool timers and threads within what Node and the machine can do --------------------------
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires after ~1 ms for anything larger (TimeoutOverflowWarning)

test('createPool refuses timeoutMs and maxDelayMs that a Node timer cannot hold, before reading the bundle', async () => {
  const { createPool } = require('../../js/pool.mjs');
  const { dir } = tinyBundle();
  for (const options of [{ timeoutMs: 3e9 }, { timeoutMs: MAX_TIMER_MS + 1 }, { maxDelayMs: 1e10 }, { maxDelayMs: MAX_TIMER_MS + 1 }]) {
    await assert.rejects(within(createPool(dir, options), 5000, JSON.stringify(options)), (e) => {
      assert.equal(e.code, 'E_OPTIONS', `${JSON.stringify(options)}: ${e.stack}`);
      assert.match(e.message, new RegExp(`${Object.keys(options)[0]}.*${MAX_TIMER_MS}`));
      return true;
    });
  }
});

test('createPool refuses intraOpNumThreads beyond 4 threads per core, naming the limit', async () => {
  const { createPool } = require('../../js/pool.mjs');
  const { dir } = tinyBundle();
  const limit = 4 * require('node:os').availableParallelism();
  await assert.rejects(createPool(dir, { intraOpNumThreads: limit + 1, workers: 1 }), (e) => {
    assert.equal(e.code, 'E_OPTIONS', e.stack);
    assert.match(e.message, new RegExp(`intraOpNumThreads.*${limit + 1}`));
    assert.match(e.fix, new RegExp(`${limit}`));
    return true;
  });
});

test('the largest timer Node holds and Infinity (no timeout) pass the option check', () => {
  const { _checkPoolOptions } = require('../../js/pool.mjs');
  const { pool } = _checkPoolOptions({ timeoutMs: MAX_TIMER_MS, maxDelayMs: MAX_TIMER_MS });
  assert.equal(pool.timeoutMs, MAX_TIMER_MS);
  assert.equal(_checkPoolOptions({ timeoutMs: Infinity }).pool.timeoutMs, Infinity);
  assert.equal(_checkPoolOptions({ timeoutMs: 0 }).pool.timeoutMs, Infinity);
});

// --- 12. wire edge cases -------------------------------------------------------------------------
const wire = require('../../js/wire.mjs');

test('a tensor dtype named after an Object.prototype member is a WireError, not a TypeError', () => {
  for (const dtype of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
    assert.throws(() => wire.decodeTensor({ dtype, shape: [1], data: new Uint8Array(4) }),
      (e) => e instanceof wire.WireError && e.code === 'E_WIRE' && /unknown tensor dtype/.test(e.message), dtype);
    assert.throws(() => wire.encodeTensor({ dtype, dims: [1], data: new Float32Array(1) }),
      (e) => e instanceof wire.WireError && e.code === 'E_WIRE', dtype);
  }
  assert.throws(() => wire.decodeTensor({ dtype: ['float32'], shape: [1], data: new Uint8Array(4) }),
    (e) => e instanceof wire.WireError, 'an array that stringifies to a dtype name');
});

/** False when `frame` holds a UTF-8-encoded surrogate (ED A0..BF ..): bytes Python's decoder refuses. */
function strictlyDecodes(frame) {
  for (let i = 0; i + 1 < frame.length; i++) {
    if (frame[i] === 0xed && frame[i + 1] >= 0xa0 && frame[i + 1] <= 0xbf) return false;
  }
  return true;
}

test('lone surrogates never reach the wire as invalid UTF-8: messages get U+FFFD, string tensors a WireError', () => {
  const frame = wire.encodeFrame({ id: 1, ok: false, error: { message: 'bad name x\ud800y', details: { k: ['\udfff'] } } });
  assert.ok(strictlyDecodes(frame));
  const back = wire.decodeFrame(frame);
  assert.equal(back.error.message, 'bad name x\ufffdy');
  assert.deepEqual(back.error.details.k, ['\ufffd']);
  assert.throws(() => wire.encodeTensor({ dtype: 'string', dims: [2], data: ['ok', 'a\ud800'] }),
    (e) => e instanceof wire.WireError && /element 1/.test(e.message));
  // A well-formed pair is kept as it is.
  assert.equal(wire.decodeFrame(wire.encodeFrame({ s: 'pair \ud83d\ude00' })).s, 'pair \ud83d\ude00');
});

function runWorker(input) {
  const { spawnSync } = require('node:child_process');
  return spawnSync(process.execPath, [path.join(ROOT, 'js', 'worker.mjs')], { input, timeout: 30000 });
}

test('the worker reports a stream that ends inside a frame instead of exiting 0 silently', () => {
  const body = wire.pack({ id: 7, op: 'info' });
  const frame = Buffer.concat([Buffer.from([body.length + 10, 0, 0, 0]), body]); // 10 bytes short
  const r = runWorker(frame);
  assert.equal(r.signal, null, 'the worker hung');
  assert.notEqual(r.status, 0, `exit ${r.status}; stderr: ${r.stderr}`);
  assert.match(r.stderr.toString(), /ended inside a frame/);
  const reply = wire.decodeFrame(r.stdout);
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'E_WIRE');
});

test('the worker answers a request with an Object.prototype dtype with E_WIRE, not E_INTERNAL', () => {
  const frames = [wire.encodeFrame({ id: 1, op: 'echo', tensors: { t: { dtype: 'constructor', shape: [1], data: new Uint8Array(4) } } })];
  const r = runWorker(Buffer.concat(frames));
  assert.equal(r.status, 0, r.stderr.toString());
  const reply = wire.decodeFrame(r.stdout);
  assert.equal(reply.id, 1);
  assert.equal(reply.error.code, 'E_WIRE', JSON.stringify(reply.error));
});

// --- 14. feeds a pool is handed: shared memory, views over big buffers, arrays changed later ------
async function mlpPool(options = {}) {
  const { fixture } = require('./_helpers');
  const { createPool } = require('../../js/pool.mjs');
  return createPool(fixture('mlp'), { workers: 1, intraOpNumThreads: 1, ...options });
}

/** Every byte each postMessage to the pool's workers carries in its feeds. */
function recordFeedBytes(pool) {
  const sent = [];
  for (const slot of pool._slots) {
    const post = slot.worker.postMessage.bind(slot.worker);
    slot.worker.postMessage = (msg, transfer) => {
      if (msg.type === 'run') {
        sent.push(msg.parts.flatMap((p) => Object.values(p)).reduce((s, t) => s + t.data.buffer.byteLength, 0));
      }
      return post(msg, transfer);
    };
  }
  return sent;
}

test('pool.run with a small view over a large buffer sends the view, not the buffer', async () => {
  const pool = await mlpPool();
  try {
    const sent = recordFeedBytes(pool);
    const big = new Float32Array(16 * 1024 * 1024); // 64 MB
    const view = big.subarray(1000, 1008);
    view.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const got = await pool.run({ x: { data: view, dims: [2, 4] } });
    const same = await pool.run({ x: { data: Float32Array.from(view), dims: [2, 4] } });
    assert.deepEqual(Array.from(got.y.data), Array.from(same.y.data));
    assert.equal(sent[0], view.byteLength, `sent ${sent[0]} bytes for a ${view.byteLength}-byte view`);
  } finally {
    await pool.close();
  }
});

test('pool.run with a SharedArrayBuffer feed runs as the same values in an ArrayBuffer do', async () => {
  const pool = await mlpPool();
  try {
    const shared = new Float32Array(new SharedArrayBuffer(8 * 4));
    shared.set([0.5, -1, 2, 3, 4, -5, 6, 0.25]);
    const got = await pool.run({ x: { data: shared, dims: [2, 4] } });
    const same = await pool.run({ x: { data: Float32Array.from(shared), dims: [2, 4] } });
    assert.deepEqual(Array.from(got.y.data), Array.from(same.y.data));
  } finally {
    await pool.close();
  }
});

test('pool.run runs the values the feed held when run() was called, not later changes', async () => {
  const pool = await mlpPool({ maxDelayMs: 50, maxBatch: 8 });
  try {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const original = Float32Array.from(x);
    const pending = pool.run({ x: { data: x, dims: [2, 4] } });
    x.fill(0); // before the batch is dispatched (maxDelayMs 50)
    const got = await pending;
    const expected = await pool.run({ x: { data: original, dims: [2, 4] } });
    assert.deepEqual(Array.from(got.y.data), Array.from(expected.y.data));
    assert.deepEqual(Array.from(x), new Array(8).fill(0), "the caller's array is theirs: changed, not detached");
  } finally {
    await pool.close();
  }
});

// --- 1. crash containment: isolation 'process' ---------------------------------------------------
test("a pool with isolation 'process' answers as a thread pool does, from child processes", async () => {
  const feeds = { x: { data: Float32Array.from([1, -2, 3, 0.5, 4, 5, -6, 7]), dims: [2, 4] } };
  const threads = await mlpPool();
  const processes = await mlpPool({ isolation: 'process', workers: 2 });
  try {
    const [a, b] = await Promise.all([threads.run(feeds), processes.run(feeds)]);
    assert.deepEqual(Array.from(b.y.data), Array.from(a.y.data));
    assert.deepEqual(b.y.dims, a.y.dims);
    assert.equal(processes.stats().isolation, 'process');
    const pids = processes._slots.map((s) => s.worker.pid);
    assert.ok(pids.every((p) => Number.isInteger(p) && p !== process.pid), `worker pids ${pids}`);
  } finally {
    await Promise.all([threads.close(), processes.close()]);
  }
});

test("a native abort in a 'process' worker costs that worker only: its requests fail once, a replacement serves", async () => {
  const pool = await mlpPool({ isolation: 'process', workers: 1, maxDelayMs: 20, maxBatch: 8 });
  try {
    const feeds = () => ({ x: { data: Float32Array.from([1, 2, 3, 4]), dims: [1, 4] } });
    const expected = await pool.run(feeds());
    const firstPid = pool._slots[0].worker.pid;
    pool._testNextBatch({ crash: 'abort' }); // process.abort(): SIGABRT, as ONNX Runtime's 'terminate called' does
    const settled = [];
    const inFlight = [pool.run(feeds()), pool.run(feeds()), pool.run(feeds())].map((p, i) => p.then(
      (v) => settled.push({ i, ok: true, v }), (e) => settled.push({ i, ok: false, e })));
    await Promise.all(inFlight);
    assert.equal(settled.length, 3, 'every request answered exactly once');
    for (const s of settled) {
      assert.equal(s.ok, false);
      assert.equal(s.e.code, 'E_WORKER');
      assert.match(s.e.message, /SIGABRT/);
    }
    const again = await pool.run(feeds());
    assert.deepEqual(Array.from(again.y.data), Array.from(expected.y.data));
    assert.notEqual(pool._slots[0].worker.pid, firstPid);
    assert.equal(pool.stats().workerRestarts, 1);
  } finally {
    await pool.close();
  }
});

test('isolation must be thread or process', async () => {
  const { _checkPoolOptions } = require('../../js/pool.mjs');
  assert.equal(_checkPoolOptions({}).pool.isolation, 'thread');
  assert.throws(() => _checkPoolOptions({ isolation: 'fork' }), (e) => e.code === 'E_OPTIONS' && /'thread'.*'process'/.test(e.fix));
});
