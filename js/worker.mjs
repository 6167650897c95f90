// The persistent worker behind Python's `polyonnx.runtime('node' | 'wasm', ...)` and
// `polyonnx verify`: reads length-prefixed msgpack requests on stdin, answers on stdout
// (shared-schemas/WIRE.md). One process serves many sessions, so Python pays Node's start-up once.
//
// Run as `node js/worker.mjs`. stdout carries frames and nothing else. Not part of the npm
// package: the Python wheel carries it (pyproject.toml package-data).

// --- 1. Guard the frame stream, before any other module can print (js/worker-host.mjs). -------
// Static imports are evaluated before this module's body, so only worker-host.mjs (and what it
// imports: wire, errors, tensor, @msgpack/msgpack, none of which prints) is imported statically;
// polyonnx itself is imported below, after the guard.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import * as host from './worker-host.mjs';
import * as wire from './wire.mjs';
import { PolyonnxError } from './errors.mjs';

host.guardStdout();

// Node 24+ has a global Float16Array, and onnxruntime-node 1.30 / -web 1.30 disagree about it
// when both run in one process (see backends/wasm.mjs, microsoft/onnxruntime#32323). This process
// only ever moves float16 as Uint16Array bits, so the global is removed before either loads.
delete globalThis.Float16Array;

// --- 2. The protocol. -------------------------------------------------------------------------
const polyonnx = (await import('./index.mjs')).default;
const require = createRequire(import.meta.url);

const sessions = new Map(); // session id -> { model, backend }
let nextSession = 1;
const { requestError, plain } = host;

const is = {
  string: (v) => typeof v === 'string' && v.length > 0,
  uint: (v) => Number.isInteger(v) && v >= 0,
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v),
};

function need(msg, field, check, what) {
  if (!check(msg[field])) {
    throw requestError(`'${msg.op}' request needs ${field} as ${what}, got ${JSON.stringify(plain(msg[field]))}`,
      'see shared-schemas/WIRE.md', { field });
  }
  return msg[field];
}

function optional(msg, field, check, what) {
  if (msg[field] === undefined || msg[field] === null) return undefined;
  return need(msg, field, check, what);
}

function onlyFields(msg, allowed) {
  const extra = Object.keys(msg).filter((k) => !allowed.includes(k));
  if (extra.length) {
    throw requestError(`'${msg.op}' request has unknown field(s) ${extra.map((k) => `'${k}'`).join(', ')}`,
      `use only ${allowed.join(', ')} (shared-schemas/WIRE.md)`, { fields: extra });
  }
}

function session(msg) {
  const id = need(msg, 'session', is.uint, 'a session id');
  const entry = sessions.get(id);
  if (!entry) {
    throw new PolyonnxError('worker', `no session ${id} in this worker (pid ${process.pid})`,
      'load the bundle again: sessions do not survive a worker restart', { code: 'E_NO_SESSION', details: { session: id } });
  }
  return entry;
}

const specOf = ({ name, dtype, shape }) => ({ name, dtype, shape });

// Installed version of a package. Not require('x/package.json'): onnxruntime-web's "exports"
// map does not expose it. Walk up from the resolved entry point to the package's own folder.
function packageVersion(name) {
  try {
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
        if (pkg.name === name) return pkg.version;
      }
      const up = path.dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// The wire schema's bound on run.repeat: a request still answers within a benchmark's patience.
const MAX_REPEAT = 100000;

// op name -> handler(request) -> result. Adding an op: one entry here, one in wire.schema.json.
const OPS = {
  async load(msg) {
    onlyFields(msg, ['id', 'op', 'bundle', 'variant', 'backend', 'options', 'wasm_threads']);
    const bundle = need(msg, 'bundle', is.string, 'a path');
    const variant = optional(msg, 'variant', is.string, 'a variant name');
    const backend = optional(msg, 'backend', (b) => b === 'node' || b === 'wasm', "'node' or 'wasm'") || 'node';
    const options = optional(msg, 'options', is.object, 'a map of session options') || {};
    const threads = optional(msg, 'wasm_threads', is.uint, 'a non-negative integer');
    const loadOptions = variant === undefined ? { ...options } : { ...options, variant };
    let model;
    if (backend === 'node') {
      model = await polyonnx.load(bundle, loadOptions);
    } else {
      // index.mjs's load() is onnxruntime-node only; this is the same sequence (read and validate
      // the bundle, then openModel's compatibility/integrity/feed checks) with the wasm backend.
      const wasm = await import('./backends/wasm.mjs');
      const { checkLoadOptions, openModel } = await import('./model.mjs');
      const { readBundle } = await import('./bundle-node.mjs');
      checkLoadOptions(loadOptions);
      wasm.configure({ numThreads: threads });
      model = await openModel(await readBundle(bundle), loadOptions, wasm);
    }
    const id = nextSession++;
    sessions.set(id, { model, backend });
    const { providers, providersDropped } = model.info();
    return { session: id, variant: model.variant, backend, inputs: model.inputs.map(specOf), outputs: model.outputs.map(specOf),
      providers, providers_dropped: providersDropped };
  },

  async run(msg) {
    onlyFields(msg, ['id', 'op', 'session', 'feeds', 'outputs', 'repeat']);
    const { model } = session(msg);
    const feeds = wire.decodeTensors(need(msg, 'feeds', is.object, 'a map of tensors'));
    const outputs = optional(msg, 'outputs', (o) => Array.isArray(o) && o.every((n) => typeof n === 'string'), 'a list of names');
    const repeat = optional(msg, 'repeat', (n) => is.uint(n) && n >= 1 && n <= MAX_REPEAT, `an integer from 1 to ${MAX_REPEAT}`);
    const runOptions = outputs === undefined ? undefined : { outputs };
    // Back to back, as an in-process caller runs (bench: one request per run left ONNX Runtime's
    // threads idle for a round trip between runs, which a Python loop never does).
    const times = [];
    let results;
    for (let i = 0; i < (repeat ?? 1); i++) {
      const t0 = performance.now();
      results = await model.run(feeds, runOptions);
      times.push(performance.now() - t0);
    }
    const reply = { outputs: wire.encodeTensors(results), ms: times[times.length - 1] };
    if (repeat !== undefined) reply.times_ms = times;
    return reply;
  },

  async close(msg) {
    onlyFields(msg, ['id', 'op', 'session']);
    const id = need(msg, 'session', is.uint, 'a session id');
    const entry = sessions.get(id);
    if (!entry) return { closed: false };
    sessions.delete(id);
    await entry.model.dispose();
    return { closed: true };
  },

  async info(msg) {
    onlyFields(msg, ['id', 'op']);
    return {
      pid: process.pid,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      versions: {
        polyonnx: polyonnx.version,
        'onnxruntime-node': packageVersion('onnxruntime-node'),
        'onnxruntime-web': packageVersion('onnxruntime-web'),
        '@msgpack/msgpack': packageVersion('@msgpack/msgpack'),
      },
      sessions: sessions.size,
    };
  },

  async echo(msg) {
    onlyFields(msg, ['id', 'op', 'tensors', 'log', 'sleep_ms']);
    const log = optional(msg, 'log', (v) => typeof v === 'string', 'a string');
    if (log !== undefined) {
      // What a noisy library does; the guard above must route both to stderr.
      console.log(log);
      process.stdout.write(`${log}\n`);
    }
    const ms = optional(msg, 'sleep_ms', is.uint, 'milliseconds');
    if (ms) await sleep(ms);
    const tensors = wire.decodeTensors(need(msg, 'tensors', is.object, 'a map of tensors'));
    return { tensors: wire.encodeTensors(tensors) };
  },
};

async function closeAll() {
  for (const { model } of sessions.values()) {
    try {
      await model.dispose();
    } catch {
      // Exiting anyway; a session that fails to release is freed with the process.
    }
  }
  sessions.clear();
}

host.serve({ ops: OPS, host: 'worker', onEnd: closeAll });
