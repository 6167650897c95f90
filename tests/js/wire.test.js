'use strict';
// js/wire.js against the language-neutral vectors in shared-schemas/vectors/ (Python's
// tests/python/test_wire.py checks python/polyonnx/wire.py against the same files).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { PassThrough } = require('node:stream');
const Ajv2020 = require('ajv/dist/2020').default;

const wire = require('../../js/wire.mjs');
const { DTYPES, halfBitsToFloat } = require('../../js/tensor.mjs');

const VECTORS = path.join(__dirname, '..', '..', 'shared-schemas', 'vectors');
const tensorCases = require(path.join(VECTORS, 'tensors.json')).cases;
const messages = require(path.join(VECTORS, 'messages.json'));
const schema = require('../../shared-schemas/wire.schema.json');

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
const SPECIAL = { NaN, Infinity, '-Infinity': -Infinity };

// The vector's JSON values as the typed array a JS caller would hold.
function typedFromValues(c) {
  if (c.dtype === 'string') return c.values.slice();
  if (c.dtype === 'float16') return new Uint16Array(new Uint8Array(Buffer.from(c.data_hex, 'hex')).buffer); // bits
  const Ctor = DTYPES[c.dtype].array;
  if (c.dtype === 'int64' || c.dtype === 'uint64') return Ctor.from(c.values.map(BigInt));
  if (c.dtype === 'bool') return Uint8Array.from(c.values.map((v) => (v ? 1 : 0)));
  return Ctor.from(c.values.map((v) => (typeof v === 'string' ? SPECIAL[v] : v)));
}

// Decode a hex string into a Buffer that starts at an odd offset of its ArrayBuffer, the way
// msgpack hands out bin slices: decodeTensor must copy before building a typed array.
function unaligned(hexString) {
  const bytes = Buffer.from(hexString, 'hex');
  const backing = new Uint8Array(bytes.length + 1);
  backing.set(bytes, 1);
  return Buffer.from(backing.buffer, 1, bytes.length);
}

function unhex(obj) {
  if (Array.isArray(obj)) return obj.map(unhex);
  if (obj && typeof obj === 'object') {
    if (Object.keys(obj).length === 1 && typeof obj.$hex === 'string') return new Uint8Array(Buffer.from(obj.$hex, 'hex'));
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unhex(v)]));
  }
  return obj;
}

// Back to the vectors' JSON form: bins (Buffer or Uint8Array views) as {$hex}.
function rehex(obj) {
  if (obj instanceof Uint8Array) return { $hex: hex(obj) };
  if (Array.isArray(obj)) return obj.map(rehex);
  if (obj && typeof obj === 'object') return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, rehex(v)]));
  return obj;
}

for (const c of tensorCases) {
  test(`tensor vector ${c.name}: encodeFrame(encodeTensor(...)) gives the vector's bytes`, () => {
    const frame = wire.encodeFrame(wire.encodeTensor({ dtype: c.dtype, dims: c.shape, data: typedFromValues(c) }));
    assert.equal(frame.toString('hex'), c.frame_hex);
  });

  test(`tensor vector ${c.name}: decodeTensor reads the vector's values from an unaligned frame`, () => {
    const t = wire.decodeTensor(wire.decodeFrame(unaligned(c.frame_hex)));
    assert.equal(t.dtype, c.dtype);
    assert.deepEqual(t.dims, c.shape);
    if (c.dtype === 'string') {
      assert.deepEqual(t.data, c.values);
      return;
    }
    assert.ok(t.data instanceof DTYPES[c.dtype].array, `${c.dtype} decodes to ${DTYPES[c.dtype].array.name}`);
    assert.equal(t.data.byteOffset, 0);
    assert.equal(hex(t.data), c.data_hex);
    const got = Array.from(t.data, (v, i) => {
      if (c.dtype === 'float16') return halfBitsToFloat(v);
      if (c.dtype === 'bool') return v === 1;
      if (typeof v === 'bigint') return v.toString();
      return v;
    });
    const want = c.values.map((v) => (typeof v === 'string' && c.dtype.startsWith('float') ? SPECIAL[v] : v));
    got.forEach((v, i) => {
      if (typeof want[i] === 'number' && c.dtype === 'float32') assert.ok(Object.is(v, Math.fround(want[i])), `${c.name}[${i}]`);
      else assert.ok(Object.is(v, want[i]) || v === want[i], `${c.name}[${i}]: ${v} vs ${want[i]}`);
    });
  });
}

test('the wire schema compiles in strict ajv', () => {
  new Ajv2020({ strict: true, allErrors: true }).compile(schema);
});

const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);

for (const v of messages.valid) {
  test(`message vector ${v.name}: schema accepts it and encodeFrame gives its bytes`, () => {
    const msg = unhex(v.message);
    assert.ok(validate(msg), JSON.stringify(validate.errors));
    assert.equal(wire.encodeFrame(msg).toString('hex'), v.frame_hex);
    assert.deepEqual(rehex(wire.decodeFrame(unaligned(v.frame_hex))), v.message);
  });
}

for (const v of messages.invalid) {
  test(`message vector rejected by the schema: ${v.why}`, () => {
    assert.equal(validate(unhex(v.message)), false);
  });
}

test('FrameReader splits frames delivered one byte at a time and many at once', () => {
  const frames = tensorCases.map((c) => Buffer.from(c.frame_hex, 'hex'));
  const all = Buffer.concat(frames);
  const byByte = new wire.FrameReader();
  const bodies = [];
  for (let i = 0; i < all.length; i++) bodies.push(...byByte.push(all.subarray(i, i + 1)));
  assert.equal(bodies.length, frames.length);
  assert.equal(byByte.pending, 0);
  const atOnce = new wire.FrameReader().push(all);
  assert.deepEqual(atOnce.map((b) => b.toString('hex')), frames.map((f) => f.subarray(4).toString('hex')));
});

test('readFrames yields each body of a stream and a large frame arrives whole', async () => {
  const big = new Float32Array(1 << 20).map((_, i) => i * 0.5);
  const stream = new PassThrough();
  const frame = wire.encodeFrame({ t: wire.encodeTensor({ dtype: 'float32', dims: [big.length], data: big }) });
  for (let i = 0; i < frame.length; i += 65536) stream.write(frame.subarray(i, i + 65536));
  stream.end(wire.encodeFrame({ id: 1 }));
  const got = [];
  for await (const body of wire.readFrames(stream)) got.push(wire.unpack(body));
  assert.equal(got.length, 2);
  assert.deepEqual(wire.decodeTensor(got[0].t).data, big);
  assert.deepEqual(got[1], { id: 1 });
});

test('a text header is reported as text in the frame stream, not as a huge allocation', () => {
  assert.throws(() => new wire.FrameReader().push(Buffer.from('hello from a library\n')),
    (e) => e.code === 'E_WIRE' && /printed text/.test(e.message));
});

test('decodeTensor rejects data whose length does not match the shape', () => {
  assert.throws(() => wire.decodeTensor({ dtype: 'float32', shape: [3], data: new Uint8Array(8) }),
    (e) => e instanceof wire.WireError && /needs 12 bytes, got 8/.test(e.message));
});

test('encodeTensor accepts an onnxruntime-style tensor { type, dims, data }', () => {
  const t = wire.encodeTensor({ type: 'int64', dims: [2], data: BigInt64Array.from([1n, -1n]) });
  assert.equal(t.dtype, 'int64');
  assert.deepEqual(t.shape, [2]);
  assert.equal(hex(t.data), '0100000000000000ffffffffffffffff');
});
