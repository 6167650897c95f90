'use strict';
// Execution-provider choice: js/providers.mjs gives exactly the answers in
// shared-schemas/vectors/providers.json, which python/polyonnx/_providers.py is held to as well.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { chooseProviders, polyonnxNames, providerStartError, PROVIDERS } = require('../../js/providers.mjs');
const vectors = require(path.join(__dirname, '..', '..', 'shared-schemas', 'vectors', 'providers.json'));

for (const c of vectors.cases) {
  test(`providers vector: ${c.why}`, () => {
    const call = () => chooseProviders(c.providers, c.fallback, c.runtime, c.available);
    if (c.expect.error) {
      assert.throws(call, (e) => {
        assert.equal(e.code, c.expect.error);
        assert.equal(e.message, c.expect.message);
        return true;
      });
    } else {
      assert.deepEqual(call(), c.expect);
    }
  });
}

test('every provider in the table maps back to its own name in each runtime that offers it', () => {
  for (const [name, perRuntime] of Object.entries(PROVIDERS)) {
    for (const [runtime, native] of Object.entries(perRuntime)) {
      // cpu and wasm share the browser's 'wasm': the first listed (cpu) is what it maps back to.
      const back = polyonnxNames(runtime, [native]);
      assert.equal(back.length, 1);
      assert.equal(PROVIDERS[back[0]][runtime], native);
    }
  }
});

test('providerStartError: one rule for every backend on which failures are E_PROVIDER (fallback cpu applies)', () => {
  const what = "variant 'fp32' of bundle 'b'";
  // Node: cuda without its libraries; a browser: webgpu without an adapter (onnxruntime-web 1.30's words).
  const cuda = providerStartError(['cuda', 'cpu'], ['cpu'], new Error('libcublasLt.so.12: cannot open shared object file'), what);
  assert.equal(cuda.code, 'E_PROVIDER');
  assert.match(cuda.message, /could not start execution provider\(s\) 'cuda'/);
  assert.deepEqual(cuda.details.providers, ['cuda', 'cpu']);
  const gpu = providerStartError(['webgpu', 'wasm'], ['wasm', 'cpu'],
    new Error('no available backend found. ERR: [webgpu] Error: Failed to get GPU adapter.'), what);
  assert.equal(gpu.code, 'E_PROVIDER');
  assert.match(gpu.message, /'webgpu'/);
  // Only the CPU asked for, or a failure about the model itself: not a provider problem.
  assert.equal(providerStartError(['wasm'], ['wasm', 'cpu'], new Error('no available backend found'), what), null);
  assert.equal(providerStartError(['cuda', 'cpu'], ['cpu'], new Error('Type Error: Type (tensor(int8)) of input parameter'), what), null);
});
