'use strict';
// float16 conversion against numpy's rounding (float16.json from make_fixtures.py), and toNested.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');

const { toNested, float16FromNumbers, float16ToFloat32 } = require('../../js/index.cjs');
const { floatToHalfBits, halfBitsToFloat } = require('../../js/tensor.mjs');
const { fixture, decodeTensor } = require('./_helpers');

const table = JSON.parse(fs.readFileSync(fixture('float16.json'), 'utf8'));
const values = decodeTensor(table.values).data;
const bits = decodeTensor(table.bits).data;

test('floatToHalfBits rounds every double in the table exactly as numpy does', () => {
  assert.ok(values.length > 1000);
  const wrong = [];
  values.forEach((v, i) => {
    const got = floatToHalfBits(v);
    // NaN payloads may differ; any NaN is fine for a NaN
    const ok = Number.isNaN(v) ? (got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0 : got === bits[i];
    if (!ok) wrong.push(`${v} -> 0x${got.toString(16)}, numpy 0x${bits[i].toString(16)}`);
  });
  assert.deepEqual(wrong.slice(0, 5), []);
});

test('halfBitsToFloat inverts floatToHalfBits for every finite half', () => {
  for (let h = 0; h < 0x10000; h++) {
    const e = (h >> 10) & 0x1f;
    if (e === 31) continue;
    assert.equal(floatToHalfBits(halfBitsToFloat(h)), h);
  }
  assert.ok(Number.isNaN(halfBitsToFloat(0x7e00)));
  assert.equal(halfBitsToFloat(0xfc00), -Infinity);
});

test('float16FromNumbers and float16ToFloat32 round-trip halves', () => {
  const halves = float16ToFloat32(bits.filter((b) => ((b >> 10) & 0x1f) !== 31));
  assert.deepEqual(float16FromNumbers(Array.from(halves)), bits.filter((b) => ((b >> 10) & 0x1f) !== 31));
});

test('toNested builds nested arrays from dims', () => {
  const r = { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  assert.deepEqual(toNested(r), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(toNested({ dtype: 'float32', dims: [1, 2, 1], data: Float32Array.from([7, 8]) }), [[[7], [8]]]);
  assert.deepEqual(toNested({ dtype: 'float32', dims: [2, 0], data: new Float32Array(0) }), [[], []]);
  assert.equal(toNested({ dtype: 'float64', dims: [], data: Float64Array.from([2.5]) }), 2.5);
});

test('toNested decodes float16 bits and bool bytes', () => {
  const f16 = { dtype: 'float16', dims: [3], data: float16FromNumbers([1, -2.5, 65504]) };
  assert.deepEqual(toNested(f16), [1, -2.5, 65504]);
  assert.deepEqual(toNested({ dtype: 'bool', dims: [1, 3], data: Uint8Array.from([1, 0, 1]) }), [[true, false, true]]);
});

test('toNested keeps int64 as BigInt unless asked for numbers, and refuses unsafe numbers', () => {
  const r = { dtype: 'int64', dims: [2], data: BigInt64Array.from([3n, -4n]) };
  assert.deepEqual(toNested(r), [3n, -4n]);
  assert.deepEqual(toNested(r, { int64: 'number' }), [3, -4]);
  const big = { dtype: 'uint64', dims: [1], data: BigUint64Array.from([2n ** 60n]) };
  assert.throws(() => toNested(big, { int64: 'number' }), (e) => e.code === 'E_OPTIONS' && /MAX_SAFE_INTEGER/.test(e.message));
});

test('toNested refuses the whole results object with a hint', () => {
  assert.throws(() => toNested({ logits: {} }), (e) => e.code === 'E_OPTIONS' && /toNested\(out.logits\)/.test(e.message));
});
