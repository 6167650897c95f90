'use strict';
// examples/server/server.js, started as its own process on a free port, as a user would run it:
// 200 answers equal load() + run on the same bundle; bad input is a 400 with polyonnx's code
// and message; oversized bodies are 413; the process stops on SIGTERM.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { load, toNested } = require('../../js/index.cjs');
const { exampleBundle } = require('./_helpers');

const ROOT = path.resolve(__dirname, '..', '..');
const SERVER = path.join(ROOT, 'examples', 'server', 'server.js');


/** Spawn the server with --port 0; resolves to { url, child, stopped } once it listens. */
function startServer(args) {
  const child = spawn(process.execPath, [SERVER, ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const stopped = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server did not start in 20 s\n${err}`)); }, 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], child, stopped });
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code} before listening\n${err}`)); });
  });
}

async function post(url, body, headers = {}) {
  const res = await fetch(`${url}/run`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

test('the example server answers /health, /model and /run, and maps errors to 400 and 413', async (t) => {
  const bundle = exampleBundle('text_transformer');
  const { url, child, stopped } = await startServer([bundle, '--workers', '1', '--max-body', '4096']);
  const model = await load(bundle, { intraOpNumThreads: 1 });
  try {
    await t.test('GET /health is ok', async () => {
      const res = await fetch(`${url}/health`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.status, 'ok');
      assert.equal(body.stats.workers, 1);
    });

    await t.test('GET /model lists inputs and outputs from the manifest', async () => {
      const body = await (await fetch(`${url}/model`)).json();
      assert.deepEqual(body.inputs.map((s) => s.name), model.inputs.map((s) => s.name));
      assert.deepEqual(body.outputs.map((s) => [s.name, s.dtype, s.shape]), model.outputs.map((s) => [s.name, s.dtype, s.shape]));
      assert.equal(body.variant, model.variant);
    });

    await t.test('POST /run returns nested arrays equal to load() + run', async () => {
      const ids = [[5, 17, 300, 7999, 0, 42], [1, 2, 3, 4, 5, 6]];
      const res = await post(url, { feeds: { input_ids: ids } });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const ref = toNested((await model.run({ input_ids: ids })).logits);
      assert.equal(res.json.outputs.logits.length, 2);
      // JSON carries float32 values as their shortest decimal form: they read back exactly.
      assert.deepEqual(res.json.outputs.logits.map((row) => row.map(Math.fround)), ref);
    });

    await t.test('a bad input is a 400 with polyonnx\'s code and message', async () => {
      const res = await post(url, { feeds: { input_ids: [[1, 8000]] } });
      assert.equal(res.status, 400);
      assert.equal(res.json.error.code, 'E_FEED');
      const modelErr = await model.run({ input_ids: [[1, 8000]] }).catch((e) => e);
      assert.equal(res.json.error.message, modelErr.message);
      assert.ok(res.json.error.fix);
    });

    await t.test('a missing input, an unknown output, bad JSON and no feeds are 400s', async () => {
      assert.equal((await post(url, { feeds: { ids: [[1]] } })).json.error.code, 'E_FEED');
      const unknownOut = await post(url, { feeds: { input_ids: [[1]] }, outputs: ['nope'] });
      assert.equal(unknownOut.status, 400);
      assert.equal(unknownOut.json.error.code, 'E_OPTIONS');
      const bad = await post(url, '{"feeds": ');
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'E_JSON');
      assert.equal((await post(url, { input_ids: [[1]] })).status, 400);
    });

    await t.test('a body over --max-body is a 413', async () => {
      const big = { feeds: { input_ids: [Array.from({ length: 2000 }, () => 1234)] } };
      const res = await post(url, big);
      assert.equal(res.status, 413);
      assert.equal(res.json.error.code, 'E_TOO_LARGE');
    });

    await t.test('wrong paths and methods are 404 and 405', async () => {
      assert.equal((await fetch(`${url}/nope`)).status, 404);
      const res = await fetch(`${url}/run`);
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST');
    });
  } finally {
    await model.dispose();
    child.kill('SIGTERM');
    const end = await stopped;
    assert.equal(end.code, 0, `server exit: ${JSON.stringify(end)}`);
  }
});

test('the example server answers 503 when its queue is full', async () => {
  const bundle = exampleBundle('text_transformer');
  // One worker, a queue of 1, and sequences long enough that requests pile up.
  const { url, child, stopped } = await startServer([bundle, '--workers', '1', '--max-queue', '1', '--max-batch', '1']);
  try {
    const ids = [Array.from({ length: 256 }, (_, i) => i)];
    const results = await Promise.all(Array.from({ length: 12 }, () => post(url, { feeds: { input_ids: ids } })));
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.includes(200), `statuses ${statuses}`);
    const full = results.find((r) => r.status === 503);
    assert.ok(full, `no 503 among ${statuses}`);
    assert.equal(full.json.error.code, 'E_QUEUE_FULL');
    assert.equal(full.headers.get('retry-after'), '1');
  } finally {
    child.kill('SIGTERM');
    await stopped;
  }
});

test('a server started from code gets the command line defaults: pool workers in child processes', async () => {
  const { startServer } = require('../../examples/server/server');
  const { exampleBundle } = require('./_helpers');
  const srv = await startServer(exampleBundle('digits_cnn'), { port: 0, workers: 1 });
  try {
    assert.equal(srv.pool.stats().isolation, 'process');
  } finally {
    await srv.close();
  }
});
