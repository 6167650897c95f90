'use strict';
// Helper of bench/runtime_isolation.py: one raw onnxruntime-node session driven line by line over
// stdin ("run N" -> N timed runs, answered with their ms as JSON; "close" releases the session),
// so Python can interleave its own runs with Node's exactly as `polyonnx bench` used to.
//   node bench/isolation_raw.js MODEL.onnx SEQ THREADS SPIN(1|0)
const ort = require('onnxruntime-node');
const readline = require('node:readline');

async function main() {
  const [model, seq, threads, spin] = process.argv.slice(2);
  const options = {
    intraOpNumThreads: Number(threads), graphOptimizationLevel: 'extended', executionProviders: ['cpu'],
  };
  if (spin === '0') options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  let session = await ort.InferenceSession.create(model, options);
  const n = Number(seq);
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt((i * 7919) % 8000);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('int64', ids, [1, n]) };
  process.stdout.write('ready\n');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [op, count] = line.trim().split(' ');
    if (op === 'close') {
      await session.release();
      session = null;
      process.stdout.write('closed\n');
      continue;
    }
    const ms = [];
    for (let i = 0; i < Number(count); i++) {
      const t0 = performance.now();
      await session.run(feeds);
      ms.push(performance.now() - t0);
    }
    process.stdout.write(JSON.stringify(ms) + '\n');
  }
}
main();
