// Feeds: whatever the caller passed, checked against the manifest and turned into
// { dtype, dims, data } with typed-array data, before ONNX Runtime sees anything. Every
// mistake becomes a FeedError that names the input, what the model expects and what was given.
// No Node-only imports and no onnxruntime import: the browser build reuses this module.

import { FeedError } from './errors.mjs';
import { DTYPES, product, floatToHalfBits, halfBitsToFloat } from './tensor.mjs';

const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function shapeText(shape) {
  return `[${shape.map((d) => (typeof d === 'string' ? d : String(d))).join(', ')}]`;
}

function fail(message, fix, details) {
  throw new FeedError('run', message, fix, { details });
}

/** `name[i][j]` for flat index `flat` in a tensor of `dims`. */
function position(name, dims, flat) {
  if (!dims.length) return name;
  const idx = new Array(dims.length);
  for (let a = dims.length - 1; a >= 0; a--) {
    idx[a] = dims[a] ? flat % dims[a] : 0;
    flat = dims[a] ? Math.floor(flat / dims[a]) : 0;
  }
  return name + idx.map((i) => `[${i}]`).join('');
}

function typedArrayName(data) {
  return data && data.constructor ? data.constructor.name : typeof data;
}

function isTensorLike(v) {
  // An onnxruntime Tensor (onnxruntime-common's Tensor: type, dims, data getter), recognised by
  // shape so this module needs no onnxruntime import.
  return typeof v.type === 'string' && Array.isArray(v.dims) && 'data' in v && !has(v, 'dtype');
}

/** Walk nested arrays: dims from the first items, then every level checked (ragged arrays rejected). */
function fromNested(name, value) {
  const dims = [];
  for (let cur = value; Array.isArray(cur) || ArrayBuffer.isView(cur); cur = cur[0]) {
    dims.push(cur.length);
    if (!cur.length) break;
  }
  const flat = new Array(product(dims));
  let pos = 0;
  const walk = (node, axis, where) => {
    const isList = Array.isArray(node) || ArrayBuffer.isView(node);
    if (axis === dims.length) {
      if (isList) {
        fail(`input '${name}' is ragged: ${where} is a list, but ${name}${'[0]'.repeat(axis)} is a ${typeof flat[0]}`,
          'give every row the same length (pad token ids and mask the padding)');
      }
      flat[pos++] = node;
      return;
    }
    if (!isList || node.length !== dims[axis]) {
      const got = isList ? `has ${node.length} items` : `is a ${typeof node}`;
      fail(`input '${name}' is ragged: ${where} ${got}, but ${name}${'[0]'.repeat(axis)} has ${dims[axis]}`,
        'give every row the same length (pad token ids and mask the padding)');
    }
    for (let i = 0; i < node.length; i++) walk(node[i], axis + 1, `${where}[${i}]`);
  };
  walk(value, 0, name);
  return { dims, data: flat };
}

// Per-dtype conversion of one JS value; returns undefined when the value is not acceptable.
const CONVERT = {
  float: (v) => (typeof v === 'number' ? v : undefined),
  float16: (v) => (typeof v === 'number' ? floatToHalfBits(v) : undefined),
  int: (v, t) => {
    const n = typeof v === 'bigint' ? Number(v) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= t.min && n <= t.max ? n : undefined;
  },
  bigint: (v, t) => {
    let b;
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else return undefined;
    return b >= t.min && b <= t.max ? b : undefined;
  },
  bool: (v) => (v === true || v === 1 ? 1 : v === false || v === 0 ? 0 : undefined),
  string: (v) => (typeof v === 'string' ? v : undefined),
};

function badValue(name, dtype, dims, i, v) {
  const t = DTYPES[dtype];
  const shown = typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? JSON.stringify(v) : String(v);
  let why = `is not a valid ${dtype}`;
  let fix = `pass ${dtype} values`;
  if (t.kind === 'bigint' && typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
    why = 'is beyond Number.MAX_SAFE_INTEGER (2^53-1), so it may already have lost precision';
    fix = `pass it as a BigInt (e.g. ${BigInt(v)}n) or pass a ${t.array.name}`;
  } else if ((t.kind === 'bigint' || t.kind === 'int') && typeof v === 'number' && !Number.isInteger(v)) {
    why = 'is not an integer';
    fix = `round it, or check that '${name}' is the input you meant`;
  } else if ((t.kind === 'bigint' || t.kind === 'int') && (typeof v === 'number' || typeof v === 'bigint')) {
    why = `is outside the ${dtype} range [${t.min}, ${t.max}]`;
  } else if (t.kind === 'bool') {
    fix = 'pass true/false (or 1/0)';
  } else if (t.kind === 'float' || t.kind === 'float16') {
    fix = 'pass numbers';
  }
  fail(`input '${name}' (${dtype}): ${position(name, dims, i)} = ${shown} (${typeof v}) ${why}`, fix,
    { input: name, dtype, index: i });
}

/** A plain JS array of values -> the dtype's typed array (strings stay an array). */
function convertList(name, dtype, dims, list) {
  const t = DTYPES[dtype];
  const convert = CONVERT[t.kind];
  const out = t.kind === 'string' ? new Array(list.length) : new t.array(list.length);
  for (let i = 0; i < list.length; i++) {
    const c = convert(list[i], t);
    if (c === undefined) badValue(name, dtype, dims, i, list[i]);
    out[i] = c;
  }
  return out;
}

/** A typed array the caller built: it must already be the dtype's array (float16: Uint16Array bits). */
function checkTypedData(name, dtype, dims, data) {
  const t = DTYPES[dtype];
  // onnxruntime refuses views over a SharedArrayBuffer: copy those (slice() gives a plain buffer).
  // Any other typed array is passed as it is, so it is read when run() runs, not copied.
  if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) data = data.slice();
  if (dtype === 'float16') {
    const F16 = globalThis.Float16Array;
    // A Float16Array holds the same IEEE bits: view them, no copy (Node 24 has Float16Array).
    if (F16 && data instanceof F16) return new Uint16Array(data.buffer, data.byteOffset, data.length);
  }
  if (dtype === 'uint8' && data instanceof Uint8ClampedArray) {
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  }
  if (t.kind !== 'string' && data.constructor === t.array) {
    if (t.kind === 'bool') {
      for (let i = 0; i < data.length; i++) {
        if (data[i] > 1) {
          fail(`input '${name}' (bool): ${position(name, dims, i)} = ${data[i]}: a bool Uint8Array holds only 0 and 1`,
            'map it first, e.g. Uint8Array.from(a, (v) => (v ? 1 : 0))', { input: name, index: i });
        }
      }
    }
    return data;
  }
  const expected = dtype === 'float16' ? 'Uint16Array (IEEE half bits) or Float16Array'
    : t.kind === 'string' ? 'an array of strings' : t.array.name;
  const fix = t.kind === 'bigint' ? `convert it: ${t.array.name}.from(a, BigInt), or pass a plain array of numbers`
    : dtype === 'float16' ? 'pass a plain array of numbers (polyonnx converts them to float16)'
      : `convert it: ${t.kind === 'string' ? 'Array.from(a, String)' : `${t.array.name}.from(a)`}, or pass a plain array`;
  return fail(`input '${name}' expects ${dtype} data (${expected}), given ${typedArrayName(data)}`, fix,
    { input: name, expected: dtype, given: typedArrayName(data) });
}

/** Split any accepted feed form into { dtype?, dims, data, form }. */
function unpack(name, spec, value) {
  if (value === null || value === undefined) {
    return fail(`input '${name}' is ${value}`, `pass ${spec.dtype} data of shape ${shapeText(spec.shape)}`,
      { input: name });
  }
  if (Array.isArray(value)) return { ...fromNested(name, value), form: 'nested' };
  if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView) {
      return fail(`input '${name}' is a DataView`, 'pass a typed array, { data, dims } or nested arrays');
    }
    if (!spec.shape.every((d) => typeof d === 'number')) {
      return fail(`input '${name}' is a bare ${typedArrayName(value)}, but its shape ${shapeText(spec.shape)} `
        + 'has named dims, so the dims cannot be taken from the manifest',
      `pass { data, dims } (e.g. { data, dims: [${spec.shape.map((d) => (typeof d === 'string' ? `<${d}>` : d)).join(', ')}] }) or nested arrays`,
      { input: name });
    }
    return { dims: spec.shape.slice(), data: value, form: 'typed' };
  }
  if (typeof value === 'object') {
    if (isTensorLike(value)) {
      if (value.location && value.location !== 'cpu') {
        return fail(`input '${name}' is an onnxruntime Tensor on '${value.location}'`,
          "download it first (await tensor.getData()) and pass the data, or create it on 'cpu'", { input: name });
      }
      return { dtype: value.type, dims: value.dims, data: value.data, form: 'tensor' };
    }
    if (has(value, 'data') && has(value, 'dims')) {
      return { dtype: value.dtype ?? value.type, dims: value.dims, data: value.data, form: 'object' };
    }
    return fail(`input '${name}' is an object without 'data' and 'dims'`,
      'pass { data, dims }, an onnxruntime Tensor, a typed array or nested arrays', { input: name });
  }
  if (spec.shape.length === 0) return { dims: [], data: [value], form: 'scalar' };
  return fail(`input '${name}' is a single ${typeof value}, but the model expects shape ${shapeText(spec.shape)}`,
    'pass nested arrays, a typed array or { data, dims }', { input: name });
}

/**
 * Check `feeds` against the manifest and convert them.
 * @param {Record<string, unknown>} feeds input name -> feed (see types.d.ts `FeedValue`)
 * @param {{name: string, dtype: string, shape: (number|string)[], value_range?: [number, number]}[]} inputs
 * @param {Record<string, {min?: number, max?: number}>} dims the manifest's `dims`
 * @returns {{tensors: Record<string, {dtype: string, dims: number[], data: any}>, sizes: Record<string, number>}}
 */
function prepareFeeds(feeds, inputs, dims = {}) {
  if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || ArrayBuffer.isView(feeds)) {
    const given = Array.isArray(feeds) ? 'an array' : feeds === null ? 'null' : typeof feeds;
    fail(`feeds must be an object keyed by input name, given ${given}`,
      `pass { ${inputs.map((s) => `${s.name}: ...`).join(', ')} } (inputs are matched by name, never by position)`);
  }
  // The names are compared without building lists first: this runs on every run(), where a
  // microsecond is 1% of a small model's run (bench/browser_wrapper.py); the lists are built
  // only for the error.
  let given = 0;
  for (const k in feeds) if (has(feeds, k)) given += 1;
  let present = 0;
  for (let i = 0; i < inputs.length; i++) if (has(feeds, inputs[i].name)) present += 1;
  if (present !== inputs.length || given !== inputs.length) {
    const expected = inputs.map((s) => s.name);
    const missing = expected.filter((n) => !has(feeds, n));
    const unknown = Object.keys(feeds).filter((n) => !expected.includes(n));
    if (missing.length || unknown.length) {
      const parts = [];
      if (missing.length) parts.push(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
      if (unknown.length) parts.push(`unknown input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}`);
      fail(`${parts.join('; ')} (the model's inputs are ${expected.map((n) => `'${n}'`).join(', ')})`,
        'pass exactly the inputs listed in model.inputs, by name', { missing, unknown, expected });
    }
  }
  const tensors = {};
  const sizes = {};
  const sizeFrom = {};
  for (const spec of inputs) {
    const name = spec.name;
    const u = unpack(name, spec, feeds[name]);
    if (u.dtype !== undefined && u.dtype !== spec.dtype) {
      fail(`input '${name}' is ${u.dtype}, but the model expects ${spec.dtype}`,
        `convert it to ${spec.dtype} (${spec.dtype === 'float16' ? 'Uint16Array bits' : DTYPES[spec.dtype].array.name})`,
        { input: name, expected: spec.dtype, given: u.dtype });
    }
    if (!Array.isArray(u.dims) || !u.dims.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`input '${name}': dims ${JSON.stringify(u.dims)} are not a list of non-negative integers`,
        `pass dims like ${shapeText(spec.shape)} with sizes filled in`, { input: name });
    }
    if (u.dims.length !== spec.shape.length) {
      fail(`input '${name}' has rank ${u.dims.length} (dims [${u.dims.join(', ')}]), but the model expects `
        + `rank ${spec.shape.length} ${shapeText(spec.shape)}`,
      u.form === 'nested' ? `nest the arrays ${spec.shape.length} deep` : `pass ${spec.shape.length} dims`,
      { input: name, expected: spec.shape, given: u.dims });
    }
    for (let axis = 0; axis < spec.shape.length; axis++) {
      const d = spec.shape[axis];
      const got = u.dims[axis];
      if (typeof d === 'number') {
        if (got !== d) {
          fail(`input '${name}' axis ${axis} is ${got}, but the model fixes it to ${d} (shape ${shapeText(spec.shape)}, given [${u.dims.join(', ')}])`,
            `give axis ${axis} exactly ${d} entries`, { input: name, axis, expected: d, given: got });
        }
        continue;
      }
      if (has(sizes, d) && sizes[d] !== got) {
        fail(`'${d}' is ${got} in ${name} but ${sizes[d]} in ${sizeFrom[d]}`,
          `inputs that share the dim '${d}' must agree on its size`, { dim: d, sizes: { [name]: got, [sizeFrom[d]]: sizes[d] } });
      }
      const decl = dims[d] || {};
      const why = dimProblem(decl, got);
      if (why) {
        fail(`input '${name}': '${d}' is ${got}, ${why}`, `give '${d}' a size in ${legalText(decl)}`,
          { input: name, dim: d, given: got });
      }
      sizes[d] = got;
      sizeFrom[d] = name;
    }
    const n = product(u.dims);
    if (u.data === null || u.data === undefined || typeof u.data.length !== 'number') {
      fail(`input '${name}': data is ${u.data === null ? 'null' : typeof u.data}`,
        'pass a typed array or a plain array as data', { input: name });
    }
    if (u.data.length !== n) {
      fail(`input '${name}' has ${u.data.length} values, but dims [${u.dims.join(', ')}] need ${n}`,
        'make the data length the product of the dims', { input: name, expected: n, given: u.data.length });
    }
    const data = Array.isArray(u.data) ? convertList(name, spec.dtype, u.dims, u.data)
      : checkTypedData(name, spec.dtype, u.dims, u.data);
    if (spec.value_range) checkRange(name, spec, u.dims, data);
    tensors[name] = { dtype: spec.dtype, dims: u.dims.slice(), data };
  }
  return { tensors, sizes };
}

// The dim rule of python/polyonnx/_dims.py (size_problem / legal_text), word for word: a size is
// legal when min <= size <= max and size % multiple_of == 0; a missing min is 1, because a
// zero-length axis aborts some ONNX Runtime kernels (GRU) and export verifies 0 only when asked.
function dimProblem(entry, size) {
  const lo = entry.min ?? 1;
  const hi = entry.max;
  const m = entry.multiple_of ?? 1;
  const origin = entry.origin || {};
  const why = (key) => (origin[key] ? ` (${origin[key]})` : '');
  if (size < lo) return `below its minimum ${lo}${why('min')}`;
  if (hi !== undefined && size > hi) return `above its maximum ${hi}${why('max')}`;
  if (m > 1 && size % m) return `not a multiple of ${m}${why('multiple_of')}`;
  return null;
}

function legalText(entry) {
  const lo = entry.min ?? 1;
  const hi = entry.max;
  const m = entry.multiple_of ?? 1;
  if (m > 1) return `multiples of ${m} from ${Math.ceil(lo / m) * m}${hi !== undefined ? ` to ${hi}` : ''}`;
  return hi !== undefined ? `${lo} to ${hi}` : `${lo} or more`;
}

// value_range is a domain the bundle proves or the user set (schema 2): enforced here and in the
// Python runtime alike. float16 data is compared as the numbers its bits hold, and NaN is outside
// every range.
function checkRange(name, spec, dims, data) {
  const [lo, hi] = spec.value_range;
  const big = typeof data[0] === 'bigint';
  const half = spec.dtype === 'float16';
  const blo = big ? BigInt(Math.ceil(lo)) : lo;
  const bhi = big ? BigInt(Math.floor(hi)) : hi;
  for (let i = 0; i < data.length; i++) {
    const v = half ? halfBitsToFloat(data[i]) : data[i];
    if (!(v >= blo && v <= bhi)) {
      const origin = spec.value_range_origin ? ` (${spec.value_range_origin})` : '';
      fail(`input '${name}': ${position(name, dims, i)} = ${v} is outside its value_range [${lo}, ${hi}]${origin}`,
        `keep '${name}' values within [${lo}, ${hi}]`, { input: name, index: i, value_range: [lo, hi] });
    }
  }
}

export { prepareFeeds, dimProblem, legalText };
