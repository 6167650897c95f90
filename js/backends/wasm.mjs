// onnxruntime-web's wasm backend inside Node: the same interface as backends/node.mjs (RUNTIME,
// runtimeVersion, createSession, run, release), so model.mjs's openModel runs the same manifest,
// compatibility, integrity and feed checks for it. The only module that loads onnxruntime-web
// in Node. Used by js/worker.mjs for `polyonnx verify --runtimes wasm`: it runs the same wasm
// kernels a browser runs (int8 differs from native int8 there), without a browser. Loaded with
// require() on first use, as backends/node.mjs loads onnxruntime-node (NODE_PATH, see there).

import { createRequire } from 'node:module';

import { PolyonnxError, SessionError, CODES } from '../errors.mjs';
import { fromOrtTensor } from '../tensor.mjs';
import { RUNTIMES, requirePeer } from '../compat.mjs';

const require = createRequire(import.meta.url);

let ortModule = null;

// Float16Array on Node 24 (microsoft/onnxruntime#32323): onnxruntime-web's Node build uses the
// same onnxruntime-common module as onnxruntime-node. Alone, it takes float16 bits in a
// Uint16Array and returns Float16Array outputs (turned back into bits in run() below). But once
// backends/node.mjs has fixed onnxruntime-common's table to Uint16Array (it hides the global for
// its first Tensor), web's float16 outputs, built as Float16Array while the global exists, fail
// that table's type check. js/worker.mjs, which loads both, therefore removes the global for the
// whole process. Measured on Node 24.19 and 20.20.
function requireOrt() {
  return requirePeer(() => require('onnxruntime-web'), RUNTIMES.web);
}

function ort() {
  if (!ortModule) ortModule = requireOrt();
  return ortModule;
}

// runtimes.json's key: the wasm backend is onnxruntime-web, whose limits are under "web".
const RUNTIME = 'web';
let sessionsCreated = 0;

function runtimeVersion() {
  return ort().env.versions.web;
}

/**
 * Set the wasm thread count. onnxruntime-web reads ort.env.wasm.numThreads once, when it
 * initializes the wasm module at the first session, so this must come before that.
 * @param {{numThreads?: number}} settings numThreads 0 = onnxruntime-web's default
 */
function configure({ numThreads } = {}) {
  if (numThreads === undefined || numThreads === null) return;
  const env = ort().env.wasm;
  const current = env.numThreads;
  if (sessionsCreated > 0) {
    if ((numThreads || undefined) !== (current || undefined)) {
      throw new PolyonnxError('load',
        `onnxruntime-web already runs with numThreads ${current || 'default'}; it cannot switch to ${numThreads} after its first session`,
        'use one thread count per worker process (close the runtime and open a new worker)', { code: CODES.OPTIONS });
    }
    return;
  }
  if (numThreads > 0) env.numThreads = numThreads;
}

async function createSession(modelBytes, externalData, sessionOptions, what) {
  // providers.mjs chose from availableProviders() (cpu and wasm, both 'wasm' here).
  const options = { ...sessionOptions, executionProviders: ['wasm'] };
  if (externalData.length) options.externalData = externalData;
  try {
    const session = await ort().InferenceSession.create(modelBytes, options);
    sessionsCreated += 1;
    return session;
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    throw new SessionError('load', `${what}: onnxruntime-web (wasm) could not create a session (${msg})`,
      "check the variant's `runtimes` in polyonnx.json includes 'web' (e.g. no int8 ConvInteger: onnxruntime-web has no kernel for it)",
      { cause: e });
  }
}

async function run(session, tensors, fetches, what) {
  const O = ort();
  const feeds = {};
  for (const [name, t] of Object.entries(tensors)) feeds[name] = new O.Tensor(t.dtype, t.data, t.dims);
  let out;
  try {
    out = await session.run(feeds, fetches);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    throw new SessionError('run', `${what}: onnxruntime-web (wasm) failed to run (${msg})`,
      'compare with the node runtime on the same feeds; report the bundle and this message', { cause: e });
  }
  const results = {};
  for (const name of fetches) results[name] = fromOrtTensor(out[name]);
  return results;
}

async function release(session) {
  await session.release();
}

// Its key in shared-schemas/providers.json: onnxruntime-web inside Node runs on the CPU (wasm) only.
const PROVIDER_RUNTIME = 'wasm';

function availableProviders() {
  return ['cpu', 'wasm'];
}

export { RUNTIME, PROVIDER_RUNTIME, ort, runtimeVersion, availableProviders, configure, createSession, run, release };
