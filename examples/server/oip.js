'use strict';
// The Open Inference Protocol (KServe v2, what Triton speaks over HTTP) for server.js: model
// metadata from polyonnx.json, and infer requests/responses in JSON or with the binary tensor
// data extension (Inference-Header-Content-Length). Pure functions: no I/O, no pool. server.js
// routes /v2/... here, so the same client code talks to this server and to Triton or KServe.

const { float16ToFloat32 } = require('polyonnx');

const VERSION = '1'; // one bundle, one version

// polyonnx dtype -> v2 datatype, and the typed array that holds its raw little-endian bytes.
// float16 travels as its IEEE half bits (Uint16Array: what polyonnx feeds and results use).
const DATATYPES = {
  float32: ['FP32', Float32Array],
  float64: ['FP64', Float64Array],
  float16: ['FP16', Uint16Array],
  int8: ['INT8', Int8Array],
  uint8: ['UINT8', Uint8Array],
  int16: ['INT16', Int16Array],
  uint16: ['UINT16', Uint16Array],
  int32: ['INT32', Int32Array],
  uint32: ['UINT32', Uint32Array],
  int64: ['INT64', BigInt64Array],
  uint64: ['UINT64', BigUint64Array],
  bool: ['BOOL', Uint8Array],
  string: ['BYTES', null],
};

/** A client mistake: server.js answers 400 with `{"error": message}`. */
class ProtocolError extends Error {
  constructor(message, status = 400) {
    super(message);
    this.status = status;
  }
}

const datatype = (dtype) => DATATYPES[dtype][0];
const v2shape = (shape) => shape.map((d) => (typeof d === 'number' ? d : -1));
const product = (dims) => dims.reduce((a, b) => a * b, 1);

/** GET /v2/models/NAME: the manifest's inputs and outputs, dynamic dims as -1. */
function modelMetadata(manifest) {
  const spec = (s) => ({ name: s.name, datatype: datatype(s.dtype), shape: v2shape(s.shape) });
  return {
    name: manifest.name,
    versions: [VERSION],
    platform: 'onnxruntime_onnx',
    inputs: manifest.inputs.map(spec),
    outputs: manifest.outputs.map(spec),
  };
}

/** GET /v2: what this server is and which protocol extensions it speaks. */
function serverMetadata(version) {
  return { name: 'polyonnx', version, extensions: ['binary_tensor_data'] };
}

/** Split a request body into its JSON header and the binary data after it. */
function splitBody(body, headerLength) {
  if (headerLength === undefined) return { header: body, binary: Buffer.alloc(0) };
  const n = Number(headerLength);
  if (!Number.isInteger(n) || n < 0 || n > body.length) {
    throw new ProtocolError(`Inference-Header-Content-Length is ${headerLength}, but the body has ${body.length} bytes `
      + '-- send the byte length of the JSON header that starts the body');
  }
  return { header: body.subarray(0, n), binary: body.subarray(n) };
}

function parseHeader(bytes) {
  let request;
  try {
    request = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ProtocolError(`the inference request header is not JSON (${e.message}) -- send {"inputs": [...]}, `
      + 'followed by the binary tensor data when Inference-Header-Content-Length says where the JSON ends');
  }
  if (!request || typeof request !== 'object' || !Array.isArray(request.inputs)) {
    throw new ProtocolError('the inference request has no "inputs" list -- send {"inputs": [{"name", "shape", '
      + '"datatype", "data"}]}');
  }
  if (request.outputs !== undefined && !Array.isArray(request.outputs)) {
    throw new ProtocolError('"outputs" is not a list -- send [{"name": "<output>"}] or leave it out for every output');
  }
  return request;
}

/** Strings as the binary extension writes them: a 4-byte little-endian length before each. */
function decodeBytes(name, buf, count) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new ProtocolError(`input '${name}': BYTES data ends inside a length prefix`);
    const len = buf.readUInt32LE(at);
    if (at + 4 + len > buf.length) throw new ProtocolError(`input '${name}': BYTES element ${out.length} runs past its data`);
    out.push(buf.toString('utf8', at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (out.length !== count) {
    throw new ProtocolError(`input '${name}' has ${out.length} BYTES elements, but its shape needs ${count}`);
  }
  return out;
}

function encodeBytes(strings) {
  return Buffer.concat(strings.flatMap((s) => {
    const b = Buffer.from(String(s), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return [len, b];
  }));
}

/** One v2 input tensor -> a polyonnx feed { dtype, dims, data }; binary data is taken from `binary`. */
function decodeInput(tensor, spec, binary) {
  const { name } = tensor;
  const [dt, Typed] = DATATYPES[spec.dtype];
  if (tensor.datatype !== dt) {
    throw new ProtocolError(`input '${name}' is ${tensor.datatype}, but the model expects ${dt} (${spec.dtype}) `
      + `-- send it as ${dt}`);
  }
  const dims = tensor.shape;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ProtocolError(`input '${name}': shape ${JSON.stringify(dims)} is not a list of sizes -- send e.g. `
      + `${JSON.stringify(v2shape(spec.shape).map((d) => (d < 0 ? 1 : d)))}`);
  }
  const params = tensor.parameters || {};
  if (params.shared_memory_region !== undefined) {
    throw new ProtocolError(`input '${name}' asks for shared memory, which this server does not have -- send the data`);
  }
  const count = product(dims);
  if (params.binary_data_size !== undefined) {
    const size = params.binary_data_size;
    if (!Number.isInteger(size) || size < 0 || size > binary.length) {
      throw new ProtocolError(`input '${name}': binary_data_size ${size} is more than the ${binary.length} bytes left `
        + 'after the JSON header -- put each binary input\'s bytes after the header, in the order of "inputs"');
    }
    const bytes = binary.subarray(0, size);
    if (!Typed) return { dims, dtype: spec.dtype, data: decodeBytes(name, bytes, count), size };
    if (size !== count * Typed.BYTES_PER_ELEMENT) {
      throw new ProtocolError(`input '${name}' has ${size} bytes of ${dt}, but shape [${dims.join(', ')}] needs `
        + `${count * Typed.BYTES_PER_ELEMENT} (${count} x ${Typed.BYTES_PER_ELEMENT})`);
    }
    // Copy into a fresh buffer: a Buffer slice may be unaligned for the typed array.
    const data = new Typed(new Uint8Array(bytes).buffer);
    return { dims, dtype: spec.dtype, data, size };
  }
  if (!Array.isArray(tensor.data)) {
    throw new ProtocolError(`input '${name}' has neither "data" nor parameters.binary_data_size -- send its values `
      + 'as a flat row-major "data" list, or as binary data after the JSON header');
  }
  // Nested or flat, the values are row-major. polyonnx converts them (float16 from numbers, bool
  // from true/false or 1/0) and refuses wrong ones with its own E_FEED message.
  return { dims, data: tensor.data.flat(Infinity), size: 0 };
}

/**
 * The body of POST /v2/models/NAME/infer -> { id, feeds, outputs, binaryOut }.
 * `outputs` lists the requested output names (undefined: all); `binaryOut(name)` says which
 * outputs go back as binary data.
 */
function decodeInferRequest(body, headerLength, manifest) {
  const { header, binary } = splitBody(body, headerLength);
  const request = parseHeader(header);
  const specs = new Map(manifest.inputs.map((s) => [s.name, s]));
  const feeds = {};
  let offset = 0;
  for (const tensor of request.inputs) {
    if (!tensor || typeof tensor.name !== 'string') throw new ProtocolError('an input has no "name"');
    const spec = specs.get(tensor.name);
    if (!spec) {
      throw new ProtocolError(`unknown input '${tensor.name}' (the model's inputs are `
        + `${manifest.inputs.map((s) => `'${s.name}'`).join(', ')}) -- send inputs by these names`);
    }
    if (feeds[tensor.name]) throw new ProtocolError(`input '${tensor.name}' is sent twice`);
    const { size, ...feed } = decodeInput(tensor, spec, binary.subarray(offset));
    offset += size;
    feeds[tensor.name] = feed;
  }
  if (offset !== binary.length) {
    throw new ProtocolError(`${binary.length - offset} bytes after the JSON header belong to no input -- check each `
      + 'binary_data_size and Inference-Header-Content-Length');
  }
  const allBinary = Boolean(request.parameters && request.parameters.binary_data_output);
  let outputs;
  const binaryWanted = new Set();
  if (request.outputs) {
    outputs = [];
    for (const o of request.outputs) {
      if (!o || typeof o.name !== 'string') throw new ProtocolError('a requested output has no "name"');
      const p = o.parameters || {};
      if (p.shared_memory_region !== undefined) {
        throw new ProtocolError(`output '${o.name}' asks for shared memory, which this server does not have`);
      }
      outputs.push(o.name);
      if (p.binary_data === undefined ? allBinary : p.binary_data) binaryWanted.add(o.name);
    }
  }
  const binaryOut = (name) => (outputs ? binaryWanted.has(name) : allBinary);
  return { id: request.id, feeds, outputs, binaryOut };
}

/** A result's values as a flat JSON list (int64 as numbers while exact, float16 as floats, bool as true/false). */
function jsonValues(name, { dtype, data }) {
  if (dtype === 'float16') return Array.from(float16ToFloat32(data));
  if (dtype === 'bool') return Array.from(data, (v) => v !== 0);
  if (dtype === 'int64' || dtype === 'uint64') {
    return Array.from(data, (v) => {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new ProtocolError(`output '${name}' holds ${v}, beyond what a JSON number carries exactly -- ask for it `
          + 'as binary data (parameters: {"binary_data": true})');
      }
      return Number(v);
    });
  }
  return Array.from(data);
}

function rawBytes({ dtype, data }) {
  if (dtype === 'string') return encodeBytes(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Pool results -> { headers, body } of the infer response, outputs in the manifest's order
 * (or the requested order). Binary outputs follow the JSON header, in the order listed.
 */
function encodeInferResponse(results, manifest, request) {
  const names = request.outputs || manifest.outputs.map((o) => o.name);
  const outputs = [];
  const chunks = [];
  for (const name of names) {
    const r = results[name];
    const entry = { name, datatype: datatype(r.dtype), shape: r.dims.slice() };
    if (request.binaryOut(name)) {
      const bytes = rawBytes(r);
      entry.parameters = { binary_data_size: bytes.length };
      chunks.push(bytes);
    } else {
      entry.data = jsonValues(name, r);
    }
    outputs.push(entry);
  }
  const response = { model_name: manifest.name, model_version: VERSION, outputs };
  if (request.id !== undefined) response.id = request.id;
  const header = Buffer.from(JSON.stringify(response), 'utf8');
  if (!chunks.length) {
    return { headers: { 'content-type': 'application/json' }, body: header };
  }
  return {
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, ...chunks]),
  };
}

module.exports = {
  VERSION, DATATYPES, ProtocolError, modelMetadata, serverMetadata, decodeInferRequest, encodeInferResponse,
};
