'use strict';
// Feed conversion and checks (js/feeds.js), without a model: every accepted form, every dtype's
// conversion, and every mistake a FeedError must name before onnxruntime sees anything.

const test = require('node:test');
const assert = require('node:assert/strict');

const { prepareFeeds } = require('../../js/feeds.mjs');
const { FeedError, float16FromNumbers } = require('../../js/index.cjs');
const { floatToHalfBits } = require('../../js/tensor.mjs');

const spec = (name, dtype, shape, extra = {}) => ({ name, dtype, shape, ...extra });
const one = (dtype, value, shape = ['n']) => prepareFeeds({ x: value }, [spec('x', dtype, shape)]).tensors.x;

function throwsFeed(fn, ...parts) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof FeedError, `expected FeedError, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.code, 'E_FEED');
    assert.equal(e.stage, 'run');
    assert.ok(e.fix, 'no fix');
    for (const p of parts) assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}: ${e.message}`);
    return true;
  });
}

// --- accepted forms ---------------------------------------------------------------------------

test('nested arrays: dims are inferred and data flattened', () => {
  const t = one('float32', [[1, 2, 3], [4, 5, 6]], ['batch', 3]);
  assert.deepEqual(t.dims, [2, 3]);
  assert.deepEqual(t.data, Float32Array.from([1, 2, 3, 4, 5, 6]));
});

test('nested arrays may end in typed-array rows', () => {
  const t = one('float32', [Float32Array.from([1, 2]), Float32Array.from([3, 4])], ['batch', 2]);
  assert.deepEqual(t.dims, [2, 2]);
  assert.deepEqual(t.data, Float32Array.from([1, 2, 3, 4]));
});

test('{ data, dims } with a typed array is passed through without a copy', () => {
  const data = Float32Array.from([1, 2, 3, 4]);
  const t = one('float32', { data, dims: [2, 2] }, ['batch', 2]);
  assert.equal(t.data, data);
  assert.deepEqual(t.dims, [2, 2]);
});

test('{ data, dims } with a plain array is converted', () => {
  const t = one('int32', { data: [1, 2, 3], dims: [3] });
  assert.deepEqual(t.data, Int32Array.from([1, 2, 3]));
});

test('{ data, dims, dtype } must name the model\'s dtype', () => {
  assert.equal(one('float32', { data: [1], dims: [1], dtype: 'float32' }).dtype, 'float32');
  throwsFeed(() => one('float32', { data: [1], dims: [1], dtype: 'float64' }), "input 'x' is float64", 'expects float32');
});

test('an onnxruntime Tensor is accepted (shape-matched, no onnxruntime import in feeds.js)', () => {
  const { ort } = require('../../js/backends/node.mjs');
  const O = ort();
  const t = one('int64', new O.Tensor('int64', BigInt64Array.from([1n, 2n]), [1, 2]), ['batch', 'seq']);
  assert.deepEqual(t.dims, [1, 2]);
  assert.deepEqual(t.data, BigInt64Array.from([1n, 2n]));
  throwsFeed(() => one('int64', new O.Tensor('int32', Int32Array.from([1, 2]), [2])), "input 'x' is int32", 'expects int64');
  throwsFeed(() => one('float32', { type: 'float32', dims: [1], data: null, location: 'gpu-buffer' }), "on 'gpu-buffer'");
});

test('a bare typed array takes its dims from the manifest when every dim is static', () => {
  const t = prepareFeeds({ img: new Float32Array(12) }, [spec('img', 'float32', [1, 3, 4])]).tensors.img;
  assert.deepEqual(t.dims, [1, 3, 4]);
  throwsFeed(() => prepareFeeds({ img: new Float32Array(11) }, [spec('img', 'float32', [1, 3, 4])]),
    "input 'img' has 11 values", 'need 12');
});

test('a bare typed array is refused when a dim is named, with the dims to pass', () => {
  throwsFeed(() => one('float32', new Float32Array(4), ['batch', 4]), 'named dims', '{ data, dims: [<batch>, 4] }');
});

test('a scalar feeds a rank-0 input', () => {
  const t = prepareFeeds({ t: 0.5 }, [spec('t', 'float32', [])]).tensors.t;
  assert.deepEqual(t.dims, []);
  assert.deepEqual(t.data, Float32Array.from([0.5]));
  throwsFeed(() => one('float32', 0.5), 'single number', 'shape [n]');
});

// --- conversions per dtype ---------------------------------------------------------------------

test('int64: numbers and bigints become a BigInt64Array', () => {
  const t = one('int64', [1, -2, 3n, Number.MAX_SAFE_INTEGER, -(2n ** 63n)]);
  assert.ok(t.data instanceof BigInt64Array);
  assert.deepEqual(Array.from(t.data), [1n, -2n, 3n, BigInt(Number.MAX_SAFE_INTEGER), -(2n ** 63n)]);
});

test('int64: non-integers, unsafe numbers and out-of-range bigints are refused', () => {
  throwsFeed(() => one('int64', [1, 2.5]), 'x[1] = 2.5', 'not an integer');
  throwsFeed(() => one('int64', [2 ** 53]), 'x[0] = 9007199254740992', 'MAX_SAFE_INTEGER', 'BigInt');
  throwsFeed(() => one('int64', [-(2 ** 60)]), 'MAX_SAFE_INTEGER');
  throwsFeed(() => one('int64', [2n ** 63n]), 'outside the int64 range');
  throwsFeed(() => one('int64', [NaN]), 'not an integer');
  throwsFeed(() => one('int64', ['7']), '"7" (string)', 'not a valid int64');
  throwsFeed(() => one('int64', [true]), 'true (boolean)');
});

test('uint64: becomes a BigUint64Array; negatives are refused', () => {
  const t = one('uint64', [0, 5n, 2n ** 64n - 1n]);
  assert.ok(t.data instanceof BigUint64Array);
  assert.deepEqual(Array.from(t.data), [0n, 5n, 2n ** 64n - 1n]);
  throwsFeed(() => one('uint64', [-1]), 'outside the uint64 range');
});

test('bool: booleans and 0/1 become a Uint8Array of 0/1', () => {
  const t = one('bool', [[true, false], [1, 0]], ['b', 2]);
  assert.ok(t.data instanceof Uint8Array);
  assert.deepEqual(Array.from(t.data), [1, 0, 1, 0]);
  throwsFeed(() => one('bool', [2]), 'x[0] = 2', 'true/false');
  throwsFeed(() => one('bool', ['yes']), 'not a valid bool');
  throwsFeed(() => one('bool', { data: Uint8Array.from([0, 3]), dims: [2] }), 'x[1] = 3', 'only 0 and 1');
});

test('float16: numbers become half bits; Uint16Array is taken as bits', () => {
  const t = one('float16', [1, -2.5, 0.1]);
  assert.ok(t.data instanceof Uint16Array);
  assert.deepEqual(Array.from(t.data), [1, -2.5, 0.1].map(floatToHalfBits));
  const bits = float16FromNumbers([3, 4]);
  assert.equal(one('float16', { data: bits, dims: [2] }).data, bits);
  throwsFeed(() => one('float16', { data: Float32Array.from([1]), dims: [1] }), 'expects float16 data', 'given Float32Array');
  throwsFeed(() => one('float16', ['1']), 'pass numbers');
});

test('float16: a Float16Array (Node 24) is viewed as its bits', { skip: typeof globalThis.Float16Array === 'undefined' ? `Float16Array is not in Node ${process.version} (runs on Node 24: tests/js/float16.test.js)` : false }, () => {
  const f = new globalThis.Float16Array([1, 0.5]);
  const t = one('float16', { data: f, dims: [2] });
  assert.ok(t.data instanceof Uint16Array);
  assert.deepEqual(Array.from(t.data), [1, 0.5].map(floatToHalfBits));
});

test('every integer dtype converts in range and refuses out of range', () => {
  const cases = { int8: [Int8Array, -128, 127], uint8: [Uint8Array, 0, 255], int16: [Int16Array, -32768, 32767],
    uint16: [Uint16Array, 0, 65535], int32: [Int32Array, -(2 ** 31), 2 ** 31 - 1], uint32: [Uint32Array, 0, 2 ** 32 - 1] };
  for (const [dtype, [Arr, lo, hi]] of Object.entries(cases)) {
    const t = one(dtype, [lo, hi, BigInt(lo)]);
    assert.ok(t.data instanceof Arr, dtype);
    assert.deepEqual(Array.from(t.data), [lo, hi, lo], dtype);
    throwsFeed(() => one(dtype, [hi + 1]), `outside the ${dtype} range`);
    throwsFeed(() => one(dtype, [lo - 1]), `outside the ${dtype} range`);
    throwsFeed(() => one(dtype, [0.5]), 'not an integer');
  }
});

test('uint8 accepts a Uint8ClampedArray (image data) as a view', () => {
  const c = Uint8ClampedArray.from([1, 255]);
  const t = one('uint8', { data: c, dims: [2] });
  assert.ok(t.data instanceof Uint8Array);
  assert.equal(t.data.buffer, c.buffer);
});

test('float32 and float64: numbers only', () => {
  assert.deepEqual(one('float64', [0.1, -1e300]).data, Float64Array.from([0.1, -1e300]));
  assert.ok(Number.isNaN(one('float32', [NaN]).data[0]));
  throwsFeed(() => one('float32', [1n]), '1n (bigint)', 'pass numbers');
  throwsFeed(() => one('float32', [null]), 'null');
});

test('string: an array of strings', () => {
  assert.deepEqual(one('string', [['a', 'b']], ['b', 2]).data, ['a', 'b']);
  throwsFeed(() => one('string', [1]), 'not a valid string');
});

test('a typed array of the wrong type is refused, naming expected and given', () => {
  throwsFeed(() => one('int64', { data: Int32Array.from([1]), dims: [1] }), "input 'x' expects int64 data (BigInt64Array)", 'given Int32Array', 'BigInt64Array.from');
  throwsFeed(() => one('float32', { data: Float64Array.from([1]), dims: [1] }), 'given Float64Array');
  throwsFeed(() => one('bool', { data: Int8Array.from([1]), dims: [1] }), 'expects bool data (Uint8Array)');
});

// --- shape checks -------------------------------------------------------------------------------

const TOKENS = [spec('input_ids', 'int64', ['batch', 'seq'], { value_range: [0, 49] }), spec('attention_mask', 'bool', ['batch', 'seq'])];
const DIMS = { batch: { example: 2, verified: [1, 2] }, seq: { example: 5, verified: [5], min: 1, max: 8 } };

test('two inputs sharing a dim: sizes are returned', () => {
  const { sizes } = prepareFeeds({ input_ids: [[1, 2, 3]], attention_mask: [[true, true, false]] }, TOKENS, DIMS);
  assert.deepEqual(sizes, { batch: 1, seq: 3 });
});

test('a named dim taking two sizes in one call is refused, naming both inputs', () => {
  throwsFeed(() => prepareFeeds({ input_ids: [[1, 2], [3, 4], [5, 6]], attention_mask: [[1, 1], [1, 1]] }, TOKENS, DIMS),
    "'batch' is 2 in attention_mask but 3 in input_ids");
});

test('missing and unknown inputs are listed together, with the expected names', () => {
  throwsFeed(() => prepareFeeds({ input_ids: [[1]], mask: [[1]] }, TOKENS, DIMS),
    "missing input 'attention_mask'", "unknown input 'mask'", "'input_ids', 'attention_mask'");
});

test('feeds must be an object keyed by name, not an array', () => {
  throwsFeed(() => prepareFeeds([[[1]], [[1]]], TOKENS, DIMS), 'given an array', 'never by position');
  throwsFeed(() => prepareFeeds(null, TOKENS, DIMS), 'given null');
});

test('undefined and null feeds name the input', () => {
  throwsFeed(() => prepareFeeds({ input_ids: undefined, attention_mask: [[1]] }, TOKENS, DIMS), "input 'input_ids' is undefined");
});

test('wrong rank names given and expected', () => {
  throwsFeed(() => prepareFeeds({ input_ids: [1, 2], attention_mask: [[1, 1]] }, TOKENS, DIMS),
    "input 'input_ids' has rank 1 (dims [2])", 'expects rank 2 [batch, seq]');
  throwsFeed(() => one('float32', { data: [1, 2], dims: [1, 2] }, ['n']), 'rank 2', 'pass 1 dims');
});

test('a static dim that differs is refused', () => {
  throwsFeed(() => one('float32', [[1, 2, 3]], ['batch', 4]), "input 'x' axis 1 is 3", 'fixes it to 4');
});

test('a dim outside the declared min/max is refused', () => {
  const ids = [Array(9).fill(1)];
  throwsFeed(() => prepareFeeds({ input_ids: ids, attention_mask: [Array(9).fill(1)] }, TOKENS, DIMS), "'seq' is 9", 'above its maximum 8');
});

test('data length must equal the product of dims', () => {
  throwsFeed(() => one('float32', { data: Float32Array.from([1, 2, 3]), dims: [2, 2] }, ['a', 'b']), 'has 3 values', 'dims [2, 2] need 4');
  throwsFeed(() => one('float32', { data: [1, 2, 3], dims: [2] }), 'has 3 values');
});

test('dims must be non-negative integers', () => {
  throwsFeed(() => one('float32', { data: [1], dims: [-1] }), 'not a list of non-negative integers');
  throwsFeed(() => one('float32', { data: [1], dims: [1.5] }), 'not a list of non-negative integers');
});

test('ragged nested arrays are refused, naming the row', () => {
  throwsFeed(() => one('float32', [[1, 2], [3]], ['a', 'b']), 'ragged', 'x[1] has 1 items', 'x[0] has 2');
  throwsFeed(() => one('float32', [[1, 2], 3], ['a', 'b']), 'ragged', 'x[1] is a number');
  throwsFeed(() => one('float32', [1, [2]], ['a']), 'ragged', 'x[1] is a list');
});

test('values outside value_range are refused, naming the position', () => {
  throwsFeed(() => prepareFeeds({ input_ids: [[1, 50]], attention_mask: [[1, 1]] }, TOKENS, DIMS),
    'input_ids[0][1] = 50 is outside its value_range [0, 49]');
  throwsFeed(() => prepareFeeds({ input_ids: { data: BigInt64Array.from([-1n]), dims: [1, 1] }, attention_mask: [[1]] }, TOKENS, DIMS),
    'value_range');
});

test('an empty axis is allowed where the bundle says min 0, and refused by default', () => {
  const t = prepareFeeds({ x: { data: [], dims: [0] } }, [spec('x', 'float32', ['n'])],
    { n: { example: 2, verified: [0, 2], min: 0 } }).tensors.x;
  assert.equal(t.data.length, 0);
  // A zero-length axis aborts some ONNX Runtime kernels (GRU): a missing min is 1.
  throwsFeed(() => one('float32', { data: [], dims: [0] }), "'n' is 0, below its minimum 1");
});

test('an object that is neither a tensor nor { data, dims } is refused', () => {
  throwsFeed(() => one('float32', { values: [1] }), "without 'data' and 'dims'");
  throwsFeed(() => one('float32', new DataView(new ArrayBuffer(4))), 'DataView');
});

test('a typed array over a SharedArrayBuffer is copied into a plain buffer (onnxruntime refuses shared ones)', () => {
  const shared = new Float32Array(new SharedArrayBuffer(12));
  shared.set([1, 2, 3]);
  const t = one('float32', { data: shared, dims: [3] });
  assert.ok(!(t.data.buffer instanceof SharedArrayBuffer));
  assert.deepEqual(Array.from(t.data), [1, 2, 3]);
});

test('an integer input with a fractional value_range is checked, not a RangeError (issue #11 item 11)', () => {
  const spec = { name: 'ids', dtype: 'int64', shape: [2], value_range: [0.5, 99] };
  const t = prepareFeeds({ ids: [1, 99] }, [spec]).tensors.ids;
  assert.deepEqual(Array.from(t.data), [1n, 99n]);
  throwsFeed(() => prepareFeeds({ ids: [0, 1] }, [spec]), 'ids[0] = 0 is outside its value_range [0.5, 99]');
});
