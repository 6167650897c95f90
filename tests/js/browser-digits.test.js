'use strict';
// The demo page's digit preprocessing (js/demo/digits.mjs): strokes -> 8x8 counts like
// scikit-learn's digits (taller side scaled to 32 px, 4x4 blocks counted, 0..16).

const test = require('node:test');
const assert = require('node:assert/strict');

const load = () => import('../../js/demo/digits.mjs');

test('nothing drawn is all zeros', async () => {
  const { strokesToDigit } = await load();
  assert.deepEqual(strokesToDigit([]).counts, new Array(64).fill(0));
});

test('a vertical stroke spans all 8 rows, centred, like every scikit-learn digit', async () => {
  const { strokesToDigit } = await load();
  const { counts } = strokesToDigit([[[150, 40], [150, 260]]]);
  for (let r = 0; r < 8; r++) {
    const row = counts.slice(r * 8, r * 8 + 8);
    assert.ok(row[3] + row[4] > 0, `row ${r} has ink in the middle columns: ${row}`);
    assert.equal(row[0] + row[1] + row[6] + row[7], 0, `row ${r} has no ink at the sides: ${row}`);
  }
});

test('the counts do not depend on where or how large the digit was drawn', async () => {
  const { strokesToDigit } = await load();
  const seven = [[[10, 10], [60, 10], [30, 90]], [[20, 50], [50, 50]]];
  const big = seven.map((s) => s.map(([x, y]) => [x * 3 + 100, y * 3 + 7]));
  assert.deepEqual(strokesToDigit(big).counts, strokesToDigit(seven).counts);
});

test('each count is the ink of one 4x4 block of the 32x32 bitmap, 0..16', async () => {
  const { strokesToDigit, countsToPixels } = await load();
  const { counts, bitmap } = strokesToDigit([[[0, 0], [100, 120]], [[100, 0], [0, 120]], [[50, 60]]]);
  assert.equal(counts.reduce((a, b) => a + b, 0), bitmap.reduce((a, b) => a + b, 0));
  assert.ok(counts.every((v) => Number.isInteger(v) && v >= 0 && v <= 16));
  assert.ok(counts.some((v) => v > 8), 'where the strokes cross, a block is mostly ink');
  const px = countsToPixels(counts);
  assert.ok(px instanceof Float32Array && px.every((v, i) => v === counts[i] / 16));
});

test('softmax is stable for large logits and sums to 1', async () => {
  const { softmax } = await load();
  const p = softmax([1000, 1001, 999]);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(p[1] > p[0] && p[0] > p[2]);
});
