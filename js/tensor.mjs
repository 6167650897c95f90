// Tensor plumbing shared by every runtime: the dtype table, float16 <-> number, nested arrays.
// No Node-only imports: the browser build reuses this module.

import { PolyonnxError, CODES } from './errors.mjs';

// The manifest's dtype words (ONNX Runtime JS type strings) and the typed array that holds each.
// float16 travels as its IEEE bits in a Uint16Array: onnxruntime-node 1.30 reads float16 from a
// Uint16Array only (see backends/node.mjs), and Float16Array is not in Node 18/20.
const DTYPES = Object.freeze({
  float32: { array: Float32Array, kind: 'float' },
  float64: { array: Float64Array, kind: 'float' },
  float16: { array: Uint16Array, kind: 'float16' },
  int8: { array: Int8Array, kind: 'int', min: -128, max: 127 },
  uint8: { array: Uint8Array, kind: 'int', min: 0, max: 255 },
  int16: { array: Int16Array, kind: 'int', min: -32768, max: 32767 },
  uint16: { array: Uint16Array, kind: 'int', min: 0, max: 65535 },
  int32: { array: Int32Array, kind: 'int', min: -2147483648, max: 2147483647 },
  uint32: { array: Uint32Array, kind: 'int', min: 0, max: 4294967295 },
  int64: { array: BigInt64Array, kind: 'bigint', min: -(2n ** 63n), max: 2n ** 63n - 1n },
  uint64: { array: BigUint64Array, kind: 'bigint', min: 0n, max: 2n ** 64n - 1n },
  bool: { array: Uint8Array, kind: 'bool' },
  string: { array: Array, kind: 'string' },
});

function product(dims) {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** IEEE half bits of a number, rounding the double directly (to nearest, ties to even) as numpy does. */
function floatToHalfBits(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  let e = Math.floor(Math.log2(a));
  // Math.log2 may be one off next to a power of two; powers of two are exact in a double.
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  if (e < -14) {
    // subnormal: a multiple of 2^-24 (a mantissa of 1024 rounds up into the smallest normal, 0x400)
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundHalfEven(v) {
  const fl = Math.floor(v);
  const diff = v - fl; // exact: v < 2^53
  if (diff > 0.5) return fl + 1;
  if (diff < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** The number that IEEE half bits `h` stand for. */
function halfBitsToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Numbers -> Uint16Array of half bits. */
function float16FromNumbers(values) {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]);
  return out;
}

/** Uint16Array of half bits -> Float32Array of their values (exact: every half is a float32). */
function float16ToFloat32(bits) {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsToFloat(bits[i]);
  return out;
}

/**
 * A result `{ dtype, dims, data }` as nested JS arrays (a bare value for rank 0).
 * float16 bits become numbers, bool bytes become booleans; int64/uint64 stay BigInt unless
 * `{ int64: 'number' }`, which converts and throws on a value beyond Number.MAX_SAFE_INTEGER.
 * @param {{dtype: string, dims: readonly number[], data: ArrayLike<any>}} result
 * @param {{int64?: 'bigint'|'number'}} [options]
 */
function toNested(result, options = {}) {
  if (!result || typeof result !== 'object' || !Array.isArray(result.dims) || result.data == null) {
    throw new PolyonnxError('run', 'toNested() takes one output, an object { dtype, dims, data }',
      'pass e.g. toNested(out.logits), not the whole result object', { code: CODES.OPTIONS });
  }
  const { dtype, dims, data } = result;
  const int64 = options.int64 || 'bigint';
  if (int64 !== 'bigint' && int64 !== 'number') {
    throw new PolyonnxError('run', `toNested() option int64 is '${int64}'`, "use 'bigint' or 'number'",
      { code: CODES.OPTIONS });
  }
  let item;
  if (dtype === 'float16') item = (i) => halfBitsToFloat(data[i]);
  else if (dtype === 'bool') item = (i) => data[i] !== 0;
  else if ((dtype === 'int64' || dtype === 'uint64') && int64 === 'number') {
    item = (i) => {
      const v = data[i];
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new PolyonnxError('run', `${dtype} value ${v} at flat index ${i} is beyond Number.MAX_SAFE_INTEGER`,
          "keep the default { int64: 'bigint' } for this output", { code: CODES.OPTIONS });
      }
      return Number(v);
    };
  } else item = (i) => data[i];
  if (dims.length === 0) return item(0);
  let pos = 0;
  const build = (axis) => {
    const out = new Array(dims[axis]);
    for (let j = 0; j < dims[axis]; j++) out[j] = axis === dims.length - 1 ? item(pos++) : build(axis + 1);
    return out;
  };
  return build(0);
}

/**
 * An onnxruntime Tensor as every backend hands results out: { dtype, dims, data }. float16 is
 * always its Uint16Array bits, also where the runtime made a Float16Array (Node 24's global one).
 * `data` defaults to the tensor's own (a WebGPU output passes what it downloaded).
 */
function fromOrtTensor(tensor, data = tensor.data) {
  const F16 = globalThis.Float16Array;
  const plain = tensor.type === 'float16' && F16 && data instanceof F16
    ? new Uint16Array(data.buffer, data.byteOffset, data.length) : data;
  return { dtype: tensor.type, dims: Array.from(tensor.dims), data: plain };
}

export {
  DTYPES, product, floatToHalfBits, halfBitsToFloat, float16FromNumbers, float16ToFloat32, toNested, fromOrtTensor,
};
