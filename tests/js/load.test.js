'use strict';
// Loading the fixture bundles and running them: onnxruntime-node's answers against the ones ONNX
// Runtime Python computed (the .vectors.json files), within tolerances.json checks[kind].node.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const polyonnx = require('../../js/index.cjs');
const { load, run, toNested, PolyonnxError } = polyonnx;
const { variantKind } = require('../../js/manifest.mjs');
const { ort } = require('../../js/backends/node.mjs');
const {
  fixture, FIXTURE_BUNDLES, readVectors, tolerance, compareOutput, rejectsWith,
} = require('./_helpers');

/** `out` against the reference outputs of `variant` in `manifest`, with that variant's node tolerance. */
function assertOutputs(out, expected, manifest, variant, label) {
  const tol = tolerance(variantKind(manifest.variants[variant]), 'node');
  assert.deepEqual(Object.keys(out).sort(), Object.keys(expected).sort(), label);
  for (const spec of manifest.outputs) {
    if (!expected[spec.name]) continue;
    const r = compareOutput(out[spec.name], expected[spec.name], tol, spec.class_axis);
    assert.ok(r.passed, `${label} output '${spec.name}': ${r.why}`);
  }
}

function assertMatches(out, expected, model, label) {
  assertOutputs(out, expected, model.manifest, model.variant, label);
}

for (const name of FIXTURE_BUNDLES) {
  const vectors = readVectors(fixture(`${name}.vectors.json`));
  const variants = Object.keys(vectors.cases[0].outputs);
  for (const variant of variants) {
    test(`${name}/${variant}: every reference case matches ONNX Runtime Python within tolerance`, async () => {
      const model = await load(fixture(name), { variant });
      try {
        assert.equal(model.variant, variant);
        for (const [i, c] of vectors.cases.entries()) {
          const out = await model.run(c.feeds);
          assertMatches(out, c.outputs[variant], model, `${name}/${variant} case ${i}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
}

test('fp32 outputs are bit-identical to ONNX Runtime Python (mlp, tokens)', async () => {
  // MEASURED.md: onnxruntime-node 1.30 and Python 1.32 agree bit for bit on fp32; this keeps it honest.
  for (const name of ['mlp', 'tokens']) {
    const { cases } = readVectors(fixture(`${name}.vectors.json`));
    const out = await run(fixture(name), cases[0].feeds, { variant: 'fp32' });
    for (const [k, ref] of Object.entries(cases[0].outputs.fp32)) {
      assert.deepEqual(Array.from(out[k].data), Array.from(ref.data), `${name}.${k}`);
    }
  }
});

test('a model exposes inputs, outputs, variant and manifest from polyonnx.json', async () => {
  const model = await load(fixture('tokens'));
  try {
    assert.equal(model.variant, 'fp32');
    assert.deepEqual(model.inputs.map((s) => [s.name, s.dtype, s.shape]),
      [['input_ids', 'int64', ['batch', 'seq']], ['attention_mask', 'bool', ['batch', 'seq']]]);
    assert.deepEqual(model.outputs.map((s) => s.name), ['logits', 'hidden', 'pred']);
    assert.equal(model.manifest.name, 'tokens');
    assert.ok(Object.isFrozen(model.manifest) && Object.isFrozen(model.inputs[0].shape));
    const info = model.info();
    assert.equal(info.name, 'tokens');
    assert.equal(info.kind, 'fp32');
    assert.equal(info.runtime.package, 'onnxruntime-node');
    assert.equal(info.runtime.version, ort().env.versions.node);
    assert.deepEqual(info.sessionOptions.executionProviders, ['cpu']);
    assert.ok(info.loadMs > 0);
  } finally {
    await model.dispose();
  }
});

test('load accepts the path of polyonnx.json as well as the folder', async () => {
  const model = await load(path.join(fixture('mlp'), 'polyonnx.json'), { variant: 'int8' });
  assert.equal(model.variant, 'int8');
  assert.equal(model.info().kind, 'int8');
  await model.dispose();
});

test('nested JS arrays, { data, dims } and an onnxruntime Tensor give the same answer', async () => {
  const { cases } = readVectors(fixture('tokens.vectors.json'));
  const c = cases[0];
  const ids = c.feeds.input_ids;
  const mask = c.feeds.attention_mask;
  const model = await load(fixture('tokens'));
  try {
    const nested = await model.run({
      input_ids: toNested(ids, { int64: 'number' }),
      attention_mask: toNested(mask),
    });
    const objects = await model.run({ input_ids: { data: ids.data, dims: ids.dims }, attention_mask: { data: mask.data, dims: mask.dims } });
    const O = ort();
    const tensors = await model.run({
      input_ids: new O.Tensor('int64', ids.data, ids.dims),
      attention_mask: new O.Tensor('bool', mask.data, mask.dims),
    });
    for (const out of [nested, objects, tensors]) assertMatches(out, c.outputs.fp32, model, 'tokens');
    assert.deepEqual(toNested(nested.pred), toNested(c.outputs.fp32.pred));
  } finally {
    await model.dispose();
  }
});

test('a bare typed array feeds an all-static input', async () => {
  const { cases } = readVectors(fixture('static.vectors.json'));
  const model = await load(fixture('static'));
  const out = await model.run({ img: cases[0].feeds.img.data });
  assertMatches(out, cases[0].outputs.fp32, model, 'static');
  await model.dispose();
});

test('run({ outputs }) fetches only the named outputs', async () => {
  const { cases } = readVectors(fixture('tokens.vectors.json'));
  const model = await load(fixture('tokens'));
  try {
    const out = await model.run(cases[0].feeds, { outputs: ['pred', 'logits'] });
    assert.deepEqual(Object.keys(out).sort(), ['logits', 'pred']);
    assertMatches(out, { pred: cases[0].outputs.fp32.pred, logits: cases[0].outputs.fp32.logits }, model, 'subset');
    await rejectsWith(assert, model.run(cases[0].feeds, { outputs: ['logit'] }), PolyonnxError, 'E_OPTIONS',
      ["no output 'logit'", "'logits', 'hidden', 'pred'"]);
    await rejectsWith(assert, model.run(cases[0].feeds, { outputs: [] }), PolyonnxError, 'E_OPTIONS', ['non-empty']);
    await rejectsWith(assert, model.run(cases[0].feeds, { output: ['pred'] }), PolyonnxError, 'E_OPTIONS', ["unknown run option 'output'"]);
  } finally {
    await model.dispose();
  }
});

test('run(path, feeds, options) loads, runs and disposes', async () => {
  const { cases } = readVectors(fixture('mlp.vectors.json'));
  const out = await run(fixture('mlp'), cases[1].feeds, { variant: 'int8', outputs: ['y'] });
  assert.equal(out.y.dims[0], cases[1].feeds.x.dims[0]);
  const manifest = JSON.parse(require('node:fs').readFileSync(path.join(fixture('mlp'), 'polyonnx.json'), 'utf8'));
  assertOutputs(out, cases[1].outputs.int8, manifest, 'int8', 'run()');
});

test('session options pass through to onnxruntime-node', async () => {
  const model = await load(fixture('mlp'), {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled', logSeverityLevel: 3,
  });
  const { cases } = readVectors(fixture('mlp.vectors.json'));
  assertMatches(await model.run(cases[0].feeds), cases[0].outputs.fp32, model, 'options');
  assert.equal(model.info().sessionOptions.graphOptimizationLevel, 'disabled');
  await model.dispose();
});

test('bad load options are refused before the disk is read', async () => {
  const missing = '/nonexistent/bundle';
  await rejectsWith(assert, load(missing, { varaint: 'int8' }), PolyonnxError, 'E_OPTIONS', ["unknown option 'varaint'"]);
  await rejectsWith(assert, load(missing, { intraOpNumThreads: -1 }), PolyonnxError, 'E_OPTIONS', ['intraOpNumThreads']);
  await rejectsWith(assert, load(missing, { graphOptimizationLevel: 'max' }), PolyonnxError, 'E_OPTIONS', ["'all'"]);
  await rejectsWith(assert, load(missing, { providers: 'cpu' }), PolyonnxError, 'E_OPTIONS',
    ['providers must be a non-empty list of provider names, given "cpu"']);
  await rejectsWith(assert, load(missing, { providers: ['gpu'] }), PolyonnxError, 'E_OPTIONS', ["unknown execution provider(s) 'gpu'"]);
  await rejectsWith(assert, load(missing, { fallback: 'auto' }), PolyonnxError, 'E_OPTIONS', ["fallback must be one of 'error', 'cpu'"]);
  await rejectsWith(assert, load(missing, { logSeverityLevel: 9 }), PolyonnxError, 'E_OPTIONS', ['logSeverityLevel']);
  await rejectsWith(assert, run(missing, {}, { outputz: [] }), PolyonnxError, 'E_OPTIONS', ["unknown option 'outputz'"]);
});

test('an unknown variant names the variants there are', async () => {
  await rejectsWith(assert, load(fixture('mlp'), { variant: 'fp16' }), PolyonnxError, 'E_VARIANT', ["no variant 'fp16'", "'fp32', 'int8'"]);
});

test('an execution provider this build lacks is a CompatibilityError, not a crash', async () => {
  await rejectsWith(assert, load(fixture('mlp'), { providers: ['coreml', 'cpu'] }), polyonnx.CompatibilityError, 'E_PROVIDER',
    ["'coreml' is not available in this node install (it has cpu", "fallback 'cpu'"]);
});

test("fallback 'cpu' drops a provider this build lacks, says why, and gives the CPU's answers", async () => {
  const { cases } = readVectors(fixture('mlp.vectors.json'));
  const model = await load(fixture('mlp'), { providers: ['coreml', 'cpu'], fallback: 'cpu' });
  try {
    const info = model.info();
    assert.deepEqual(info.providers, ['cpu']);
    assert.deepEqual(info.providersDropped.map((d) => d.provider), ['coreml']);
    assert.deepEqual(info.sessionOptions.executionProviders, ['cpu']);
    assertMatches(await model.run(cases[0].feeds), cases[0].outputs.fp32, model, 'fallback');
  } finally {
    await model.dispose();
  }
});

test('an execution provider that cannot start is a CompatibilityError naming it', async () => {
  // onnxruntime-node lists 'cuda' but ships no CUDA libraries (postinstall skipped, see .npmrc).
  const listed = ort().listSupportedBackends().map((b) => b.name);
  assert.ok(listed.includes('cuda'), `this build lists ${listed}`);
  await rejectsWith(assert, load(fixture('mlp'), { providers: ['cuda', 'cpu'], logSeverityLevel: 4 }),
    polyonnx.CompatibilityError, 'E_PROVIDER', ["'cuda'", "fallback: 'cpu'"]);
  // With fallback 'cpu' the session is built on the CPU instead, and ONNX Runtime's reason is kept.
  const model = await load(fixture('mlp'), { providers: ['cuda', 'cpu'], fallback: 'cpu', logSeverityLevel: 4 });
  try {
    const info = model.info();
    assert.deepEqual(info.providers, ['cpu']);
    assert.equal(info.providersDropped[0].provider, 'cuda');
    assert.match(info.providersDropped[0].reason, /ONNX Runtime could not start 'cuda'/);
  } finally {
    await model.dispose();
  }
});

test('onnxruntime failures are wrapped in SessionError with the original as cause', async () => {
  const model = await load(fixture('mlp'));
  const backend = require('../../js/backends/node.mjs');
  // Feeds that pass polyonnx's checks but not onnxruntime's: a forged tensor of the wrong dtype.
  const err = await backend.run(model._session, { x: { dtype: 'float64', dims: [1, 4], data: new Float64Array(4) } }, ['y'], 'mlp')
    .then(() => null, (e) => e);
  await model.dispose();
  assert.ok(err instanceof polyonnx.SessionError, String(err));
  assert.equal(err.code, 'E_SESSION');
  assert.equal(err.stage, 'run');
  assert.ok(err.cause instanceof Error);
  assert.ok(err.message.includes(err.cause.message));
});

test('a signal aborts load() and model.run() with E_ABORTED; an unaborted one changes nothing', async () => {
  await rejectsWith(assert, load(fixture('mlp'), { signal: AbortSignal.abort(new Error('shutting down')) }), PolyonnxError,
    'E_ABORTED', ["variant 'fp32' of bundle 'mlp' was aborted by its signal (shutting down)"]);
  const { cases } = readVectors(fixture('mlp.vectors.json'));
  const controller = new AbortController();
  const model = await load(fixture('mlp'), { signal: controller.signal });
  try {
    const out = await model.run(cases[0].feeds, { signal: controller.signal });
    assertMatches(out, cases[0].outputs.fp32, model, 'mlp with a live signal');
    controller.abort();
    await rejectsWith(assert, model.run(cases[0].feeds, { signal: controller.signal }), PolyonnxError, 'E_ABORTED', ['run:']);
    assert.equal(model.info().runs, 1, 'the aborted run never reached onnxruntime-node');
  } finally {
    await model.dispose();
  }
});
