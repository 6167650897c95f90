'use strict';
// createPool (js/pool.mjs): batched runs equal unbatched ones (references from load() on the same
// bundle, computed here), bad feeds fail like model.run, back-pressure, timeouts, worker crashes,
// and a clean close that lets the process exit.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { load } = require('../../js/index.cjs');
const { createPool, Pool, PoolError, threadPlan } = require('../../js/pool.mjs');
const { tolerance, compareOutput, exampleBundle } = require('./_helpers');

const ROOT = path.resolve(__dirname, '..', '..');


// Deterministic token ids inside the vocabulary [0, vocab).
function tokens(rows, len, seed, vocab) {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: len }, (_, j) => (seed * 7919 + r * 104729 + j * 31) % vocab));
}

async function expectCode(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return true;
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Run `feedsList` through the pool at once, then one by one through a plain model; largest difference. */
async function batchedVersusUnbatched(t, bundleName, feedsList) {
  const bundle = exampleBundle(bundleName);
  // One worker and a long delay, so the requests are certain to wait together and be batched.
  const pool = await createPool(bundle, { workers: 1, intraOpNumThreads: 1, maxBatch: 8, maxDelayMs: 200 });
  const model = await load(bundle, { intraOpNumThreads: 1 });
  try {
    const batched = await Promise.all(feedsList.map((f) => pool.run(f)));
    const stats = pool.stats();
    assert.ok(stats.largestBatch > 1, `requests were never batched (stats ${JSON.stringify(stats)})`);
    const tol = tolerance('fp32', 'node');
    let largest = 0;
    for (let i = 0; i < feedsList.length; i++) {
      const ref = await model.run(feedsList[i]);
      for (const spec of model.outputs) {
        const got = batched[i][spec.name];
        const cmp = compareOutput(got, ref[spec.name], tol, spec.class_axis);
        assert.ok(cmp.passed, `request ${i} output '${spec.name}': ${cmp.why}`);
        largest = Math.max(largest, cmp.metrics.max_abs);
      }
    }
    t.diagnostic(`${bundleName}: ${feedsList.length} requests in ${stats.batches} batches (largest ${stats.largestBatch} rows); `
      + `largest |batched - unbatched| = ${largest}`);
    return { largest, stats };
  } finally {
    await pool.close();
    await model.dispose();
  }
}

test('batched runs give each caller its own rows, equal to unbatched runs (text_transformer)', async (t) => {
  // Two sequence lengths (never merged with each other) and requests of 1 and 2 rows.
  const feeds = [];
  for (let i = 0; i < 10; i++) feeds.push({ input_ids: tokens(i % 3 === 0 ? 2 : 1, i % 2 ? 16 : 9, i, 8000) });
  const { stats } = await batchedVersusUnbatched(t, 'text_transformer', feeds);
  assert.ok(stats.batches >= 2, 'two sequence lengths need at least two batches');
});

test('batched runs equal unbatched runs for a 3-d output (gru_tagger)', async (t) => {
  const feeds = Array.from({ length: 6 }, (_, i) => ({ tokens: tokens(1 + (i % 2), 7, i, 100) }));
  await batchedVersusUnbatched(t, 'gru_tagger', feeds);
});

test('bad feeds and bad run options fail at once with the same error as model.run', async () => {
  const bundle = exampleBundle('text_transformer');
  const pool = await createPool(bundle, { workers: 1 });
  const model = await load(bundle, { intraOpNumThreads: 1 });
  try {
    const cases = [
      [{}, undefined],
      [{ input_ids: [[1, 2, 3]], extra: [1] }, undefined],
      [{ input_ids: [[1.5, 2]] }, undefined],
      [{ input_ids: [[1, 8000]] }, undefined],
      [{ input_ids: [[1, 2], [3]] }, undefined],
      [{ input_ids: { data: new Float32Array(2), dims: [1, 2] } }, undefined],
      [{ input_ids: [[1, 2]] }, { outputs: ['nope'] }],
      [{ input_ids: [[1, 2]] }, { bogus: 1 }],
    ];
    for (const [feeds, options] of cases) {
      const fromModel = await model.run(feeds, options).then(() => null, (e) => e);
      const fromPool = await pool.run(feeds, options).then(() => null, (e) => e);
      assert.ok(fromModel, `model.run accepted ${JSON.stringify(feeds)}`);
      assert.ok(fromPool, `pool.run accepted ${JSON.stringify(feeds)}`);
      assert.equal(fromPool.constructor, fromModel.constructor);
      assert.equal(fromPool.code, fromModel.code);
      // The model names itself "variant 'fp32' of bundle ..."; the pool "the pool for bundle ...".
      const strip = (m) => m.replace(/variant '\w+' of bundle/, 'X').replace(/the pool for bundle/, 'X');
      assert.equal(strip(fromPool.message), strip(fromModel.message));
    }
    assert.equal(pool.stats().requests, 0, 'nothing bad was queued');
  } finally {
    await pool.close();
    await model.dispose();
  }
});

test('typed arrays the caller passes are copied to the worker, never detached', async () => {
  const pool = await createPool(exampleBundle('text_transformer'), { workers: 1 });
  try {
    const data = BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i + 1));
    await pool.run({ input_ids: { data, dims: [1, 8] } });
    assert.equal(data.length, 8);
    assert.equal(data[7], 8n);
  } finally {
    await pool.close();
  }
});

test('a full queue rejects at once with E_QUEUE_FULL, and the queued requests still finish', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 1, maxQueue: 2 });
  try {
    const px = { pixels: [[Array.from({ length: 8 }, () => new Array(8).fill(0.5))]] };
    pool._testNextBatch({ delayMs: 300 }); // keeps the only worker busy
    const busy = pool.run(px);
    await sleep(50); // the first request has left the queue for the worker
    const queued = [pool.run(px), pool.run(px)];
    const t0 = Date.now();
    await assert.rejects(pool.run(px), (e) => {
      assert.ok(e instanceof PoolError);
      assert.equal(e.code, 'E_QUEUE_FULL');
      assert.match(e.message, /maxQueue 2/);
      return true;
    });
    assert.ok(Date.now() - t0 < 100, 'rejected without waiting');
    const outs = await Promise.all([busy, ...queued]);
    assert.deepEqual(outs.map((o) => o.logits.dims), [[1, 10], [1, 10], [1, 10]]);
    assert.equal(pool.stats().rejectedQueueFull, 1);
  } finally {
    await pool.close();
  }
});

test('a request that times out inside a batch rejects alone; the rest of its batch is answered', async () => {
  const bundle = exampleBundle('text_transformer');
  // A at 0 ms; B and C at 700 ms; the batch leaves at 800 ms and takes 700 ms more (test hook).
  // A's deadline (1200 ms) falls while the batch runs; B's and C's (1900 ms) after it ends.
  const pool = await createPool(bundle, { workers: 1, maxBatch: 8, maxDelayMs: 800, timeoutMs: 1200 });
  try {
    pool._testNextBatch({ delayMs: 700 });
    const a = pool.run({ input_ids: tokens(1, 8, 1, 8000) });
    const aDone = a.then(() => 'answered', (e) => e);
    await sleep(700);
    const b = pool.run({ input_ids: tokens(1, 8, 2, 8000) });
    const c = pool.run({ input_ids: tokens(1, 8, 3, 8000) });
    const err = await aDone;
    assert.ok(err instanceof PoolError, `A was ${err}`);
    assert.equal(err.code, 'E_TIMEOUT');
    assert.match(err.message, /while its batch ran/);
    const [ob, oc] = await Promise.all([b, c]);
    assert.deepEqual(ob.logits.dims, [1, 4]);
    assert.deepEqual(oc.logits.dims, [1, 4]);
    const s = pool.stats();
    assert.equal(s.batches, 1, 'A, B and C ran as one batch');
    assert.equal(s.largestBatch, 3);
    assert.equal(s.timedOut, 1);
    assert.equal(s.completed, 2);
  } finally {
    await pool.close();
  }
});

test('a request that times out in the queue is dropped and the pool keeps serving', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 1, timeoutMs: 250 });
  try {
    const px = { pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } };
    pool._testNextBatch({ delayMs: 150 });
    const first = pool.run(px);
    await sleep(20);
    pool._testNextBatch({ delayMs: 400 });
    const second = pool.run(px); // runs after first, then waits 400 ms: past its 250 ms deadline
    const third = pool.run(px); // queued behind second for longer than 250 ms
    await first;
    await expectCode(second, 'E_TIMEOUT');
    await assert.rejects(third, (e) => e.code === 'E_TIMEOUT' && /while queued/.test(e.message));
    await sleep(400); // the worker finishes second's batch (its answer is dropped)
    const after = await pool.run(px);
    assert.deepEqual(after.logits.dims, [1, 10]);
    const s = pool.stats();
    assert.equal(s.requests, s.completed + s.failed + s.timedOut, 'every request settled exactly once');
  } finally {
    await pool.close();
  }
});

for (const crash of ['exit', 'throw']) {
  test(`a worker that crashes (${crash === 'exit' ? 'process.exit' : 'uncaught error'}) is replaced; its in-flight requests fail with E_WORKER`, async () => {
    const pool = await createPool(exampleBundle('text_transformer'), { workers: 1, maxBatch: 4, maxDelayMs: 30 });
    try {
      pool._testNextBatch({ crash });
      const inFlight = [1, 2, 3].map((i) => pool.run({ input_ids: tokens(1, 8, i, 8000) }));
      for (const p of inFlight) {
        await assert.rejects(p, (e) => {
          assert.ok(e instanceof PoolError);
          assert.equal(e.code, 'E_WORKER');
          assert.match(e.message, crash === 'exit' ? /exited with code 70/ : /threw .*uncaught error/);
          assert.match(e.fix, /retry/);
          return true;
        });
      }
      const after = await pool.run({ input_ids: tokens(1, 8, 4, 8000) });
      assert.deepEqual(after.logits.dims, [1, 4]);
      const s = pool.stats();
      assert.equal(s.workerRestarts, 1);
      assert.equal(s.workers, 1);
      assert.equal(s.failed, 3);
      assert.equal(s.requests, s.completed + s.failed + s.timedOut, 'every request settled exactly once');
    } finally {
      await pool.close();
    }
  });
}

test('when a crashed worker cannot be replaced (bundle changed on disk), requests fail with E_WORKER instead of hanging', async () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'polyonnx-pool-'));
  const bundle = path.join(dir, 'digits_cnn');
  fs.cpSync(exampleBundle('digits_cnn'), bundle, { recursive: true });
  const pool = await createPool(bundle, { workers: 1, maxBatch: 1 });
  try {
    const px = { pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } };
    await pool.run(px);
    fs.appendFileSync(path.join(bundle, 'model.onnx'), 'tampered'); // the replacement's integrity check fails
    pool._testNextBatch({ crash: 'exit' });
    await expectCode(pool.run(px), 'E_WORKER');
    for (let i = 0; i < 100 && pool.stats().workers > 0; i++) await sleep(50);
    assert.equal(pool.stats().workers, 0, 'the replacement did not load, and is not retried forever');
    await assert.rejects(pool.run(px), (e) => e.code === 'E_WORKER' && /no worker left/.test(e.message));
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('close() answers every queued request, then rejects new ones with E_CLOSED', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 2, maxDelayMs: 1000 });
  const px = { pixels: { data: new Float32Array(64).fill(0.25), dims: [1, 1, 8, 8] } };
  const pending = Array.from({ length: 5 }, () => pool.run(px));
  const t0 = Date.now();
  await pool.close(); // does not wait out maxDelayMs
  assert.ok(Date.now() - t0 < 900, 'close flushed the queue without waiting for maxDelayMs');
  const outs = await Promise.all(pending);
  assert.equal(outs.length, 5);
  await expectCode(pool.run(px), 'E_CLOSED');
  assert.equal(await pool.close(), undefined, 'close() twice is fine');
});

test('a script that creates, uses and closes a pool exits by itself (no leaked handles)', () => {
  const script = `
    const { createPool } = require(${JSON.stringify(path.join(ROOT, 'js', 'pool.mjs'))});
    (async () => {
      const pool = await createPool(${JSON.stringify(exampleBundle('digits_cnn'))}, { workers: 2 });
      await Promise.all([1, 2, 3].map(() => pool.run({ pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } })));
      pool._testNextBatch({ crash: 'exit' });
      await pool.run({ pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } }).catch(() => {});
      await pool.close();
      console.log('closed');
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.signal, null, `the script was killed after 20 s: something kept it alive\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /closed/);
});

test('createPool checks its options and the bundle before starting threads', async () => {
  const bundle = exampleBundle('digits_cnn');
  await expectCode(createPool(bundle, { workers: 0 }), 'E_OPTIONS');
  await expectCode(createPool(bundle, { maxBatchSize: 4 }), 'E_OPTIONS');
  await expectCode(createPool(bundle, { intraOpNumThreads: -1 }), 'E_OPTIONS');
  await expectCode(createPool(path.join(ROOT, 'no-such-bundle'), {}), 'E_MANIFEST');
  await expectCode(createPool(bundle, { variant: 'fp64', workers: 1 }), 'E_VARIANT');
});

test('default thread counts fit the cores: workers x intra-op threads <= cores', () => {
  for (const n of [1, 2, 3, 4, 8, 16]) {
    const plan = threadPlan(undefined, undefined, n);
    assert.ok(plan.workers * plan.intraOpNumThreads <= n, `${n} cores: ${JSON.stringify(plan)}`);
    const two = threadPlan(2, undefined, n);
    assert.ok(two.workers * two.intraOpNumThreads <= Math.max(n, 2), `${n} cores, 2 workers: ${JSON.stringify(two)}`);
    const byThreads = threadPlan(undefined, 2, n);
    assert.ok(byThreads.workers * 2 <= Math.max(n, 2), `${n} cores, 2 threads: ${JSON.stringify(byThreads)}`);
  }
  assert.deepEqual(threadPlan(3, 3, 2), { workers: 3, intraOpNumThreads: 3 }, 'explicit counts are kept');
});

test('maxBatch 1 turns batching off: every request runs alone', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 1 });
  try {
    const px = { pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } };
    await Promise.all([pool.run(px), pool.run(px), pool.run(px)]);
    assert.equal(pool.stats().largestBatch, 1);
    assert.equal(pool.stats().batches, 3);
  } finally {
    await pool.close();
  }
});

test('batching is on only when every input and output has the same named dim at axis 0', () => {
  const spec = (name, shape) => ({ name, dtype: 'float32', shape });
  const batchDimOf = (inputs, outputs) => new Pool(
    { dir: '.', manifest: { name: 'm', inputs, outputs, dims: {} } },
    { pool: { maxBatch: 8 }, load: {} },
  ).batchDim;
  assert.equal(batchDimOf([spec('x', ['batch', 3])], [spec('y', ['batch'])]), 'batch');
  assert.equal(batchDimOf([spec('x', ['batch', 3]), spec('m', ['batch', 3])], [spec('y', ['batch', 2])]), 'batch');
  assert.equal(batchDimOf([spec('x', [1, 3])], [spec('y', [1])]), null, 'static axis 0');
  assert.equal(batchDimOf([spec('x', ['batch', 3])], [spec('y', [3, 'batch'])]), null, 'output without it at axis 0');
  assert.equal(batchDimOf([spec('x', ['batch', 3]), spec('z', ['n', 3])], [spec('y', ['batch'])]), null, 'inputs disagree');
  assert.equal(batchDimOf([spec('x', ['seq'])], [spec('y', ['seq', 4]), spec('s', [])]), null, 'a scalar output');
});

test('a worker that crashes while the pool closes fails what is still queued, and close() resolves', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 1, timeoutMs: 0 });
  const px = { pixels: { data: new Float32Array(64), dims: [1, 1, 8, 8] } };
  await pool.run(px);
  pool._testNextBatch({ crash: 'exit' });
  const first = pool.run(px);
  const queued = pool.run(px);
  const closed = pool.close();
  await expectCode(first, 'E_WORKER');
  await expectCode(queued, 'E_WORKER');
  await closed; // with no worker left and no replacement while closing, it used to wait forever
});

test('a provider error inside a pool worker comes back as the CompatibilityError load() throws', async () => {
  const { CompatibilityError, load } = require('../../js/index.cjs');
  const direct = await load(exampleBundle('digits_cnn'), { providers: ['cuda'], logSeverityLevel: 4 }).then(() => null, (e) => e);
  const pooled = await createPool(exampleBundle('digits_cnn'), { workers: 1, providers: ['cuda'], logSeverityLevel: 4 })
    .then((p) => p.close().then(() => null), (e) => e);
  assert.ok(direct instanceof CompatibilityError && direct.code === 'E_PROVIDER', String(direct));
  assert.ok(pooled instanceof CompatibilityError, `the pool gave ${pooled && pooled.name}: ${pooled}`);
  assert.equal(pooled.code, 'E_PROVIDER');
});
