// One worker thread of a pool (js/pool.mjs): loads the bundle with the public load(), then runs
// batches the main thread sends. A batch is a list of requests ("parts") that share every dim
// but the batch dim; they are concatenated along axis 0 here, run once, and split back, so the
// main thread never copies tensor data. onnxruntime-node's session.run is synchronous inside a
// setImmediate (onnxruntime-node 1.30 dist/backend.js), so this thread is busy for the whole run;
// that is the point: the main thread is not.

import { parentPort, workerData as threadData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

import { load } from './index.mjs';
import { DTYPES } from './tensor.mjs';
// Errors travel as js/error-body.mjs's error body (the worker protocol's), rebuilt by pool.mjs.
import { errorBody } from './error-body.mjs';

// A worker thread (isolation 'thread') talks through parentPort; a child process (isolation
// 'process', pool.mjs ProcessWorker) through Node's IPC channel, where the first message carries
// what workerData carries for a thread.
const channel = parentPort ? {
  send: (msg, transfer) => parentPort.postMessage(msg, transfer),
  on: (listener) => parentPort.on('message', listener),
  close: () => parentPort.close(),
} : {
  send: (msg) => process.send(msg),
  on: (listener) => process.on('message', listener),
  // Exit once the last message is out: nothing else may keep a worker process alive.
  close: () => process.send({ type: 'bye' }, () => process.exit(0)),
};
if (!parentPort) process.on('disconnect', () => process.exit(0)); // the pool's process is gone

let model = null;

const serializeError = (e) => errorBody(e, 'pool worker');

function rowSize(dims) {
  let n = 1;
  for (let a = 1; a < dims.length; a++) n *= dims[a];
  return n;
}

/** Concatenate one input of every part along axis 0 (the parts agree on every other dim). */
function concat(tensors) {
  const { dtype, dims } = tensors[0];
  const rows = tensors.reduce((s, t) => s + t.dims[0], 0);
  const per = rowSize(dims);
  if (dtype === 'string') {
    return { dtype, dims: [rows, ...dims.slice(1)], data: tensors.flatMap((t) => Array.from(t.data)) };
  }
  const data = new DTYPES[dtype].array(rows * per);
  let at = 0;
  for (const t of tensors) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return { dtype, dims: [rows, ...dims.slice(1)], data };
}

/** Split a batched output back into one slice per part (copies: each caller owns its buffer). */
function split(name, result, rowsPerPart) {
  const total = rowsPerPart.reduce((s, r) => s + r, 0);
  if (result.dims[0] !== total) {
    throw new Error(`output '${name}' has ${result.dims[0]} rows at axis 0 for a batch of ${total} rows, `
      + 'so it cannot be split back per request (the manifest says it has the batch dim at axis 0)');
  }
  const per = rowSize(result.dims);
  const out = [];
  let row = 0;
  for (const rows of rowsPerPart) {
    const data = result.data.slice(row * per, (row + rows) * per);
    out.push({ dtype: result.dtype, dims: [rows, ...result.dims.slice(1)], data });
    row += rows;
  }
  return out;
}

async function runParts(parts, fetches) {
  const options = { outputs: fetches };
  if (parts.length === 1) return [await model.run(parts[0], options)];
  const feeds = {};
  for (const name of Object.keys(parts[0])) feeds[name] = concat(parts.map((p) => p[name]));
  const results = await model.run(feeds, options);
  const rowsPerPart = parts.map((p) => Object.values(p)[0].dims[0]);
  const perPart = parts.map(() => ({}));
  for (const [name, result] of Object.entries(results)) {
    split(name, result, rowsPerPart).forEach((slice, i) => { perPart[i][name] = slice; });
  }
  return perPart;
}

function transferList(outcomes) {
  const buffers = new Set();
  for (const o of outcomes) {
    if (!o.ok) continue;
    for (const t of Object.values(o.outputs)) {
      if (ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
    }
  }
  return [...buffers];
}

async function onRun(msg) {
  const { id, parts, fetches, test } = msg;
  // Test-only hooks (pool._testNextBatch in pool.mjs): crash this worker or slow this batch down.
  if (test && test.crash === 'exit') process.exit(70);
  // A native abort, as ONNX Runtime's 'terminate called without an active exception': only in a
  // worker process (in a thread it would end the pool's own process, which is the point of 'process').
  if (test && test.crash === 'abort' && !parentPort) process.abort();
  if (test && test.crash === 'throw') throw new Error('pool test hook: uncaught error in the worker');
  if (test && test.delayMs) await new Promise((r) => setTimeout(r, test.delayMs));
  const t0 = performance.now();
  let outcomes;
  try {
    outcomes = (await runParts(parts, fetches)).map((outputs) => ({ ok: true, outputs }));
  } catch (e) {
    if (parts.length === 1) {
      outcomes = [{ ok: false, error: serializeError(e) }];
    } else {
      // One failing batch must not fail requests that would have succeeded alone: run each
      // request by itself so every caller gets its own answer or its own error.
      outcomes = [];
      for (const part of parts) {
        try {
          outcomes.push({ ok: true, outputs: (await runParts([part], fetches))[0] });
        } catch (e2) {
          outcomes.push({ ok: false, error: serializeError(e2) });
        }
      }
    }
  }
  const ms = performance.now() - t0;
  const reply = { type: 'result', id, outcomes, ms };
  const transfer = transferList(outcomes);
  try {
    channel.send(reply, transfer);
  } catch (e) {
    // An output buffer that cannot be transferred (owned by native code): send copies instead.
    channel.send(reply);
  }
}

function start(workerData) {
  load(workerData.bundle, workerData.loadOptions).then(
    (m) => {
      model = m;
      channel.send({ type: 'ready', info: { variant: m.variant, loadMs: m.info().loadMs } });
    },
    (e) => {
      channel.send({ type: 'load-error', error: serializeError(e) });
      channel.close();
    },
  );
}

channel.on((msg) => {
  if (msg.type === 'init') {
    start(msg.workerData);
  } else if (msg.type === 'run') {
    // An uncaught rejection from the test hook must end the thread like a real crash would.
    onRun(msg).catch((e) => setImmediate(() => { throw e; }));
  } else if (msg.type === 'close') {
    const done = model ? model.dispose() : Promise.resolve();
    done.then(() => channel.send({ type: 'closed' }), () => channel.send({ type: 'closed' }))
      .finally(() => channel.close());
  }
});

if (parentPort) start(threadData);
