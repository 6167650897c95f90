'use strict';
// Concurrent run() calls on one model are serialized (in call order) and each gets its own
// answer; dispose() waits for queued runs, and a disposed model refuses further use.

const test = require('node:test');
const assert = require('node:assert/strict');

const { load, PolyonnxError } = require('../../js/index.cjs');
const { Model } = require('../../js/model.mjs');
const { fixture, readVectors, rejectsWith } = require('./_helpers');

/** A backend double that records how many runs overlap. */
function slowBackend() {
  const state = { active: 0, maxActive: 0, order: [], released: false };
  return {
    state,
    RUNTIME: 'node',
    runtimeVersion: () => 'test',
    async run(session, tensors) {
      state.active += 1;
      state.maxActive = Math.max(state.maxActive, state.active);
      const x = tensors.x.data[0];
      state.order.push(x);
      await new Promise((r) => setTimeout(r, 5 - (x % 5)));
      state.active -= 1;
      return { y: { dtype: 'float32', dims: [1], data: Float32Array.from([x * 2]) } };
    },
    async release() { state.released = true; },
  };
}

function fakeModel(backend) {
  const manifest = {
    name: 'fake', inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
    dims: {}, variants: { fp32: { quantization: { method: 'none' } } },
  };
  return new Model({ backend, session: {}, manifest, variantName: 'fp32', bundle: { where: 'fake' }, sessionOptions: {}, loadMs: 0 });
}

test('runs on one model never overlap and run in call order', async () => {
  const backend = slowBackend();
  const model = fakeModel(backend);
  const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => model.run({ x: [i] })));
  assert.equal(backend.state.maxActive, 1);
  assert.deepEqual(backend.state.order, Array.from({ length: 20 }, (_, i) => i));
  outs.forEach((o, i) => assert.equal(o.y.data[0], i * 2));
});

test('a failing run does not stall the queue', async () => {
  const backend = slowBackend();
  const orig = backend.run;
  backend.run = async (s, t) => { if (t.x.data[0] === 1) throw new Error('boom'); return orig(s, t); };
  const model = fakeModel(backend);
  const results = await Promise.allSettled([0, 1, 2].map((x) => model.run({ x: [x] })));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('concurrent runs on a real model each get their own reference answer', async () => {
  const { cases } = readVectors(fixture('tokens.vectors.json'));
  const model = await load(fixture('tokens'));
  try {
    const jobs = [];
    for (let round = 0; round < 10; round++) for (const c of cases) jobs.push([c, model.run(c.feeds)]);
    for (const [c, job] of jobs) {
      const out = await job;
      assert.deepEqual(Array.from(out.logits.data), Array.from(c.outputs.fp32.logits.data));
      assert.deepEqual(Array.from(out.pred.data), Array.from(c.outputs.fp32.pred.data));
    }
    assert.equal(model.info().runs, jobs.length);
  } finally {
    await model.dispose();
  }
});

test('dispose waits for queued runs, then releases; later runs fail with E_DISPOSED', async () => {
  const backend = slowBackend();
  const model = fakeModel(backend);
  const queued = [model.run({ x: [1] }), model.run({ x: [2] })];
  const disposed = model.dispose();
  assert.equal(model.dispose(), disposed, 'dispose() is idempotent');
  await rejectsWith(assert, model.run({ x: [3] }), PolyonnxError, 'E_DISPOSED', ['was disposed', 'load the bundle again']);
  assert.deepEqual((await Promise.all(queued)).map((o) => o.y.data[0]), [2, 4]);
  await disposed;
  assert.ok(backend.state.released);
  assert.equal(model.info().disposed, true);
});

test('a real model releases its session on dispose and refuses to run afterwards', async () => {
  const model = await load(fixture('mlp'));
  await model.dispose();
  await model.dispose();
  await rejectsWith(assert, model.run({ x: [[1, 2, 3, 4]] }), PolyonnxError, 'E_DISPOSED', ["variant 'fp32' of bundle 'mlp' was disposed"]);
});
