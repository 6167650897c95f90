'use strict';
// js/worker.mjs as a child process, spoken to in frames exactly as Python's client does
// (shared-schemas/WIRE.md). Python's tests/python/test_runtimes.py covers the client side and
// the fault cases that need a killer (SIGKILL mid-run, timeouts, zombies).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const wire = require('../../js/wire.mjs');
const { exampleBundle } = require('./_helpers');

const WORKER = path.join(__dirname, '..', '..', 'js', 'worker.mjs');
const tensorCases = require('../../shared-schemas/vectors/tensors.json').cases;

/** A worker plus a request() that resolves with the next response frame. */
function startWorker() {
  const child = spawn(process.execPath, [WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const reader = new wire.FrameReader();
  const waiting = [];
  const early = [];
  let stderr = '';
  let nextId = 1;
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.on('data', (chunk) => {
    for (const body of reader.push(chunk)) {
      const msg = wire.unpack(body);
      if (waiting.length) waiting.shift()(msg);
      else early.push(msg);
    }
  });
  const next = () => (early.length ? Promise.resolve(early.shift()) : new Promise((resolve) => waiting.push(resolve)));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    stderr: () => stderr,
    raw(bytes) {
      child.stdin.write(bytes);
      return next();
    },
    request(op, fields = {}) {
      const id = nextId++;
      child.stdin.write(wire.encodeFrame({ id, op, ...fields }));
      return next().then((msg) => {
        assert.equal(msg.id, id, 'responses come back in request order with the request id');
        return msg;
      });
    },
    async stop() {
      child.stdin.end();
      return exited;
    },
  };
}

test('worker answers info with its pid and the pinned package versions', async () => {
  const w = startWorker();
  const res = await w.request('info');
  assert.equal(res.ok, true);
  assert.equal(res.result.pid, w.child.pid);
  assert.equal(res.result.node, process.version);
  const pkg = require('../../package.json');
  // The versions this repository pins for its tests (the npm package itself takes a peer range).
  assert.equal(res.result.versions['onnxruntime-node'], pkg.devDependencies['onnxruntime-node']);
  assert.equal(res.result.versions['onnxruntime-web'], pkg.devDependencies['onnxruntime-web']);
  assert.deepEqual(await w.stop(), { code: 0, signal: null });
});

test('worker echoes every vector tensor back byte for byte', async () => {
  const w = startWorker();
  const tensors = {};
  for (const c of tensorCases) tensors[c.name] = wire.decodeFrame(Buffer.from(c.frame_hex, 'hex'));
  const res = await w.request('echo', { tensors });
  assert.equal(res.ok, true, JSON.stringify(res.error));
  for (const c of tensorCases) {
    const again = wire.encodeFrame(res.result.tensors[c.name]).toString('hex');
    assert.equal(again, c.frame_hex, c.name);
  }
  await w.stop();
});

test('a malformed frame gets an error frame with id null and the worker keeps serving', async () => {
  const w = startWorker();
  const bad = await w.raw(Buffer.from([3, 0, 0, 0, 0xc1, 0xc1, 0xc1]));
  assert.deepEqual([bad.id, bad.ok, bad.error.code], [null, false, 'E_WIRE']);
  const notMap = await w.raw(wire.encodeFrame([1, 2]));
  assert.equal(notMap.error.code, 'E_REQUEST');
  const unknown = await w.request('reboot');
  assert.equal(unknown.error.code, 'E_REQUEST');
  assert.match(unknown.error.message, /unknown op "reboot"/);
  const extra = await w.request('info', { verbose: true });
  assert.match(extra.error.message, /unknown field\(s\) 'verbose'/);
  assert.equal((await w.request('info')).ok, true);
  await w.stop();
});

test('errors from loading carry the JS error code, stage and fix', async () => {
  const w = startWorker();
  const res = await w.request('load', { bundle: path.join(__dirname, 'no-such-bundle') });
  assert.equal(res.ok, false);
  assert.equal(res.error.code, 'E_MANIFEST');
  assert.equal(res.error.details.stage, 'load');
  assert.ok(res.error.details.fix);
  const run = await w.request('run', { session: 42, feeds: {} });
  assert.equal(run.error.code, 'E_NO_SESSION');
  await w.stop();
});

test('console.log and process.stdout.write from a library reach stderr, never the frame stream', async () => {
  const w = startWorker();
  const res = await w.request('echo', { tensors: {}, log: 'noise that would break a frame' });
  assert.equal(res.ok, true);
  assert.equal((await w.request('info')).ok, true);
  await w.stop();
  assert.equal(w.stderr().split('noise that would break a frame').length - 1, 2);
});

test('text in the request stream ends the worker with a clear message', async () => {
  const w = startWorker();
  const res = await w.raw(Buffer.from('hello, this is not a frame\n'));
  assert.equal(res.error.code, 'E_WIRE');
  assert.match(res.error.message, /printed text/);
  assert.equal((await w.exited).code, 3);
});

// A real exported bundle (scripts/test.sh exports the examples first).
test('worker loads and runs an exported example in node and wasm', async () => {
  const digits = exampleBundle('digits_cnn');
  const w = startWorker();
  for (const backend of ['node', 'wasm']) {
    const loaded = await w.request('load', { bundle: digits, variant: 'fp32', backend });
    assert.equal(loaded.ok, true, JSON.stringify(loaded.error));
    const input = loaded.result.inputs[0];
    const dims = input.shape.map((d) => (typeof d === 'string' ? 2 : d));
    const count = dims.reduce((a, b) => a * b, 1);
    const feeds = { [input.name]: wire.encodeTensor({ dtype: 'float32', dims, data: new Float32Array(count).fill(0.5) }) };
    const ran = await w.request('run', { session: loaded.result.session, feeds });
    assert.equal(ran.ok, true, JSON.stringify(ran.error));
    const out = wire.decodeTensor(Object.values(ran.result.outputs)[0]);
    assert.equal(out.dims[0], 2);
    assert.equal(ran.result.times_ms, undefined, 'times_ms comes only with repeat');
    // repeat: the runs back to back (bench), each timed; the outputs are the last run's, the same
    // numbers a single run gives.
    const repeated = await w.request('run', { session: loaded.result.session, feeds, repeat: 3 });
    assert.equal(repeated.ok, true, JSON.stringify(repeated.error));
    assert.equal(repeated.result.times_ms.length, 3);
    assert.ok(repeated.result.times_ms.every((ms) => ms > 0));
    assert.equal(repeated.result.ms, repeated.result.times_ms[2]);
    assert.deepEqual(Array.from(wire.decodeTensor(Object.values(repeated.result.outputs)[0]).data), Array.from(out.data));
    for (const repeat of [0, 1.5, -1, 100001, 'many']) {
      const bad = await w.request('run', { session: loaded.result.session, feeds, repeat });
      assert.equal(bad.ok, false, `repeat ${repeat}`);
      assert.equal(bad.error.code, 'E_REQUEST');
      assert.match(bad.error.message, /repeat as an integer from 1 to 100000/);
    }
    assert.equal((await w.request('close', { session: loaded.result.session })).result.closed, true);
  }
  await w.stop();
});
