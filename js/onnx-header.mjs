// Reads what a compatibility check needs straight from an ONNX file's bytes: ir_version,
// opset_import, and the (domain, op_type) of the main graph's nodes. A few protobuf fields
// only, so the manifest's claims can be checked against the file without an ONNX library.
// No Node-only imports: the browser build reuses this module.

// Field numbers from onnx/onnx.proto (stable since IR version 3).
const MODEL = { IR_VERSION: 1, GRAPH: 7, OPSET_IMPORT: 8 };
const OPSET = { DOMAIN: 1, VERSION: 2 };
const GRAPH = { NODE: 1, INITIALIZER: 5 };
const NODE = { INPUT: 1, OP_TYPE: 4, DOMAIN: 7 };
const TENSOR = { DATA_TYPE: 2, NAME: 8 };
const INT8 = 3; // onnx.TensorProto.INT8

const utf8 = new TextDecoder('utf-8');

/** Iterate the top-level fields of one protobuf message in bytes[start, end). */
function* fields(bytes, start, end) {
  let pos = start;
  const varint = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= end) throw new Error('truncated varint');
      const b = bytes[pos++];
      value += (b & 0x7f) * scale; // Number arithmetic: exact below 2^53, plenty for sizes and versions
      if (b < 0x80) return value;
      scale *= 128;
    }
  };
  while (pos < end) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) yield { field, value: varint() };
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (pos + len > end) throw new Error(`field ${field} runs past the end of its message`);
      yield { field, start: pos, end: pos + len };
      pos += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

function text(bytes, f) {
  return utf8.decode(bytes.subarray(f.start, f.end));
}

/**
 * @param {Uint8Array} bytes an ONNX ModelProto
 * @returns {{irVersion: number, opsets: {domain: string, version: number}[], ops: {domain: string, opType: string}[], int8WeightOps: string[]}}
 * @throws Error when the bytes are not a readable ModelProto
 */
function readModelHeader(bytes) {
  const out = { irVersion: 0, opsets: [], ops: [], int8WeightOps: [] };
  for (const f of fields(bytes, 0, bytes.length)) {
    if (f.field === MODEL.IR_VERSION && f.value !== undefined) out.irVersion = f.value;
    else if (f.field === MODEL.OPSET_IMPORT && f.start !== undefined) {
      const o = { domain: '', version: 0 };
      for (const g of fields(bytes, f.start, f.end)) {
        if (g.field === OPSET.DOMAIN && g.start !== undefined) o.domain = text(bytes, g);
        else if (g.field === OPSET.VERSION && g.value !== undefined) o.version = g.value;
      }
      out.opsets.push(o);
    } else if (f.field === MODEL.GRAPH && f.start !== undefined) {
      const seen = new Set();
      const int8Initializers = new Set();
      const weights = []; // [opType, name of input 1] of every node
      for (const g of fields(bytes, f.start, f.end)) {
        if (g.start === undefined) continue;
        // Only the names that can matter are decoded (an int8 initializer's, a node's second
        // input): a page parses this once per load, before the JIT has warmed up, and decoding
        // every name of a 30 MB transformer cost 6-8 ms of a ~200 ms load in Chromium.
        if (g.field === GRAPH.INITIALIZER) {
          let name = null;
          let type = 0;
          for (const h of fields(bytes, g.start, g.end)) {
            if (h.field === TENSOR.NAME && h.start !== undefined) name = h;
            else if (h.field === TENSOR.DATA_TYPE && h.value !== undefined) type = h.value;
          }
          if (type === INT8 && name) int8Initializers.add(text(bytes, name));
          continue;
        }
        if (g.field !== GRAPH.NODE) continue;
        const node = { domain: '', opType: '' };
        let inputs = 0;
        let weight = null;
        for (const h of fields(bytes, g.start, g.end)) {
          if (h.field === NODE.OP_TYPE && h.start !== undefined) node.opType = text(bytes, h);
          else if (h.field === NODE.DOMAIN && h.start !== undefined) node.domain = text(bytes, h);
          else if (h.field === NODE.INPUT && h.start !== undefined && inputs++ === 1) weight = h;
        }
        if (weight) weights.push([node.opType, text(bytes, weight)]);
        const key = `${node.domain}::${node.opType}`;
        if (!seen.has(key)) {
          seen.add(key);
          out.ops.push(node);
        }
      }
      // Ops whose weight (input 1) is an int8 initializer: onnxruntime-web lacks some int8 kernels
      // that it has for uint8 (ConvInteger), see shared-schemas/runtimes.json.
      out.int8WeightOps = [...new Set(weights.filter(([, w]) => int8Initializers.has(w)).map(([op]) => op))];
    }
  }
  if (!out.irVersion || !out.opsets.length) throw new Error('no ir_version or opset_import: not an ONNX model');
  return out;
}

export { readModelHeader };
