// window.polyonnxRunner: load/run/close for js/browser-driver.mjs. Tensors cross page.evaluate as
// { dtype, shape, b64 } (the wire format's little-endian bytes, base64) or { dtype, shape, strings }.
// Answers are { ok: true, result } or { ok: false, error: { code, message, details } } so that
// polyonnx's error codes reach Python unchanged.

import { load } from 'polyonnx';

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array,
  uint64: BigUint64Array, bool: Uint8Array,
};

// With its dtype, as the Node worker decodes a wire tensor: a feed of the wrong dtype is refused
// in the same words in the page as in Node and Python (shared-schemas/bad-inputs.json).
function fromWire(t) {
  if (t.dtype === 'string') return { dtype: t.dtype, data: t.strings, dims: t.shape };
  const bin = atob(t.b64);
  const bytes = new Uint8Array(bin.length); // a fresh, aligned buffer
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const A = ARRAYS[t.dtype];
  return { dtype: t.dtype, data: new A(bytes.buffer, 0, bytes.length / A.BYTES_PER_ELEMENT), dims: t.shape };
}

function toWire(r) {
  if (r.dtype === 'string') return { dtype: r.dtype, shape: r.dims, strings: Array.from(r.data) };
  const bytes = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { dtype: r.dtype, shape: r.dims, b64: btoa(bin) };
}

function plain(value) {
  return JSON.parse(JSON.stringify(value ?? {}, (k, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

function failure(e) {
  if (e && typeof e.code === 'string' && e.code.startsWith('E_')) {
    return { ok: false, error: { code: e.code, message: e.message, details: { ...plain(e.details), stage: e.stage, fix: e.fix } } };
  }
  return { ok: false, error: { code: 'E_INTERNAL', message: `browser: ${e && e.name}: ${e && e.message ? e.message : e}`, details: { stack: String(e && e.stack) } } };
}

const sessions = new Map();
let next = 1;
const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') || 0);

window.polyonnxRunner = {
  async load(url, variant, options) {
    try {
      // No Cache API here: this page checks the bundle's files as they are on disk (verify, parity
      // tests), and a cached copy with the right sha256 would stand in for a changed file.
      const opts = { cache: false, ...(options || {}) };
      if (variant) opts.variant = variant;
      if (threads && opts.intraOpNumThreads === undefined) opts.intraOpNumThreads = threads;
      const model = await load(url, opts);
      const id = next++;
      sessions.set(id, model);
      return { ok: true, result: { session: id, variant: model.variant, info: plain(model.info()) } };
    } catch (e) {
      return failure(e);
    }
  },
  async run(id, feeds, outputs, repeat) {
    const model = sessions.get(id);
    if (!model) return { ok: false, error: { code: 'E_NO_SESSION', message: `browser: no session ${id} in this page`, details: {} } };
    try {
      const decoded = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, fromWire(t)]));
      const opts = outputs ? { outputs } : undefined;
      const times = [];
      let out;
      for (let i = 0; i < Math.max(1, repeat || 1); i++) {
        const t0 = performance.now();
        out = await model.run(decoded, opts);
        times.push(performance.now() - t0);
      }
      return { ok: true, result: { outputs: Object.fromEntries(Object.entries(out).map(([k, r]) => [k, toWire(r)])), ms: times } };
    } catch (e) {
      return failure(e);
    }
  },
  async close(id) {
    const model = sessions.get(id);
    sessions.delete(id);
    if (model) await model.dispose();
    return { ok: true, result: { closed: Boolean(model) } };
  },
};
document.getElementById('status').textContent = 'ready';
document.body.dataset.ready = '1';
