// The only module that loads onnxruntime-node. Everything above it speaks { dtype, dims, data }.
//
// onnxruntime-node is loaded on first use, with require() (it is CommonJS): `import 'polyonnx'`
// costs nothing until load(), the Float16Array workaround below must run before it loads, and
// a pip-installed polyonnx finds it through NODE_PATH (python/polyonnx/_node.py), which only
// require() reads (ES module imports ignore NODE_PATH). It is an optional peer dependency, so a
// missing one is a CompatibilityError naming the install command.

import { createRequire } from 'node:module';

import { SessionError } from '../errors.mjs';
import { RUNTIMES, requirePeer } from '../compat.mjs';
import { polyonnxNames, providerStartError } from '../providers.mjs';
import { fromOrtTensor } from '../tensor.mjs';

const require = createRequire(import.meta.url);

// onnxruntime-node 1.30 rejects float16 inputs on Node 24 ("not enough space: expected 8, got 0",
// upstream PR microsoft/onnxruntime#32323, open): onnxruntime-common picks the typed array for
// 'float16' once, at the first Tensor construction, and picks Float16Array when the global
// exists, but the native binding only reads float16 from a Uint16Array. So the global is hidden
// while the first Tensor is built (the choice is cached) and restored right after, leaving the
// caller's globalThis as it was. Measured on Node 24.19 and 20.20 (tests/js/float16.test.js).
function requireOrt() {
  const desc = Object.getOwnPropertyDescriptor(globalThis, 'Float16Array');
  if (desc) delete globalThis.Float16Array;
  try {
    const ort = requirePeer(() => require('onnxruntime-node'), RUNTIMES.node);
    new ort.Tensor('float32', new Float32Array(1), [1]); // fixes onnxruntime-common's dtype table now
    return ort;
  } finally {
    if (desc) Object.defineProperty(globalThis, 'Float16Array', desc);
  }
}

let ortModule = null;
function ort() {
  if (!ortModule) ortModule = requireOrt();
  return ortModule;
}

const RUNTIME = 'node';

/** The installed onnxruntime-node version (checked against runtimes.json's range before loading). */
function runtimeVersion() {
  return ort().env.versions.node;
}

/** Execution providers this onnxruntime-node build knows, e.g. [{ name: 'cpu', bundled: true }, ...]. */
function providers() {
  return ort().listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

/** The polyonnx names (shared-schemas/providers.json) of the providers this build lists. */
function availableProviders() {
  return polyonnxNames(RUNTIME, providers().map((b) => b.name));
}

/**
 * @param {Uint8Array} modelBytes the model file, already checked against its sha256
 * @param {{path: string, data: Uint8Array}[]} externalData the external data files, already checked
 * @param {object} sessionOptions onnxruntime SessionOptions (executionProviders, threads, ...)
 * @param {string} what e.g. "variant 'fp32' of bundle 'mlp'", for messages
 */
async function createSession(modelBytes, externalData, sessionOptions, what) {
  // Chosen by providers.mjs from availableProviders(): names this build lists.
  const requested = sessionOptions.executionProviders || ['cpu'];
  const options = { ...sessionOptions, executionProviders: requested };
  // From the bytes that were hashed, not from the path: what was checked is what is loaded.
  if (externalData.length) options.externalData = externalData;
  try {
    return await ort().InferenceSession.create(modelBytes, options);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    // A provider that the build lists but cannot start (e.g. 'cuda' without its libraries).
    const providerError = providerStartError(requested, ['cpu'], e, what);
    if (providerError) throw providerError;
    throw new SessionError('load', `${what}: ONNX Runtime could not create a session (${msg})`,
      'check that the bundle loads in Python (`python -m polyonnx verify`), and report the file and this message',
      { cause: e });
  }
}

function toOrtTensor(t) {
  const O = ort();
  const tensor = new O.Tensor(t.dtype, t.data, t.dims);
  // When the caller built an onnxruntime Tensor before polyonnx first loaded onnxruntime-node on
  // Node 24, the dtype table already says Float16Array and the binding cannot read it (see top):
  // hand the binding the Uint16Array bits themselves.
  if (t.dtype === 'float16' && !(tensor.data instanceof Uint16Array)) tensor.cpuData = t.data;
  return tensor;
}

/**
 * Run a session on prepared feeds; returns { name: { dtype, dims, data } } for `fetches`.
 * @param {any} session
 * @param {Record<string, {dtype: string, dims: number[], data: any}>} tensors
 * @param {string[]} fetches output names
 */
async function run(session, tensors, fetches, what) {
  const feeds = {};
  for (const [name, t] of Object.entries(tensors)) feeds[name] = toOrtTensor(t);
  let out;
  try {
    out = await session.run(feeds, fetches);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    throw new SessionError('run', `${what}: ONNX Runtime failed to run (${msg})`,
      'the feeds passed polyonnx\'s checks, so this is likely a shape the export did not verify: '
      + 'try the sizes in polyonnx.json dims[*].verified, and report the bundle and this message',
      { cause: e });
  }
  const results = {};
  for (const name of fetches) results[name] = fromOrtTensor(out[name]);
  return results;
}

async function release(session) {
  await session.release();
}

export { RUNTIME, ort, runtimeVersion, providers, availableProviders, createSession, run, release };
