'use strict';
// Raw onnxruntime-node on the ONNX backend test cases, for bench/onnx_backend.py: no polyonnx code.
//
//   node bench/onnx_backend_node.js JOBS.json
//
// JOBS.json: [{id, model, feeds: [{name, type, dims, file}], outputs: [name], out_dir}], written by
// the Python script with each tensor's raw little-endian bytes in `file` (strings: a JSON array).
// For each job this runs the model once and prints one JSON line: {id, ok, outputs | error}, each
// output's bytes written to out_dir. The Python side compares them with the case's output_*.pb, so
// one comparison rule serves every column of the table. A crash in ONNX Runtime ends this process;
// the Python side restarts it after the job it was on.

const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array, float16: Uint16Array,
};

function readTensor(feed) {
  if (feed.type === 'string') {
    return new ort.Tensor('string', JSON.parse(fs.readFileSync(feed.file, 'utf8')), feed.dims);
  }
  const bytes = fs.readFileSync(feed.file);
  // Copy into a fresh ArrayBuffer: a Buffer's byteOffset need not be aligned for the element size.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const Ctor = ARRAYS[feed.type];
  if (!Ctor) throw new Error(`input '${feed.name}': dtype ${feed.type} is not handled by this script`);
  return new ort.Tensor(feed.type, new Ctor(copy.buffer), feed.dims);
}

function writeTensor(dir, index, name, tensor) {
  const file = path.join(dir, `node_output_${index}.bin`);
  if (tensor.type === 'string') {
    fs.writeFileSync(file, JSON.stringify(Array.from(tensor.data)));
  } else {
    const data = tensor.data;
    fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  return { name, type: tensor.type, dims: Array.from(tensor.dims), file };
}

async function runJob(job) {
  const session = await ort.InferenceSession.create(job.model, { executionProviders: ['cpu'] });
  try {
    const feeds = {};
    for (const f of job.feeds) feeds[f.name] = readTensor(f);
    const result = await session.run(feeds);
    fs.mkdirSync(job.out_dir, { recursive: true });
    return job.outputs.map((name, i) => {
      if (!(name in result)) throw new Error(`output '${name}' missing from the results`);
      return writeTensor(job.out_dir, i, name, result[name]);
    });
  } finally {
    await session.release();
  }
}

async function main() {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const job of jobs) {
    process.stdout.write(JSON.stringify({ id: job.id, started: true }) + '\n');
    let line;
    try {
      line = { id: job.id, ok: true, outputs: await runJob(job) };
    } catch (e) {
      line = { id: job.id, ok: false, error: String((e && e.message) || e).split('\n').join(' ') };
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`onnx_backend_node: ${e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
