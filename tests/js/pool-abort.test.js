'use strict';
// pool.run(feeds, { signal }): a request aborted before it is dispatched leaves the queue and never
// runs; one aborted while its batch runs rejects at once (E_ABORTED) and the batch still answers
// the other callers, whose outputs are checked against load() + model.run on the same bundle.

const test = require('node:test');
const assert = require('node:assert/strict');

const { load } = require('../../js/index.cjs');
const { createPool } = require('../../js/pool.mjs');
const { tolerance, compareOutput, exampleBundle } = require('./_helpers');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pixels = (seed) => ({ pixels: { data: Float32Array.from({ length: 64 }, (_, i) => ((i * 37 + seed * 11) % 17) / 17), dims: [1, 1, 8, 8] } });

function isAbort(e, queued) {
  assert.equal(e.code, 'E_ABORTED', `${e.code}: ${e.message}`);
  assert.equal(e.stage, 'run');
  assert.equal(e.details.queued, queued);
  return true;
}

test('an already aborted signal rejects at once and queues nothing', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1 });
  try {
    const reason = new Error('user left the page');
    const rejected = pool.run(pixels(1), { signal: AbortSignal.abort(reason) });
    await assert.rejects(rejected, (e) => isAbort(e, true) && e.cause === reason && /user left the page/.test(e.message));
    assert.equal(pool.stats().batches, 0);
    assert.equal(pool.stats().queued, 0);
  } finally {
    await pool.close();
  }
});

/** Polls until `ready()` holds (the pool's own counters), instead of guessing how long dispatch takes. */
async function until(ready, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

test('a request aborted while queued leaves the queue and never runs', async () => {
  const pool = await createPool(exampleBundle('digits_cnn'), { workers: 1, maxBatch: 1 });
  try {
    pool._testNextBatch({ delayMs: 400 }); // keeps the only worker busy with the first request
    const first = pool.run(pixels(1));
    await until(() => pool.stats().inFlight === 1, 'the first request is in the worker');
    const controller = new AbortController();
    const second = pool.run(pixels(2), { signal: controller.signal });
    const secondDone = second.then(() => 'answered', (e) => e);
    assert.equal(pool.stats().queued, 1);
    controller.abort();
    const err = await secondDone;
    assert.ok(isAbort(err, true));
    assert.equal(pool.stats().queued, 0, 'the aborted request left the queue');
    await first;
    const third = await pool.run(pixels(3));
    assert.deepEqual(third.logits.dims, [1, 10]);
    const s = pool.stats();
    assert.equal(s.batches, 2, 'first and third ran; the aborted one did not');
    assert.equal(s.aborted, 1);
    assert.equal(s.completed, 2);
    assert.equal(s.failed, 0);
    assert.equal(s.requests, s.completed + s.failed + s.timedOut + s.aborted, 'every request settled exactly once');
  } finally {
    await pool.close();
  }
});

test('a request aborted while its batch runs rejects at once; the batch still answers the others', async (t) => {
  const bundle = exampleBundle('digits_cnn');
  const model = await load(bundle);
  const pool = await createPool(bundle, { workers: 1, maxBatch: 8, maxDelayMs: 100 });
  try {
    pool._testNextBatch({ delayMs: 3000 }); // long enough that "at once" cannot be the batch ending
    const controller = new AbortController();
    const a = pool.run(pixels(1), { signal: controller.signal });
    const aDone = a.then(() => 'answered', (e) => e);
    const b = pool.run(pixels(2), { signal: new AbortController().signal });
    await until(() => pool.stats().inFlight === 2, 'the batch (a + b) has left the queue and waits in the worker');
    const bDone = b.then(() => 'batch done', () => 'batch done');
    const t0 = performance.now();
    controller.abort();
    // "At once": a settles while its batch (held 3 s in the worker) is still running.
    assert.notEqual(await Promise.race([aDone, bDone]), 'batch done', 'the abort waited for the batch');
    const err = await aDone;
    const waited = performance.now() - t0;
    assert.ok(isAbort(err, false));
    assert.match(err.message, /while its batch ran/);
    const ob = await b;
    const ref = await model.run(pixels(2));
    const cmp = compareOutput(ob.logits, ref.logits, tolerance('fp32', 'node'), model.outputs[0].class_axis);
    assert.ok(cmp.passed, cmp.why);
    t.diagnostic(`aborted after ${waited.toFixed(1)} ms; the other request's max |pool - model.run| = ${cmp.metrics.max_abs}`);
    const s = pool.stats();
    assert.equal(s.batches, 1);
    assert.equal(s.largestBatch, 2, 'a and b ran as one batch');
    assert.equal(s.aborted, 1);
    assert.equal(s.completed, 1);
  } finally {
    await pool.close();
    await model.dispose();
  }
});

test('aborting after the answer changes nothing; a signal that is not one, or one given to createPool, is E_OPTIONS', async () => {
  const bundle = exampleBundle('digits_cnn');
  await assert.rejects(createPool(bundle, { signal: new AbortController().signal }),
    (e) => e.code === 'E_OPTIONS' && /createPool takes no signal/.test(e.message) && /pool\.run/.test(e.fix));
  const pool = await createPool(bundle, { workers: 1 });
  try {
    const controller = new AbortController();
    const out = await pool.run(pixels(1), { signal: controller.signal });
    controller.abort();
    assert.deepEqual(out.logits.dims, [1, 10]);
    assert.equal(pool.stats().aborted, 0);
    await assert.rejects(pool.run(pixels(1), { signal: 'stop' }), (e) => e.code === 'E_OPTIONS' && /signal/.test(e.message));
    // Other run options are still checked by model.run's rule.
    await assert.rejects(pool.run(pixels(1), { signal: controller.signal, output: ['logits'] }),
      (e) => e.code === 'E_OPTIONS' && /unknown run option 'output'/.test(e.message));
  } finally {
    await pool.close();
  }
});
