// The worker protocol's bytes: tensors <-> msgpack maps, messages <-> length-prefixed frames.
// Mirror of python/polyonnx/wire.py (same names, camelCase); the contract is
// shared-schemas/wire.schema.json and WIRE.md, and both sides check shared-schemas/vectors/.
//
// A frame is a 4-byte little-endian uint32 body length, then a msgpack body. A tensor is
// { dtype, shape, data } with data the row-major little-endian bytes (msgpack bin), or an array
// of strings for dtype 'string'. Decoded tensors come back as { dtype, dims, data }, the shape
// the JS runtime's results use (js/tensor.mjs), with data a typed array that owns its memory.

import { createRequire } from 'node:module';

import { DTYPES, product } from './tensor.mjs';
import { PolyonnxError } from './errors.mjs';

// Through require(), not import: a pip-installed polyonnx finds the worker's packages in a
// per-user folder named by NODE_PATH (python/polyonnx/_node.py), which ES module imports ignore.
const { Encoder, Decoder } = createRequire(import.meta.url)('@msgpack/msgpack');

const HEADER_BYTES = 4;
// 512 MiB: see wire.py. Text read as a header has a printable byte (>= 0x20) on top, which makes
// a length of at least 512 MiB, so printed text is caught at once instead of awaited forever.
const MAX_FRAME_BYTES = 2 ** 29;

// Typed arrays use the machine's byte order and the wire is little-endian. Every platform Node
// runs polyonnx on is little-endian; refuse loudly rather than swap bytes untested.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('polyonnx wire: big-endian machines are not supported (the wire is little-endian)');
}

class WireError extends PolyonnxError {
  constructor(message, fix, details) {
    super('wire', message, fix, { code: 'E_WIRE', details });
  }
}
WireError.code = 'E_WIRE';

const encoder = new Encoder({ ignoreUndefined: true });

/**
 * The DTYPES entry for a dtype word, or a WireError. An own-property lookup: 'constructor',
 * 'toString' or '__proto__' found Object.prototype's members and failed later as a TypeError,
 * answered as E_INTERNAL (issue #11).
 */
function dtypeEntry(dtype) {
  if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPES, dtype)) {
    const shown = typeof dtype === 'string' ? `'${dtype}'` : JSON.stringify(dtype) ?? typeof dtype;
    throw new WireError(`unknown tensor dtype ${shown}`, `use one of ${Object.keys(DTYPES).join(', ')}`);
  }
  return DTYPES[dtype];
}

/**
 * `value` with every lone surrogate in its strings replaced by U+FFFD: msgpack's encoder writes
 * them as bytes that are not UTF-8, and Python cannot decode such a reply (issue #11). Strings
 * reach here from errors that quote a request; typed arrays and bins are left alone. Returns
 * `value` itself when nothing needed replacing.
 */
function wellFormed(value) {
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  if (Array.isArray(value)) {
    let out = value;
    for (let i = 0; i < value.length; i++) {
      const v = wellFormed(value[i]);
      if (v !== value[i]) {
        if (out === value) out = value.slice();
        out[i] = v;
      }
    }
    return out;
  }
  let out = value;
  for (const [k, v] of Object.entries(value)) {
    const key = wellFormed(k);
    const fixed = wellFormed(v);
    if (key !== k || fixed !== v) {
      if (out === value) out = { ...value };
      if (key !== k) delete out[k];
      out[key] = fixed;
    }
  }
  return out;
}
const decoder = new Decoder();

/**
 * { dtype, dims|shape, data } (or an onnxruntime Tensor: { type, dims, data }) -> the wire map.
 * The bytes are viewed, not copied: the msgpack encoder copies them once into the frame.
 */
function encodeTensor(tensor) {
  if (!tensor || typeof tensor !== 'object') throw new WireError(`a tensor must be an object, got ${typeof tensor}`);
  const dtype = tensor.dtype || tensor.type;
  const shape = Array.from(tensor.shape || tensor.dims || [], Number);
  const entry = dtypeEntry(dtype);
  const count = product(shape);
  const { data } = tensor;
  if (dtype === 'string') {
    if (!Array.isArray(data) || data.length !== count || !data.every((s) => typeof s === 'string')) {
      throw new WireError(`string tensor of shape [${shape}] needs an array of ${count} strings`);
    }
    const bad = data.findIndex((s) => !s.isWellFormed());
    if (bad >= 0) {
      throw new WireError(`string tensor element ${bad} holds a lone surrogate, which UTF-8 cannot carry`,
        'pass well-formed strings (String.prototype.toWellFormed() replaces lone surrogates with U+FFFD)');
    }
    return { dtype, shape, data: Array.from(data) };
  }
  if (!ArrayBuffer.isView(data) || data.length !== count) {
    throw new WireError(`${dtype} tensor of shape [${shape}] needs a typed array of ${count} values`,
      `got ${data && data.constructor ? data.constructor.name : typeof data} of length ${data && data.length}`);
  }
  // Bytes per element from the dtype, not from the array: float16 may arrive as a Uint16Array
  // or (Node 24+) a Float16Array, both 2 bytes.
  const size = entry.array.BYTES_PER_ELEMENT;
  if (data.byteLength !== count * size) {
    throw new WireError(`${dtype} tensor data has ${data.byteLength} bytes, expected ${count * size}`);
  }
  let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'bool' && bytes.some((b) => b > 1)) bytes = bytes.map((b) => (b ? 1 : 0));
  return { dtype, shape, data: bytes };
}

/** The wire map -> { dtype, dims, data } with data a fresh, aligned typed array (or string[]). */
function decodeTensor(obj) {
  if (!obj || typeof obj !== 'object' || !('dtype' in obj) || !('shape' in obj) || !('data' in obj)) {
    throw new WireError('a tensor must be a map with dtype, shape and data');
  }
  const { dtype, shape, data } = obj;
  const entry = dtypeEntry(dtype);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new WireError(`tensor shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const count = product(shape);
  const dims = shape.slice();
  if (dtype === 'string') {
    if (!Array.isArray(data) || data.length !== count || !data.every((s) => typeof s === 'string')) {
      throw new WireError(`string tensor of shape [${shape}] needs an array of ${count} strings`);
    }
    return { dtype, dims, data: data.slice() };
  }
  if (!(data instanceof Uint8Array)) {
    throw new WireError(`${dtype} tensor data must be msgpack bin, got ${Array.isArray(data) ? 'an array' : typeof data}`);
  }
  const Ctor = entry.array;
  if (data.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new WireError(`${dtype} tensor of shape [${shape}] needs ${count * Ctor.BYTES_PER_ELEMENT} bytes, got ${data.byteLength}`,
      undefined, { dtype, shape, bytes: data.byteLength });
  }
  // Copy into a fresh ArrayBuffer: the decoder hands out a view into the frame at any byte
  // offset, and a Float32Array / BigInt64Array over an unaligned offset throws a RangeError.
  const own = new Uint8Array(data);
  if (dtype === 'bool') {
    for (let i = 0; i < own.length; i++) if (own[i] > 1) own[i] = 1;
  }
  return { dtype, dims, data: new Ctor(own.buffer, 0, count) };
}

function encodeTensors(tensors) {
  const out = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = encodeTensor(t);
  return out;
}

function decodeTensors(objs) {
  if (!objs || typeof objs !== 'object' || Array.isArray(objs)) throw new WireError('tensors must be a map of name -> tensor');
  const out = {};
  for (const [name, o] of Object.entries(objs)) out[name] = decodeTensor(o);
  return out;
}

/** msgpack body of one message. */
function pack(message) {
  return encoder.encode(wellFormed(message));
}

function unpack(body) {
  try {
    return decoder.decode(body);
  } catch (e) {
    throw new WireError(`frame body is not valid msgpack (${e.message})`);
  }
}

/** One message -> one frame (Buffer: 4-byte LE length + msgpack body). */
function encodeFrame(message) {
  // A view into the encoder's reused buffer, copied once into the frame right below (pack()
  // would copy it once more: 4 MB tensors made that copy visible in bench/wire_roundtrip.py).
  const body = encoder.encodeSharedRef(wellFormed(message));
  if (body.byteLength > MAX_FRAME_BYTES) {
    throw new WireError(`message of ${body.byteLength} bytes is over the ${MAX_FRAME_BYTES}-byte frame limit`, 'send smaller batches');
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.byteLength);
  frame.writeUInt32LE(body.byteLength, 0);
  frame.set(body, HEADER_BYTES);
  return frame;
}

/** Exactly one frame -> its message. */
function decodeFrame(frame) {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (buf.length < HEADER_BYTES) throw new WireError(`a frame needs a ${HEADER_BYTES}-byte header, got ${buf.length} bytes`);
  const n = buf.readUInt32LE(0);
  if (buf.length - HEADER_BYTES !== n) throw new WireError(`frame header says ${n} bytes but ${buf.length - HEADER_BYTES} follow`);
  return unpack(buf.subarray(HEADER_BYTES));
}

function checkLength(n, header) {
  if (n > MAX_FRAME_BYTES) {
    throw new WireError(`stream header ${JSON.stringify(header.toString('latin1'))} announces ${n} bytes: `
      + 'this is not a frame, something printed text into the frame stream', 'the stream cannot be resynchronized: restart the worker');
  }
}

/**
 * Incremental splitter: push(chunk) returns the complete frame bodies so far (Buffers).
 * Chunks are kept in a list and joined only when a whole frame is there, so a 4 MB frame that
 * arrives in 64 KB pipe reads costs one copy, not sixty.
 */
class FrameReader {
  constructor() {
    this.chunks = [];
    this.length = 0;
    this.need = HEADER_BYTES;
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const bodies = [];
    while (this.length >= this.need) {
      let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      const n = buf.readUInt32LE(0);
      checkLength(n, buf.subarray(0, HEADER_BYTES));
      if (buf.length < HEADER_BYTES + n) {
        this.chunks = [buf];
        this.need = HEADER_BYTES + n;
        break;
      }
      bodies.push(buf.subarray(HEADER_BYTES, HEADER_BYTES + n));
      buf = buf.subarray(HEADER_BYTES + n);
      this.chunks = buf.length ? [buf] : [];
      this.length = buf.length;
      this.need = HEADER_BYTES;
    }
    return bodies;
  }

  /** Bytes held that do not yet make a whole frame. */
  get pending() {
    return this.length;
  }
}

/** Async iterator over the frame bodies of a readable stream (e.g. process.stdin). */
async function* readFrames(stream) {
  const reader = new FrameReader();
  for await (const chunk of stream) {
    for (const body of reader.push(chunk)) yield body;
  }
  if (reader.pending) throw new WireError(`stream ended inside a frame (${reader.pending} bytes pending)`);
}

export {
  HEADER_BYTES, MAX_FRAME_BYTES, WireError,
  encodeTensor, decodeTensor, encodeTensors, decodeTensors,
  pack, unpack, encodeFrame, decodeFrame, FrameReader, readFrames,
};
