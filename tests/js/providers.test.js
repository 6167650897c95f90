'use strict';
// Execution-provider choice: js/providers.mjs gives exactly the answers in
// shared-schemas/vectors/providers.json, which python/polyonnx/_providers.py is held to as well.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { chooseProviders, polyonnxNames, PROVIDERS } = require('../../js/providers.mjs');
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
